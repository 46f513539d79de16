"""Long-run memory of continuous queries: per-group state and windowed state stay flat.

An impulse table generates ``--rate`` rows per second (the real runtime and store) for
``--minutes``; two continuous queries follow it, each drained by a thread of its own:

* an updating aggregate with ``--keys`` groups, ``changelog=True`` (per-group state,
  ``arroyo_lite.query.incremental``): ``SELECT counter % keys AS k, count(*), sum(counter),
  avg(counter) FROM imp GROUP BY k``;
* a windowed aggregate, ``tumble(interval '1 second')`` (``WindowedPlan``: the rows of open
  windows are kept, and dropped when the watermark closes them).

The live table itself grows with every row (no retention, so the aggregate never has to be
rebuilt), and the process's memory with it (its Arrow buffers, the allocator's slack around
compaction). So the same run starts two processes side by side, with the same table at the
same rate: one with the two queries and a *control* without any (``--queries none``). Each
samples its RSS from the end of the warm-up (the first tenth of the run, at least 30 s) to
the end; the figure is how much more the queries' process grew than the control did, against
the queries' process's RSS at the start. The slopes (MB/min, a least-squares line through each
process's samples) are printed too, and their difference: what the queries add per minute.
Also printed: the state's groups and the open windows' rows, which must stay bounded.
Target: <= 10 %.

RSS alone cannot say which allocator grows, and on a shared machine its slope moves by
several MB/min from run to run (the control's too). So each sample also reads every
allocator's own figures (``memory_parts.py``: glibc in use / held / free and its arenas,
DuckDB's jemalloc, Arrow's pool, pymalloc blocks), and the last lines print each one's
slope, with the queries and in the control, and their difference: a part that grows
because of the queries shows there. ``--trim`` calls ``malloc_trim(0)`` before each sample
and ``--renew-applies N`` renews the aggregate's state every N batches (diagnosis).

    .venv/bin/python benchmarks/incremental_memory.py [--minutes 10] [--rate 2000] [--keys 1000]
        [--no-renew] [--trim] [--renew-applies N]

``--queries`` (with ``--child``) runs one process only and prints its own figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time

import memory_parts

from arroyo_lite import Session
from arroyo_lite.query import incremental
from arroyo_lite.query.continuous import AggregatePlan, ContinuousQuery, WindowedPlan

TARGET_GROWTH = 0.10


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def malloc_in_use_mb() -> float:
    """Bytes glibc's malloc has handed out and not had back (``mallinfo2``), in MB: DuckDB's
    C++ objects (catalog, plans, update info) are there; DuckDB's data buffers (its own
    jemalloc) and Arrow's buffers (mimalloc/jemalloc pools) are not (``memory_parts`` reads
    those). It does not move with the pages an allocator keeps, so it is a steadier figure
    than RSS. ``nan`` where there is no glibc."""
    return memory_parts.glibc()["in_use"]


def drain(stream: ContinuousQuery, counts: dict[str, int], name: str) -> None:
    for batch in stream:
        counts[name] += batch.num_rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=int, default=2000)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument(
        "--queries",
        default="aggregate,windowed",
        help="which queries run (comma-separated; 'none': the table alone, as a control)",
    )
    parser.add_argument("--child", action="store_true", help="run one process (no control)")
    parser.add_argument(
        "--no-renew",
        action="store_true",
        help="never move the aggregate's state to a new DuckDB database (query/incremental.py, "
        "'Memory'): shows the growth that renewal removes",
    )
    parser.add_argument(
        "--renew-applies",
        type=int,
        default=None,
        help="move the state to a new database every N batches (default: "
        "incremental.RENEW_APPLIES; diagnosis)",
    )
    parser.add_argument(
        "--trim", action="store_true", help="malloc_trim(0) before each sample (diagnosis)"
    )
    parser.add_argument(
        "--log",
        default=None,
        help="write every sample (each allocator's figures and glibc's arenas, "
        "memory_parts.arenas) as a JSON line to LOG.queries / LOG.control (diagnosis)",
    )
    parser.add_argument(
        "--sample-every",
        type=float,
        default=None,
        help="seconds between samples (default: a twentieth of the run, at least 10)",
    )
    args = parser.parse_args(argv)
    if not args.child:
        return compare(args)
    chosen = {q for q in args.queries.split(",") if q and q != "none"}
    if args.no_renew:
        incremental.RENEW_APPLIES = incremental.RENEW_MIN_ROWS = sys.maxsize
    if args.renew_applies is not None:
        incremental.RENEW_APPLIES = args.renew_applies
        incremental.RENEW_MIN_ROWS = sys.maxsize
    seconds = args.minutes * 60
    warm_up = max(30.0, seconds / 10)

    counts = {"aggregate": 0, "windowed": 0}
    samples: list[tuple[float, float, float]] = []
    in_use: list[tuple[float, float, float]] = []  # (elapsed, malloc in use, -)
    parts: list[tuple[float, dict[str, float]]] = []  # (elapsed, memory_parts.sample())
    with Session(env={}) as session:
        session.execute(
            f"CREATE TABLE imp WITH (connector = 'impulse', event_rate = '{args.rate}');"
        )
        streams: dict[str, ContinuousQuery] = {}
        if "aggregate" in chosen:
            streams["aggregate"] = session.stream(
                f"SELECT counter % {args.keys} AS k, count(*) AS n, sum(counter) AS s, "
                "avg(counter) AS mean FROM imp GROUP BY k",
                changelog=True,
            )
            assert isinstance(streams["aggregate"].plan, AggregatePlan)
        if "windowed" in chosen:
            streams["windowed"] = session.stream(
                "SELECT tumble(interval '1 second') AS w, count(*) AS n FROM imp GROUP BY w"
            )
            assert isinstance(streams["windowed"].plan, WindowedPlan)
        threads = [
            threading.Thread(target=drain, args=(s, counts, n), daemon=True)
            for n, s in streams.items()
        ]
        for thread in threads:
            thread.start()
        log = open(args.log, "w") if args.log else None  # noqa: SIM115 (closed below)
        every = args.sample_every or max(10.0, seconds / 20)
        start = time.monotonic()
        next_print = start + warm_up
        while (elapsed := time.monotonic() - start) < seconds:
            if time.monotonic() >= next_print:
                snap = session.store.snapshot(["imp"])["imp"]
                table_mb = sum(b.nbytes for b in snap.batches) / 1e6
                if args.trim:
                    memory_parts.trim()
                rss = rss_mb()
                samples.append((elapsed, rss, rss - table_mb))
                in_use.append((elapsed, malloc_in_use_mb(), 0.0))
                parts.append((elapsed, {**memory_parts.sample(), "table": table_mb}))
                plans = {n: s.plan for n, s in streams.items()}
                state = plans.get("aggregate")
                windowed = plans.get("windowed")
                windows = windowed.windows if isinstance(windowed, WindowedPlan) else None
                print(
                    f"t={elapsed:6.0f}s  rss={rss:7.1f} MB  table={table_mb:6.1f} MB "
                    f"({snap.num_rows:>10,} rows)  outside={rss - table_mb:7.1f} MB  "
                    f"groups={state.state.groups if isinstance(state, AggregatePlan) else 0:,}  "
                    f"renewals={state.state.renewals if isinstance(state, AggregatePlan) else 0}  "
                    f"open window rows={windows.open_rows if windows is not None else 0:,}  "
                    f"changes={counts['aggregate']:,}  windows emitted={counts['windowed']:,}  "
                    f"malloc in use={in_use[-1][1]:.1f} MB",
                    flush=True,
                )
                print("    " + "  ".join(f"{k}={v:.1f}" for k, v in parts[-1][1].items()))
                if log is not None:
                    record = {"t": elapsed, **parts[-1][1], "arenas": memory_parts.arenas()}
                    if isinstance(state, AggregatePlan):
                        record["renewals"] = state.state.renewals
                    log.write(json.dumps(record) + "\n")
                    log.flush()
                next_print += every
            time.sleep(1.0)
        if log is not None:
            log.close()
        for stream in streams.values():
            stream.close()
        for thread in threads:
            thread.join(timeout=10)
        # Reported before the session closes (its shutdown is not what is measured).
        return report(samples, in_use, args.queries, parts)


def report(
    samples: list[tuple[float, float, float]],
    in_use: list[tuple[float, float, float]],
    queries: str,
    parts: list[tuple[float, dict[str, float]]],
) -> int:
    """Print one process's figures; the last line is them as JSON, for :func:`compare`."""
    if len(samples) < 2:
        print("run too short to measure growth", flush=True)
        return 1
    base, end = samples[0], samples[-1]
    print(
        f"[{queries}] RSS at start {base[1]:.1f} MB, at end {end[1]:.1f} MB "
        f"({end[1] - base[1]:+.1f} MB); the table's own buffers grew {base[1] - base[2]:.1f} "
        f"-> {end[1] - end[2]:.1f} MB"
    )
    figures = {"start": base[1], "end": end[1], "slope": slope(samples), "malloc": slope(in_use)}
    for key in parts[0][1]:
        figures[f"part:{key}"] = slope([(t, p[key], 0.0) for t, p in parts])
    print(json.dumps(figures), flush=True)
    return 0


