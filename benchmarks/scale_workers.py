"""``benchmarks/scale.py --workers N``: many ``polling_http`` tables in one session whose
sources run in N worker processes (``arroyo-lite run --workers N``), issue 16 item 2.

The tables are compiled from real SQL and created in a real :class:`arroyo_lite.Session`
with ``workers=N``: rows travel from the workers to the session's store as Arrow IPC, as in
``arroyo-lite run``. Measured over a window of ``--seconds`` that starts ``--warmup`` seconds
after every table has completed a first poll (the start-up, when N processes spawn and
10,000 first polls are due at once, is not the steady state asked about):

* polls done / due: polls completed in the window (rows stored in the session, one per
  poll, + failed polls from the statuses) against the ticks due in it (tables x window / interval);
* p99 poll-start lateness, from the workers' lateness histograms (whole milliseconds; each
  poll against one interval after its predecessor's start, as ``scale.py`` measures it);
* CPU per poll: the workers' CPU over their polls started, the session process's CPU over
  the polls done (receiving, storing), and their sum; CPU seconds per wall second of every
  process (what each got on a shared machine);
* the machine: its busy CPU over the window (``/proc/stat``), and how much of it other
  programs took (busy minus this run's processes, servers included). Above
  :data:`SHARED_CPU` the run is marked SHARED: on 2 cores the schedule leaves little slack,
  and another program's CPU shows as late polls that are not the product's;
* the workers' garbage collections in the window (their pauses stall a worker's loop);
* memory per table: resident memory growth of the session (from after the imports) and of
  the workers (from once their first operator was built) over the tables; each worker's
  memory at that point is printed apart: a fixed cost per process. And how fast the
  session's grew in the window, per table and hour: the rows stored, and what the store
  keeps per batch, add up over a long run that a short window does not show;
* with ``--timeline``, each second of the window per worker: polls started, those more
  than 100 ms late, the collector's passes (late polls in bursts point at a stall).

The baseline is the bare aiohttp client loop of ``scale.py`` run in N processes at once, each
with its share of the tables, against the same servers (fair: the same number of processes
and cores; one bare process cannot make 10,000 polls a second here either). Its lateness is
over its whole run (it starts every table within the first interval).
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from scale import _quantile, _rss_bytes, _run_bare, _sql, new_loop

#: Other programs' CPU (s per wall s) in the window above which a run is marked shared.
SHARED_CPU = 0.1


def _bare_process(
    conn: Connection, tables: int, first: int, seconds: float, interval_ms: int, port: int,
    loop: str,
) -> None:  # fmt: skip
    """One baseline process: ``_run_bare`` over tables ``first`` .. ``first + tables - 1``."""
    with asyncio.Runner(loop_factory=lambda: new_loop(loop)) as runner:
        figures = runner.run(_run_bare(tables, seconds, interval_ms, port, False, first))
    conn.send(figures)


def run_bare_processes(args: argparse.Namespace, port: int) -> dict[str, float]:
    """The bare baseline in ``args.workers`` processes at once; figures summed."""
    ctx = multiprocessing.get_context("spawn")
    share = -(-args.tables // args.workers)
    runs = []
    for first in range(0, args.tables, share):
        parent, child = ctx.Pipe()
        count = min(share, args.tables - first)
        process = ctx.Process(
            target=_bare_process,
            args=(child, count, first, args.seconds, args.interval_ms, port, args.loop),
            daemon=True,
        )
        process.start()
        runs.append((process, parent))
    results = [parent.recv() for _, parent in runs]
    for process, _ in runs:
        process.join(timeout=30)
    due = sum(r["polls_due"] for r in results)
    done = sum(r["polls_done"] for r in results)
    polls = sum(r["cpu_s"] / r["cpu_us_per_poll"] * 1e6 for r in results if r["cpu_us_per_poll"])
    lateness = sorted(x for r in results for x in r["lateness"])
    return {
        "polls_due": due,
        "polls_done": done,
        "ratio": done / due if due else 0.0,
        "p99_ms": _quantile(lateness, 0.99) * 1000,
        "cpu_us_per_poll": sum(r["cpu_s"] for r in results) / max(polls, 1) * 1e6,
        "cpu_per_wall": sum(r["cpu_per_wall"] for r in results),
        "failures": sum(r["failures"] for r in results),
    }


def machine_cpu() -> tuple[float, float]:
    """CPU seconds the whole machine has spent busy, and stolen by its hypervisor, since
    boot (Linux ``/proc/stat``; zeros elsewhere). Over a window, busy minus what this run's
    processes used is the CPU other programs took: on a shared machine the wall-clock
    figures (done/due, lateness) are then not the product's alone."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    steal = fields[7] if len(fields) > 7 else 0
    return (sum(fields[:8]) - idle - steal) / tick, steal / tick


