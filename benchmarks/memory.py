"""Memory benchmark: with ``retention.max_rows``, resident memory stays flat under heavy ingest.

An impulse table generates ``--rate`` rows per second (through the real runtime, store
append, compaction and retention) for ``--seconds``; the main thread runs a snapshot query
every ``--query-every`` seconds (so DuckDB registrations are exercised too) and prints RSS
(from /proc/self/statm) every few seconds. The figure is the RSS growth from the end of the
warm-up (the first quarter of the run) to the end, in MB and percent. Target: growth
<= 10 % (and the table never holds more than max_rows rows).

    .venv/bin/python benchmarks/memory.py [--seconds 60] [--rate 200000] [--max-rows 200000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from arroyo_lite import Session

TARGET_GROWTH = 0.10


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=int, default=200_000)
    parser.add_argument("--max-rows", type=int, default=200_000)
    parser.add_argument("--query-every", type=float, default=0.2)
    args = parser.parse_args(argv)

    samples: list[tuple[float, float, int]] = []
    max_seen = 0
    with Session(env={}) as session:
        session.execute(
            f"CREATE TABLE imp WITH (connector = 'impulse', event_rate = '{args.rate}', "
            f"'retention.max_rows' = '{args.max_rows}');"
        )
        start = time.monotonic()
        next_print = start
        while (elapsed := time.monotonic() - start) < args.seconds:
            result = session.query("SELECT count(*) AS n, max(counter) AS top FROM imp")
            n = result.column("n")[0].as_py()
            max_seen = max(max_seen, n)
            if time.monotonic() >= next_print:
                produced = session.status()[0].rows
                samples.append((elapsed, rss_mb(), produced))
                print(f"t={elapsed:5.1f}s  rss={samples[-1][1]:7.1f} MB  rows produced="
                      f"{produced:>11,}  rows kept={n:,}", flush=True)
                next_print += max(1.0, args.seconds / 20)
            time.sleep(args.query_every)

    warm = [s for s in samples if s[0] >= args.seconds / 4]
    if len(warm) < 2:
        print("run too short to measure growth")
        return 1
    base, end = warm[0][1], warm[-1][1]
    peak = max(s[1] for s in warm)
    growth = (end - base) / base
    produced = samples[-1][2]
    print(f"rows produced: {produced:,} ({produced / samples[-1][0]:,.0f}/s); retention "
          f"max_rows={args.max_rows:,}; most rows ever kept: {max_seen:,}")
    print(f"RSS after warm-up {base:.1f} MB, at end {end:.1f} MB, peak {peak:.1f} MB: growth "
          f"{end - base:+.1f} MB ({growth:+.1%}); target <= {TARGET_GROWTH:.0%}: "
          f"{'PASS' if growth <= TARGET_GROWTH and max_seen <= args.max_rows else 'FAIL'}")
    return 0 if growth <= TARGET_GROWTH and max_seen <= args.max_rows else 1


if __name__ == "__main__":
    sys.exit(main())
