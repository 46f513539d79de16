"""Long-run memory of continuous queries: per-group state and windowed state stay flat.

An impulse table generates ``--rate`` rows per second (the real runtime and store) for
``--minutes``; two continuous queries follow it, each drained by a thread of its own:

* an updating aggregate with ``--keys`` groups, ``changelog=True`` (per-group state,
  ``arroyo_lite.query.incremental``): ``SELECT counter % keys AS k, count(*), sum(counter),
  avg(counter) FROM imp GROUP BY k``;
* a windowed aggregate, ``tumble(interval '1 second')`` (``WindowedPlan``: the rows of open
  windows are kept, and dropped when the watermark closes them).

The live table itself grows with every row (no retention, so the aggregate never has to be
rebuilt), so the figure is resident memory *outside* the table: RSS minus the bytes of the
table's Arrow buffers, from the end of the warm-up (the first tenth of the run, at least
30 s) to the end. Also printed: the state's groups and the open windows' rows, which must
stay bounded. Target: growth of RSS outside the table <= 10 %.

    .venv/bin/python benchmarks/incremental_memory.py [--minutes 10] [--rate 2000] [--keys 1000]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time

from arroyo_lite import Session
from arroyo_lite.query.continuous import AggregatePlan, ContinuousQuery, WindowedPlan

TARGET_GROWTH = 0.10


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def drain(stream: ContinuousQuery, counts: dict[str, int], name: str) -> None:
    for batch in stream:
        counts[name] += batch.num_rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--keys", type=int, default=1000)
    args = parser.parse_args(argv)
    seconds = args.minutes * 60
    warm_up = max(30.0, seconds / 10)

    counts = {"aggregate": 0, "windowed": 0}
    samples: list[tuple[float, float, float]] = []
    with Session(env={}) as session:
        session.execute(
            f"CREATE TABLE imp WITH (connector = 'impulse', event_rate = '{args.rate}');"
        )
        aggregate = session.stream(
            f"SELECT counter % {args.keys} AS k, count(*) AS n, sum(counter) AS s, "
            "avg(counter) AS mean FROM imp GROUP BY k",
            changelog=True,
        )
        windowed = session.stream(
            "SELECT tumble(interval '1 second') AS w, count(*) AS n FROM imp GROUP BY w"
        )
        assert isinstance(aggregate.plan, AggregatePlan), type(aggregate.plan)
        assert isinstance(windowed.plan, WindowedPlan), type(windowed.plan)
        threads = [
            threading.Thread(target=drain, args=(s, counts, n), daemon=True)
            for s, n in ((aggregate, "aggregate"), (windowed, "windowed"))
        ]
        for thread in threads:
            thread.start()
        start = time.monotonic()
        next_print = start + warm_up
        while (elapsed := time.monotonic() - start) < seconds:
            if time.monotonic() >= next_print:
                snap = session.store.snapshot(["imp"])["imp"]
                table_mb = sum(b.nbytes for b in snap.batches) / 1e6
                rss = rss_mb()
                samples.append((elapsed, rss, rss - table_mb))
                windows = windowed.plan.windows
                print(
                    f"t={elapsed:6.0f}s  rss={rss:7.1f} MB  table={table_mb:6.1f} MB "
                    f"({snap.num_rows:>10,} rows)  outside={rss - table_mb:7.1f} MB  "
                    f"groups={aggregate.plan.state.groups:,}  open window rows="
                    f"{windows.open_rows if windows is not None else 0:,}  changes="
                    f"{counts['aggregate']:,}  windows emitted={counts['windowed']:,}",
                    flush=True,
                )
                next_print += max(10.0, seconds / 20)
            time.sleep(1.0)
        aggregate.close()
        windowed.close()

    if len(samples) < 2:
        print("run too short to measure growth")
        return 1
    base, end = samples[0], samples[-1]
    growth = (end[2] - base[2]) / base[2]
    ok = growth <= TARGET_GROWTH
    print(
        f"RSS at start {base[1]:.1f} MB, at end {end[1]:.1f} MB (the table grew meanwhile); "
        f"outside the table: {base[2]:.1f} MB -> {end[2]:.1f} MB, growth "
        f"{end[2] - base[2]:+.1f} MB ({growth:+.1%}); target <= {TARGET_GROWTH:.0%}: "
        f"{'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
