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
samples its memory every ``--sample-every`` seconds from the end of the warm-up (the first
tenth of the run, at least 30 s); what the queries add is the queries' process minus the
control, sample by sample. Each sample reads every allocator's own figures
(``memory_parts.py``: glibc in use / held / free and its arenas, DuckDB's jemalloc, Arrow's
pool, pymalloc blocks), since RSS alone cannot say which one grows, and the queries'
progress (windows emitted, changes, the state's groups, the open windows' rows).

The verdict (:func:`judge`; the constants below say the bounds): **flat** when, over the
second half of the run, the least-squares slope due to the queries of glibc's held memory,
DuckDB's jemalloc in use, Arrow's pool in use and RSS are each within their bound (and
measured: enough samples, a standard error under half the bound), the RSS growth due to the
queries from the end of the warm-up to the end is within :data:`TARGET_GROWTH` of the
queries' RSS at the start, both processes sampled to the end, and the queries ran through
the second half. Every figure's slope over the whole run and over the second half is
printed too. ``--report LOG`` judges the samples of an earlier ``--log LOG`` run again
(``--trim``: ``malloc_trim(0)`` before each sample; ``--purge``: DuckDB's jemalloc gives
back its freed pages before each sample; ``--renew-applies N`` renews the
aggregate's state every N batches; all for diagnosis).

    .venv/bin/python benchmarks/incremental_memory.py [--minutes 10] [--rate 2000] [--keys 1000]
        [--sample-every S] [--log LOG] [--report LOG] [--no-renew] [--trim] [--purge]
        [--renew-applies N]

``--queries`` (with ``--child``) runs one process only and prints its samples.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import threading
import time

import memory_parts

from arroyo_lite import Session
from arroyo_lite.query import incremental
from arroyo_lite.query.continuous import AggregatePlan, ContinuousQuery, WindowedPlan

#: What "flat" means (issue 12 item 5: "memory stays flat"), judged by :func:`judge` on the
#: queries' process minus the control (what the queries add), over the **second half** of
#: the run (the first is warm-up: the state reaches its groups, glibc's arenas their size):
#: the least-squares slope of each of these figures, MB/min, at most this, with a standard
#: error at most half of it (else the run cannot tell the bound from noise). glibc's held
#: memory is where every growth found so far was (its arenas: +0.075 MB/min due to the
#: queries before the state's database lost its async I/O threads, 10-20 min of a 20-min
#: run); DuckDB's jemalloc in use moves by a few MB with the moment a sample falls in a
#: query, Arrow's pool in use by a few hundred kB (open windows, compaction), RSS by ~+-10 MB
#: (the pages the allocators keep a while): their bounds are what a 15-minute half
#: resolves, each 0.1-0.5 MB/min, not the 0.02 of glibc's held memory.
FLAT_SLOPES = {"glibc_held": 0.02, "je_allocated": 0.25, "arrow": 0.1, "rss": 0.5}
#: And from the end of the warm-up to the end of the run: RSS growth due to the queries at
#: most this fraction of the queries' process's RSS at the start, each end the mean of a
#: tenth of the samples (at least :data:`END_SAMPLES`), so one sample's allocator noise
#: does not decide it.
TARGET_GROWTH = 0.05
END_SAMPLES = 4
#: Fewer samples than this in the second half measure no slope: FAIL.
MIN_HALF_SAMPLES = 10
#: The queries must have run meanwhile: windows emitted per second of the second half
#: (the tumble window emits one a second), at least this; the open windows' rows at most
#: this many seconds of rows (a 1 s window behind a 1 s watermark delay holds ~2-3 s).
MIN_WINDOWS_PER_S = 0.5
MAX_OPEN_WINDOW_S = 10


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
        help="move the state to a new database every N batches (default: once the bytes "
        "DuckDB keeps of its merges reach incremental.RENEW_MIN_BYTES or RENEW_FACTOR x its "
        "size; diagnosis)",
    )
    parser.add_argument(
        "--retention-rows",
        type=int,
        default=None,
        help="the table keeps its newest N rows ('retention.max_rows'; diagnosis: does the "
        "control's creep stop when the table stops growing?)",
    )
    parser.add_argument(
        "--trim", action="store_true", help="malloc_trim(0) before each sample (diagnosis)"
    )
    parser.add_argument(
        "--purge",
        action="store_true",
        help="DuckDB's jemalloc purges its freed pages before each sample (diagnosis)",
    )
    parser.add_argument(
        "--log",
        default=None,
        help="write every sample (each allocator's figures and glibc's arenas, "
        "memory_parts.arenas) as a JSON line to LOG.queries / LOG.control (diagnosis)",
    )
    parser.add_argument(
        "--report",
        metavar="LOG",
        default=None,
        help="run nothing: judge the samples of an earlier run's --log LOG (LOG.queries, "
        "LOG.control; give that run's --minutes and --rate)",
    )
    parser.add_argument(
        "--sample-every",
        type=float,
        default=None,
        help="seconds between samples (default: a twentieth of the run, at least 10)",
    )
    args = parser.parse_args(argv)
    if args.report:
        logged = {n: read_log(f"{args.report}.{n}") for n in ("queries", "control")}
        return judge(logged["queries"], logged["control"], args)
    if not args.child:
        return compare(args)
    chosen = {q for q in args.queries.split(",") if q and q != "none"}
    if args.no_renew:
        incremental.RENEW_MIN_BYTES, incremental.RENEW_FACTOR = sys.maxsize, 0.0
    if args.renew_applies is not None:  # each batch "keeps" 1 byte; N of them are due
        incremental.KEPT_PER_APPLY, incremental.KEPT_PER_ROW = 1, 0
        incremental.RENEW_MIN_BYTES, incremental.RENEW_FACTOR = args.renew_applies, 0.0
    seconds = args.minutes * 60
    warm_up = max(30.0, seconds / 10)

    counts = {"aggregate": 0, "windowed": 0}
    samples: list[dict[str, float]] = []
    with Session(env={}) as session:
        keep = args.retention_rows
        retention = "" if keep is None else f", 'retention.max_rows' = '{keep}'"
        session.execute(
            f"CREATE TABLE imp WITH (connector = 'impulse', event_rate = '{args.rate}'{retention});"
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
                if args.purge:
                    memory_parts.purge_jemalloc()
                plans = {n: s.plan for n, s in streams.items()}
                state = plans.get("aggregate")
                windowed = plans.get("windowed")
                windows = windowed.windows if isinstance(windowed, WindowedPlan) else None
                sample = {
                    "t": elapsed,
                    **memory_parts.sample(),
                    "table": table_mb,
                    "table_rows": float(snap.num_rows),
                    "groups": float(state.state.groups if isinstance(state, AggregatePlan) else 0),
                    "renewals": float(
                        state.state.renewals if isinstance(state, AggregatePlan) else 0
                    ),
                    "open_window_rows": float(windows.open_rows if windows is not None else 0),
                    "changes": float(counts["aggregate"]),
                    "windows_emitted": float(counts["windowed"]),
                }
                samples.append(sample)
                print(
                    f"t={elapsed:6.0f}s  rss={sample['rss']:7.1f} MB  table={table_mb:6.1f} MB "
                    f"({snap.num_rows:>10,} rows)  groups={sample['groups']:,.0f}  "
                    f"renewals={sample['renewals']:.0f}  "
                    f"open window rows={sample['open_window_rows']:,.0f}  "
                    f"changes={counts['aggregate']:,}  windows emitted={counts['windowed']:,}",
                    flush=True,
                )
                print("    " + "  ".join(f"{k}={v:.1f}" for k, v in sample.items() if k in PARTS))
                if log is not None:
                    log.write(json.dumps({**sample, "arenas": memory_parts.arenas()}) + "\n")
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
        print(json.dumps({"samples": samples}), flush=True)
        return 0


#: The allocator figures of a sample (``memory_parts.sample``), printed per sample and
#: sloped in the report; ``py_blocks`` is a count of blocks, the rest MB.
PARTS = (
    "rss",
    "anon",
    "glibc_in_use",
    "glibc_held",
    "glibc_free",
    "glibc_mmap",
    "glibc_arenas",
    "je_allocated",
    "je_resident",
    "arrow",
    "py_blocks",
    "table",
)


def read_log(path: str) -> list[dict[str, float]]:
    with open(path) as f:
        return [
            {k: v for k, v in json.loads(line).items() if k != "arenas"} for line in f if line
        ]


def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """The least-squares slope through ``(seconds, value)`` points and its standard error,
    per minute (less sensitive to one sample's allocator noise than end minus start)."""
    n = len(points)
    if n < 3:
        return math.nan, math.nan
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if not var:
        return math.nan, math.nan
    slope = sum((t - mean_t) * (v - mean_v) for t, v in points) / var
    residual = sum((v - mean_v - slope * (t - mean_t)) ** 2 for t, v in points)
    return slope * 60, math.sqrt(residual / (n - 2) / var) * 60


def paired(
    queries: list[dict[str, float]], control: list[dict[str, float]]
) -> list[tuple[dict[str, float], dict[str, float]]]:
    """The two processes' samples paired in order (both sample on the same schedule from
    their own start; the two start within a second of each other)."""
    return list(zip(queries, control, strict=False))


def judge(
    queries: list[dict[str, float]], control: list[dict[str, float]], args: argparse.Namespace
) -> int:
    """Print what the queries add to the control, over the run and over its second half,
    and the verdict against :data:`FLAT_SLOPES`, :data:`TARGET_GROWTH` and the checks that
    the run measured something (both processes sampled to the end, the queries ran)."""
    pairs = paired(queries, control)
    seconds = args.minutes * 60
    failures: list[str] = []
    if not pairs:
        print("no samples: FAIL")
        return 1
    every = args.sample_every or max(10.0, seconds / 20)
    for name, samples in (("queries", queries), ("control", control)):
        last = samples[-1]["t"] if samples else 0.0
        if last < seconds - 2 * every:
            failures.append(f"the {name} process stopped sampling at {last:.0f} s of {seconds:.0f}")
    half = [(q, c) for q, c in pairs if q["t"] >= seconds / 2]
    if len(half) < MIN_HALF_SAMPLES:
        failures.append(f"{len(half)} samples in the second half (< {MIN_HALF_SAMPLES})")

    print("slopes, MB/min (py_blocks: blocks/min): queries, control, due to the queries +- s.e.")
    print(f"  {'':>16} {'whole run':^38}   {'second half':^38}")
    due_half: dict[str, tuple[float, float]] = {}
    for key in PARTS:
        cells = []
        for span in (pairs, half):
            q = fit([(a["t"], a[key]) for a, _ in span])[0]
            c = fit([(b["t"], b[key]) for _, b in span])[0]
            d = fit([(a["t"], a[key] - b[key]) for a, b in span])
            cells.append(f"{q:+8.3f} {c:+8.3f} {d[0]:+8.3f} +- {d[1]:.3f}")
            due = d
        due_half[key] = due
        print(f"  {key:>16} {cells[0]:>38}   {cells[1]:>38}")
    for key, bound in FLAT_SLOPES.items():
        value, error = due_half[key]
        measured = error <= bound / 2  # else the run cannot tell the bound from noise
        verdict = "over" if not value <= bound else "ok" if measured else "unmeasured"
        print(
            f"second half, {key} slope due to the queries {value:+.3f} +- {error:.3f} MB/min; "
            f"bound <= {bound} MB/min (s.e. <= {bound / 2}): {verdict}"
        )
        if not value <= bound:  # nan (too few samples) fails too
            failures.append(f"{key} slope due to the queries {value:+.3f} > {bound} MB/min")
        elif not measured:
            failures.append(f"{key} slope's standard error {error:.3f} > {bound / 2} MB/min")

    n = min(max(END_SAMPLES, len(pairs) // 10), len(pairs))
    first, last = pairs[:n], pairs[-n:]

    def mean(span: list[tuple[dict[str, float], dict[str, float]]], i: int, key: str) -> float:
        return sum(p[i][key] for p in span) / len(span)

    grew = {i: mean(last, i, "rss") - mean(first, i, "rss") for i in (0, 1)}
    start_rss = mean(first, 0, "rss")
    extra = grew[0] - grew[1]
    growth = extra / start_rss
    verdict = "ok" if growth <= TARGET_GROWTH else "over"
    held = (mean(last, 0, "glibc_held") - mean(first, 0, "glibc_held")) - (
        mean(last, 1, "glibc_held") - mean(first, 1, "glibc_held")
    )
    print(
        f"RSS from t={pairs[0][0]['t']:.0f} s to t={pairs[-1][0]['t']:.0f} s (means of "
        f"{n} samples at each end): with the queries {start_rss:.1f} -> "
        f"{mean(last, 0, 'rss'):.1f} MB ({grew[0]:+.1f}); control (same table, no query) "
        f"{mean(first, 1, 'rss'):.1f} -> {mean(last, 1, 'rss'):.1f} MB ({grew[1]:+.1f}); "
        f"growth due to the queries {extra:+.1f} MB ({growth:+.1%}; glibc held "
        f"{held:+.2f} MB); bound <= {TARGET_GROWTH:.0%}: {verdict}"
    )
    if not growth <= TARGET_GROWTH:
        failures.append(f"RSS growth due to the queries {growth:+.1%} > {TARGET_GROWTH:.0%}")

    failures += ran(queries, half, args)
    for failure in failures:
        print(f"  not met: {failure}")
    bounds = ", ".join(f"{key} <= {bound}" for key, bound in FLAT_SLOPES.items())
    criterion = (
        f"second half: slopes due to the queries {bounds} MB/min; whole run: RSS growth due "
        f"to the queries <= {TARGET_GROWTH:.0%}; the queries ran"
    )
    print(f"memory flat ({criterion}): {'FAIL' if failures else 'PASS'}")
    return 1 if failures else 0


def ran(
    queries: list[dict[str, float]],
    half: list[tuple[dict[str, float], dict[str, float]]],
    args: argparse.Namespace,
) -> list[str]:
    """Why the queries' process does not show the queries running through the second half
    (an idle process would be flat for nothing), or nothing. A log of an older version of
    this script has no progress figures: said, and failed."""
    if not half or "windows_emitted" not in half[0][0]:
        return ["the samples have no progress figures (windows emitted, changes)"]
    a, b = half[0][0], half[-1][0]
    span = b["t"] - a["t"]
    failures = []
    windows_per_s = (b["windows_emitted"] - a["windows_emitted"]) / span if span else 0.0
    if windows_per_s < MIN_WINDOWS_PER_S:
        failures.append(f"{windows_per_s:.2f} windows emitted per second (< {MIN_WINDOWS_PER_S})")
    if b["changes"] <= a["changes"]:
        failures.append("the aggregate emitted no change in the second half")
    if b["groups"] != args.keys:
        failures.append(f"{b['groups']:.0f} groups in the state, not {args.keys}")
    most_open = max(q["open_window_rows"] for q, _ in half)
    if most_open > args.rate * MAX_OPEN_WINDOW_S:
        failures.append(f"{most_open:,.0f} open window rows (> {MAX_OPEN_WINDOW_S} s of rows)")
    print(
        f"the queries ran: {windows_per_s:.2f} windows emitted/s and "
        f"{(b['changes'] - a['changes']) / span if span else 0:,.0f} changes/s in the second "
        f"half; groups {b['groups']:,.0f}; open window rows at most {most_open:,.0f}; "
        f"renewals of the state {a['renewals']:.0f} -> {b['renewals']:.0f}"
    )
    return failures


def compare(args: argparse.Namespace) -> int:
    """Run the queries' process and the control side by side; judge what the queries add."""
    common = ["--minutes", str(args.minutes), "--rate", str(args.rate), "--keys", str(args.keys)]
    if args.no_renew:
        common.append("--no-renew")
    if args.trim:
        common.append("--trim")
    if args.purge:
        common.append("--purge")
    if args.retention_rows is not None:
        common += ["--retention-rows", str(args.retention_rows)]
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
    samples: dict[str, list[dict[str, float]]] = {}
    for name, proc in procs.items():
        out, _ = proc.communicate()
        lines = out.strip().splitlines()
        for line in lines[:-1]:
            print(f"{name:>7}: {line}")
        last = lines[-1] if lines else ""
        samples[name] = json.loads(last)["samples"] if last.startswith("{") else []
        if proc.returncode:
            print(f"{name:>7}: exited {proc.returncode}")
    return judge(samples["queries"], samples["control"], args)


if __name__ == "__main__":
    sys.exit(main())