@dataclass
class Sample:
    """One moment of a run: the session's CPU and counters, and each worker's last stats."""

    wall: float
    cpu: float
    completed: int
    rows: int
    failures: int
    workers: dict[int, Any]


def _sample(session: Any) -> Sample:
    statuses = session.status()
    # Rows stored (exact, unlike the statuses, which are up to half a second behind).
    rows = sum(snap.end_row for snap in session.store.snapshot().values())
    failures = sum(s.failures for s in statuses)
    return Sample(
        wall=time.monotonic(),
        cpu=time.process_time(),
        completed=rows + failures,
        rows=rows,
        failures=failures,
        workers={w.index: w for w in session.worker_stats()},
    )


def _late(stats: Any, ms: int = 100) -> int:
    return sum(n for late, n in stats.lateness_ms.items() if late > ms)


def _timeline(session: Any, seconds: float) -> None:
    """Sleep ``seconds``, printing each second what every worker did in it (from the
    stats each worker sends once a second: a line may cover a little more or less)."""
    end = time.monotonic() + seconds
    last = {w.index: w for w in session.worker_stats()}
    while (now := time.monotonic()) < end:
        time.sleep(min(1.0, end - now))
        parts = []
        for w in session.worker_stats():
            before = last.get(w.index, w)
            parts.append(
                f"worker {w.index}: {w.poll_starts - before.poll_starts} polls, "
                f"{_late(w) - _late(before)} > 100 ms late, {w.gc_count - before.gc_count} "
                f"collections ({(w.gc_s - before.gc_s) * 1000:.0f} ms)"
            )
            last[w.index] = w
        print(f"  t+{seconds - (end - time.monotonic()):4.1f} s  " + "; ".join(parts))