def slope(samples: list[tuple[float, float, float]]) -> float:
    """RSS growth in MB per minute: the least-squares line through the samples (less
    sensitive to one sample's allocator noise than end minus start)."""
    n = len(samples)
    mean_t = sum(s[0] for s in samples) / n
    mean_r = sum(s[1] for s in samples) / n
    var = sum((s[0] - mean_t) ** 2 for s in samples)
    cov = sum((s[0] - mean_t) * (s[1] - mean_r) for s in samples)
    return cov / var * 60 if var else 0.0


def compare(args: argparse.Namespace) -> int:
    """Run the queries' process and the control side by side; compare their growth."""
    common = ["--minutes", str(args.minutes), "--rate", str(args.rate), "--keys", str(args.keys)]
    if args.no_renew:
        common.append("--no-renew")
    if args.trim:
        common.append("--trim")
    if args.renew_applies is not None:
        common += ["--renew-applies", str(args.renew_applies)]
    if args.sample_every is not None:
        common += ["--sample-every", str(args.sample_every)]

    def logged(name: str) -> list[str]:
        return ["--log", f"{args.log}.{name}"] if args.log else []

    procs = {
        name: subprocess.Popen(
            [sys.executable, __file__, "--child", "--queries", queries, *common, *logged(name)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for name, queries in (("queries", args.queries), ("control", "none"))
    }
    figures: dict[str, dict[str, float]] = {}
    for name, proc in procs.items():
        out, _ = proc.communicate()
        lines = out.strip().splitlines()
        for line in lines[:-1]:
            print(f"{name:>7}: {line}")
        figures[name] = json.loads(lines[-1]) if lines and lines[-1].startswith("{") else {}
    if not all(figures.values()):
        print("a process did not report")
        return 1
    grew = {n: f["end"] - f["start"] for n, f in figures.items()}
    extra = grew["queries"] - grew["control"]
    growth = extra / figures["queries"]["start"]
    ok = growth <= TARGET_GROWTH
    print(
        f"RSS with the queries {figures['queries']['start']:.1f} -> "
        f"{figures['queries']['end']:.1f} MB ({grew['queries']:+.1f}); control (same table, "
        f"no query) {figures['control']['start']:.1f} -> {figures['control']['end']:.1f} MB "
        f"({grew['control']:+.1f}); growth due to the queries {extra:+.1f} MB ({growth:+.1%}); "
        f"target <= {TARGET_GROWTH:.0%}: {'PASS' if ok else 'FAIL'}"
    )
    q, c = figures["queries"]["slope"], figures["control"]["slope"]
    print(
        f"RSS slope (least squares): with the queries {q:+.2f} MB/min, control {c:+.2f} "
        f"MB/min; due to the queries {q - c:+.2f} MB/min"
    )
    q, c = figures["queries"]["malloc"], figures["control"]["malloc"]
    print(
        f"malloc in use (glibc; DuckDB's C++ objects, not its buffers nor Arrow's) slope: "
        f"with the queries "
        f"{q:+.2f} MB/min, control {c:+.2f} MB/min; due to the queries {q - c:+.2f} MB/min"
    )
    print("slopes by allocator (MB/min; py_blocks: blocks/min), queries - control:")
    for key in figures["queries"]:
        if key.startswith("part:"):
            q, c = figures["queries"][key], figures["control"].get(key, float("nan"))
            print(f"  {key[5:]:>14}: {q:+9.2f} {c:+9.2f}  {q - c:+9.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