def run_session(
    args: argparse.Namespace, port: int, server_stats: Callable[[], tuple[float, int]]
) -> dict[str, Any]:
    """The tables in a ``Session(workers=N)``: the figures of the module docstring."""
    from arroyo_lite import Session
    from arroyo_lite.runtime.loop import tune_gc
    from arroyo_lite.sql import compile_sql

    compile_sql(_sql(1, port, args.interval_ms, args.format), env={})  # the imports: fixed
    rss0 = _rss_bytes()
    sql = _sql(args.tables, port, args.interval_ms, args.format)
    started = time.monotonic()
    session = Session(workers=args.workers)
    try:
        session.execute(sql)
        tune_gc()
        created = time.monotonic() - started
        while not all(s.polls for s in session.status()):
            time.sleep(0.5)
        first_polls = time.monotonic() - started
        time.sleep(args.warmup)
        rss_a = _rss_bytes()
        a, server_a, machine_a = _sample(session), server_stats(), machine_cpu()
        if args.timeline:
            _timeline(session, args.seconds)
        else:
            time.sleep(args.seconds)
        b, server_b, machine_b = _sample(session), server_stats(), machine_cpu()
        rss1 = _rss_bytes()
        fatal = sum(1 for s in session.status() if str(s.state) == "failed")
    finally:
        session.close()
    window = b.wall - a.wall
    interval = args.interval_ms / 1000.0
    due = args.tables * window / interval
    done = b.completed - a.completed
    histogram: dict[int, int] = {}
    worker_cpu = worker_polls = 0.0
    per_worker = []
    for index, after in b.workers.items():
        before = a.workers[index]
        span = max(after.at - before.at, 1e-9)
        cpu = after.cpu_s - before.cpu_s
        polls = after.poll_starts - before.poll_starts
        worker_cpu += cpu
        worker_polls += polls
        gc_pauses = (
            after.gc_count - before.gc_count,
            after.gc_s - before.gc_s,
            after.gc_max_s,  # (since the worker started: the window's own is not kept)
        )
        per_worker.append((index, cpu / span, polls / span, after.rss_start_bytes, gc_pauses))
        for ms, n in after.lateness_ms.items():
            histogram[ms] = histogram.get(ms, 0) + n - before.lateness_ms.get(ms, 0)
    lateness = sorted(histogram.items())
    total = sum(n for _, n in lateness)
    p99 = p50 = float("nan")
    seen = 0
    for ms, n in lateness:
        if seen < total * 0.5 <= seen + n:
            p50 = float(ms)
        if seen < total * 0.99 <= seen + n:
            p99 = float(ms)
        seen += n
    main_cpu = b.cpu - a.cpu
    worker_rss = sum(w.rss_bytes - w.rss_start_bytes for w in b.workers.values())
    server_cpu, server_hits = server_b[0] - server_a[0], server_b[1] - server_a[1]
    busy, steal = machine_b[0] - machine_a[0], machine_b[1] - machine_a[1]
    others = busy - worker_cpu - main_cpu - server_cpu
    return {
        "server_cpu_per_wall": server_cpu / window,
        "server_us_per_request": server_cpu / max(server_hits, 1) * 1e6,
        "created_s": created,
        "first_polls_s": first_polls,
        "window_s": window,
        "polls_due": due,
        "polls_done": done,
        "ratio": done / due if due else 0.0,
        "p50_ms": p50,
        "p99_ms": p99,
        "worker_us_per_poll": worker_cpu / max(worker_polls, 1) * 1e6,
        "main_us_per_poll": main_cpu / max(done, 1) * 1e6,
        "main_cpu_per_wall": main_cpu / window,
        "per_worker": per_worker,
        "rss_per_table": (rss1 - rss0 + worker_rss) / args.tables,
        "session_rss_per_table": (rss1 - rss0) / args.tables,
        "session_growth_per_table_hour": (rss1 - rss_a) / args.tables / window * 3600,
        "worker_rss_per_table": worker_rss / args.tables,
        "failures": b.failures - a.failures,
        "fatal": fatal,
        "machine_cpu_per_wall": busy / window,
        "others_cpu_per_wall": others / window,
        "steal_per_wall": steal / window,
        "load": os.getloadavg(),
    }


def run_with_workers(
    args: argparse.Namespace, port: int, server_stats: Callable[[], tuple[float, int]]
) -> int:
    """Print the baseline's and the session's figures; exit status 0 if the targets hold."""
    bare = run_bare_processes(args, port) if args.baseline in ("both", "bare") else None
    print(
        f"scale --workers {args.workers}: {args.tables} polling_http tables ({args.format}), "
        f"every {args.interval_ms} ms, {args.seconds:.1f} s measured; {args.servers} "
        f"{args.server} server process(es) on the same machine"
    )
    if bare is not None:
        print(
            f"baseline (bare aiohttp loop in {args.workers} processes): done/due "
            f"{bare['polls_done']:.0f} / {bare['polls_due']:.0f} = {bare['ratio']:.4f}, p99 "
            f"lateness {bare['p99_ms']:.1f} ms, CPU {bare['cpu_us_per_poll']:.0f} us/poll "
            f"({bare['cpu_per_wall']:.3f} CPU s per wall s in all), failed {bare['failures']:.0f}"
        )
    if args.baseline == "bare":
        return 0
    f = run_session(args, port, server_stats)
    print(
        f"session: tables created in {f['created_s']:.1f} s, every table polled once after "
        f"{f['first_polls_s']:.1f} s; window {f['window_s']:.1f} s after {args.warmup:.0f} s "
        f"of warm-up; failed polls {f['failures']:.0f}, failed tables {f['fatal']:.0f}"
    )
    for index, cpu, polls, rss_start, (gcs, gc_s, gc_max) in f["per_worker"]:
        print(
            f"  worker {index}: {cpu:.3f} CPU s per wall s, {polls:.0f} polls/s, "
            f"{rss_start / 2**20:.0f} MiB once its first table was built (fixed cost); "
            f"{gcs} garbage collections in the window ({gc_s * 1000:.0f} ms), longest since "
            f"start {gc_max * 1000:.1f} ms"
        )
    print(f"  session process: {f['main_cpu_per_wall']:.3f} CPU s per wall s")
    cores = os.cpu_count() or 1
    shared = f["others_cpu_per_wall"] > SHARED_CPU
    print(
        f"  machine: {f['machine_cpu_per_wall']:.2f} CPU s per wall s busy of {cores} cores, "
        f"of which other programs {f['others_cpu_per_wall']:.2f} (hypervisor steal "
        f"{f['steal_per_wall']:.2f}); load average {f['load'][0]:.2f}"
        + (
            f"; SHARED: other programs took more than {SHARED_CPU} CPU s/s, so done/due and "
            "lateness are not the product's alone (CPU per poll still is)"
            if shared
            else ""
        )
    )
    print(
        f"  server process(es): {f['server_cpu_per_wall']:.3f} CPU s per wall s, "
        f"{f['server_us_per_request']:.0f} us per request"
    )
    worker_us, main_us = f["worker_us_per_poll"], f["main_us_per_poll"]
    # What the schedule asks of the machine at the CPU per poll measured (server included),
    # against its cores: whether the wall-clock targets can be met on it at all.
    rate = args.tables * 1000.0 / args.interval_ms
    per_poll_all = worker_us + main_us + f["server_us_per_request"]
    need = rate * per_poll_all / 1e6
    vs = f" = {(worker_us + main_us) / bare['cpu_us_per_poll']:.2f}x bare" if bare else ""
    checks = [
        ("polls done / due", f"{f['polls_done']:.0f} / {f['polls_due']:.0f} = "
         f"{f['ratio']:.4f}", ">= 0.99", f["ratio"] >= 0.99),
        ("p99 poll-start lateness", f"{f['p99_ms']:.0f} ms (p50 {f['p50_ms']:.0f} ms)",
         "<= 100 ms", f["p99_ms"] <= 100.0),
        ("CPU per poll", f"{worker_us + main_us:.0f} us (workers {worker_us:.0f} + session "
         f"{main_us:.0f}){vs}", "(info)", True),
        ("CPU the schedule needs", f"{rate:,.0f} polls/s x {per_poll_all:.0f} us = "
         f"{need:.2f} CPU s/s of {cores} cores", "(info)", True),
        ("memory per table", f"{f['rss_per_table'] / 1024:.1f} KiB (session "
         f"{f['session_rss_per_table'] / 1024:.1f} + workers "
         f"{f['worker_rss_per_table'] / 1024:.1f}); the session's grew "
         f"{f['session_growth_per_table_hour'] / 1024:.0f} KiB per table per hour in the "
         "window", "(info)", True),
    ]  # fmt: skip
    width = max(len(c[0]) for c in checks)
    print(f"{'measure'.ljust(width)}  {'value':<52} {'target':<9} result")
    for name, value, target, ok in checks:
        print(f"{name.ljust(width)}  {value:<52} {target:<9} {'PASS' if ok else 'FAIL'}")
    return 0 if all(c[3] for c in checks) else 1
