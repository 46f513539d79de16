"""Freshness benchmark: how soon a polled response's rows are visible to ``Session.query``,
and where the time goes.

A local HTTP server (its own process, 127.0.0.1, port 0) answers every request with
``{"seq": n, "sent": <time_ns when the response was built>}``. The session polls it from
``--tables`` tables every ``--interval-ms`` (default 10 x 100 ms = 100 polls/s). The main
thread queries all tables in a loop (``--query-gap-ms`` apart). When a table's newest ``seq``
first shows up in a result, the sample is ``snapshot - sent``: from the response leaving the
server to the snapshot of the first query that saw its row (issue 16 item 4: p99 <= 20 ms).

Each sample is followed through its stages, timestamped on the real path:

* ``sent``      the server built the response (in the body);
* ``received``  the operator read the body (the row's ``_timestamp``, microseconds);
* ``handed``    the decoded batch reached ``Store.append`` (the store's ``append`` is wrapped
                for this run, on this session only: entry and exit are timed);
* ``visible``   ``Store.append`` returned: any snapshot from now on holds the row;
* ``pinned``    the observing query took its snapshot (``Store.snapshot`` on the main thread);
* ``returned``  that query's result was back in the caller.

It prints each stage's p50/p99 and, for the samples at or above the p99 (the tail), what
their time was made of, and what else happened meanwhile: garbage collections
(``gc.callbacks``), compaction passes (``Store.compact``, wrapped), and how long the event
loop thread and the query thread were *runnable but not running* (``/proc`` schedstat): that
part is the machine's load, which a quiet machine does not have. Each query's CPU time
(``thread_time``), run-queue wait and the rest of its wall time (blocked: waiting for the GIL
or a lock) are printed too, so a loaded run still says what a quiet one would see.

A probe thread meanwhile looks every 0.5 ms at ``session.store.snapshot()`` -- the snapshot a
``Session.query`` starting then would pin -- and records ``now - sent`` for every new row
(the figure without the wait for the next query).

``--switch-interval-ms`` sets ``sys.setswitchinterval`` (CPython's default is 5 ms: how long a
thread wanting the GIL waits before it asks the holder to drop it), ``--gc tuned`` applies
:func:`~arroyo_lite.runtime.loop.tune_gc` as ``run`` does (default: CPython's thresholds).

    .venv/bin/python benchmarks/freshness.py [--tables 10] [--interval-ms 100] [--seconds 20]
"""

from __future__ import annotations

import argparse
import bisect
import gc
import itertools
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from arroyo_lite import Session

TARGET_P99_MS = 20.0
#: How often the probe thread looks at the store (seconds).
PROBE_EVERY = 0.0005
#: The probe reads the threads' schedstat every this many looks.
SCHED_EVERY = 4

SERVER = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from aiohttp import web

    counts = {}

    async def handle(request):
        key = request.path
        counts[key] = counts.get(key, 0) + 1
        body = json.dumps({"seq": counts[key], "sent": time.time_ns()})
        return web.Response(text=body, content_type="application/json")

    async def main():
        app = web.Application()
        app.router.add_get("/{name}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        print(site._server.sockets[0].getsockname()[1], flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


def _p(values: list[float], q: float) -> float:
    """The ``q`` quantile of sorted ``values``."""
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(len(values) * q))]


def _p99(values: list[float]) -> float:
    return _p(values, 0.99)


def schedstat(tid: int) -> tuple[int, int]:
    """(CPU ns, run-queue wait ns) of thread ``tid`` of this process (Linux; zeros elsewhere)."""
    try:
        with open(f"/proc/self/task/{tid}/schedstat") as f:
            cpu, wait, _ = f.read().split()
        return int(cpu), int(wait)
    except (OSError, ValueError):
        return 0, 0


@dataclass
class Series:
    """A thread's cumulative run-queue wait over time (sampled), to attribute intervals."""

    tid: int
    times: list[int] = field(default_factory=list)
    waits: list[int] = field(default_factory=list)
    cpus: list[int] = field(default_factory=list)

    def sample(self, now: int) -> None:
        cpu, wait = schedstat(self.tid)
        self.times.append(now)
        self.cpus.append(cpu)
        self.waits.append(wait)

    def _at(self, values: list[int], t: int) -> float:
        i = bisect.bisect_left(self.times, t)
        if i <= 0:
            return values[0] if values else 0.0
        if i >= len(self.times):
            return values[-1]
        t0, t1 = self.times[i - 1], self.times[i]
        v0, v1 = values[i - 1], values[i]
        return v0 + (v1 - v0) * (t - t0) / max(1, t1 - t0)

    def wait_ms(self, a: int, b: int) -> float:
        """Run-queue wait of the thread between times ``a`` and ``b`` (ms, interpolated)."""
        if not self.times:
            return 0.0
        return (self._at(self.waits, b) - self._at(self.waits, a)) / 1e6


@dataclass
class Trace:
    """What the wrapped store methods and the GC callback record (lists: appends are atomic)."""

    #: (table, seq) -> (sent, received, handed, visible), ns.
    appended: dict[tuple[str, int], tuple[int, int, int, int]] = field(default_factory=dict)
    #: (start, end) ns of every compaction pass that merged something, and how many merges.
    compactions: list[tuple[int, int, int]] = field(default_factory=list)
    #: (start, end, generation) ns of every garbage collection.
    collections: list[tuple[int, int, int]] = field(default_factory=list)
    #: The latest snapshot the main thread took (ns).
    pinned: int = 0
    _gc_start: int = 0

    def on_gc(self, phase: str, info: dict[str, Any]) -> None:
        now = time.time_ns()
        if phase == "start":
            self._gc_start = now
        else:
            self.collections.append((self._gc_start, now, int(info["generation"])))

    def overlap_ms(self, spans: list[tuple[int, int, int]], a: int, b: int) -> float:
        return sum(max(0, min(e, b) - max(s, a)) for s, e, _ in spans) / 1e6


def instrument(session: Session, trace: Trace, main: int) -> None:
    """Time the session's store: append entry/exit per batch, the main thread's snapshots,
    compaction passes. Wraps the methods on this one store object (the code run is the same)."""
    store = session.store
    append: Callable[..., None] = store.append
    snapshot: Callable[..., Any] = store.snapshot
    compact: Callable[..., int] = store.compact

    def timed_append(name: str, batch: Any) -> None:
        handed = time.time_ns()
        append(name, batch)
        visible = time.time_ns()
        last = batch.num_rows - 1
        seq = batch.column("seq")[last].as_py()
        sent = batch.column("sent")[last].as_py()
        stamp = batch.column("_timestamp")
        received = stamp[last].value * _NS_PER[stamp.type.unit]
        trace.appended[(name.lower(), seq)] = (sent, received, handed, visible)

    def timed_snapshot(names: Any = None) -> Any:
        out = snapshot(names)
        if threading.get_ident() == main:
            trace.pinned = time.time_ns()
        return out

    def timed_compact(name: str | None = None, *, due_only: bool = False) -> int:
        start = time.time_ns()
        merges = compact(name, due_only=due_only)
        if merges:
            trace.compactions.append((start, time.time_ns(), merges))
        return merges

    store.append = timed_append  # type: ignore[method-assign]
    store.snapshot = timed_snapshot  # type: ignore[method-assign]
    store.compact = timed_compact  # type: ignore[method-assign]


_NS_PER = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


@dataclass
class Sample:
    sent: int
    received: int
    handed: int
    visible: int
    pinned: int
    returned: int

    @property
    def fresh_ms(self) -> float:
        return (self.pinned - self.sent) / 1e6


STAGES: list[tuple[str, Callable[[Sample], float]]] = [
    ("sent -> received (server, network, the loop reading it)",
     lambda s: (s.received - s.sent) / 1e6),
    ("received -> handed to the store (decode, coalescing turn)",
     lambda s: (s.handed - s.received) / 1e6),
    ("handed -> visible (Store.append, its lock)", lambda s: (s.visible - s.handed) / 1e6),
    ("visible -> pinned by the next query (wait for its snapshot)",
     lambda s: (s.pinned - s.visible) / 1e6),
    ("pinned -> returned (the observing query's run)", lambda s: (s.returned - s.pinned) / 1e6),
]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", type=int, default=10)
    parser.add_argument("--interval-ms", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument(
        "--query-gap-ms",
        type=float,
        default=5.0,
        help="pause between two queries (0: back to back, which also measures how a caller "
        "hogging the GIL slows the runtime thread)",
    )
    parser.add_argument(
        "--switch-interval-ms",
        type=float,
        default=None,
        help="sys.setswitchinterval once the tables exist (default: CPython's 5 ms)",
    )
    parser.add_argument("--gc", choices=("default", "tuned"), default="default")
    args = parser.parse_args(argv)

    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        ddl = "\n".join(
            f"CREATE TABLE t{i} (seq BIGINT, sent BIGINT) WITH (connector = 'polling_http', "
            f"endpoint = 'http://127.0.0.1:{port}/t{i}', format = 'json', "
            f"poll_interval_ms = '{args.interval_ms}');"
            for i in range(args.tables)
        )
        query = " UNION ALL ".join(
            f"SELECT {i} AS t, seq, sent FROM (SELECT seq, sent FROM t{i} ORDER BY seq DESC "
            "LIMIT 1)"
            for i in range(args.tables)
        )
        samples: list[Sample] = []
        queries: list[tuple[int, int, int, float, float]] = []  # start, pinned, end, cpu, runq
        probed: list[float] = []
        trace = Trace()
        main_tid = threading.get_native_id()
        with Session(env={}) as session:
            instrument(session, trace, threading.get_ident())
            session.execute(ddl)
            if args.switch_interval_ms is not None:
                sys.setswitchinterval(args.switch_interval_ms / 1000)
            if args.gc == "tuned":
                from arroyo_lite.runtime.loop import tune_gc

                tune_gc()
            gc.callbacks.append(trace.on_gc)
            loop_tid = session.runtime._thread.native_id or 0
            series = {"loop": Series(loop_tid), "query": Series(main_tid)}
            last_seq = [0] * args.tables
            warmup_until = time.monotonic() + 2.0
            end = warmup_until + args.seconds
            probe = threading.Thread(
                target=_probe,
                args=(session, args.tables, warmup_until, end, probed, list(series.values())),
            )
            probe.start()
            cpu0 = {n: schedstat(s.tid) for n, s in series.items()}
            wall0 = time.time_ns()
            measured_from = 0
            while time.monotonic() < end:
                measuring = time.monotonic() >= warmup_until
                if measuring and not measured_from:
                    measured_from = time.time_ns()
                    cpu0 = {n: schedstat(s.tid) for n, s in series.items()}
                    wall0 = measured_from
                c0, (_, w0) = time.thread_time(), schedstat(main_tid)
                started = time.time_ns()
                rows = session.query(query).to_pylist()
                returned = time.time_ns()
                cpu, (_, w1) = time.thread_time() - c0, schedstat(main_tid)
                pinned = trace.pinned
                if measuring:
                    queries.append((started, pinned, returned, cpu * 1e3, (w1 - w0) / 1e6))
                for row in rows:
                    t = row["t"]
                    if row["seq"] > last_seq[t]:
                        last_seq[t] = row["seq"]
                        stages = trace.appended.get((f"t{t}", row["seq"]))
                        if measuring and stages is not None:
                            samples.append(Sample(*stages, pinned, returned))
                if args.query_gap_ms > 0:
                    time.sleep(args.query_gap_ms / 1000)
            wall1 = time.time_ns()
            cpu1 = {n: schedstat(s.tid) for n, s in series.items()}
            probe.join()
            gc.callbacks.remove(trace.on_gc)
            switch = sys.getswitchinterval()
            polls = sum(s.polls for s in session.status())
            failures = sum(s.failures for s in session.status())
            by_table: dict[str, list[tuple[int, int]]] = {}
            for (name, seq), stages in list(trace.appended.items()):
                by_table.setdefault(name, []).append((seq, stages[0]))
    finally:
        server.kill()
        server.wait()

    if not samples:
        print("no samples: did the sources run?")
        return 1
    rate = args.tables * 1000 / args.interval_ms
    print(f"{args.tables} tables every {args.interval_ms} ms = {rate:.0f} polls/s for "
          f"{args.seconds:.0f} s; {polls} polls ({polls / (args.seconds + 2):.0f}/s), "
          f"{failures} failures; switch interval {switch * 1e3:g} ms, gc {args.gc}")
    wall = (wall1 - wall0) / 1e9
    for name in series:
        cpu_s = (cpu1[name][0] - cpu0[name][0]) / 1e9
        wait_s = (cpu1[name][1] - cpu0[name][1]) / 1e9
        print(f"  {name} thread: {cpu_s / wall:.0%} of the wall time on a CPU, "
              f"{wait_s / wall:.0%} runnable but not running (the machine's load)")
    _print_queries(queries, args.query_gap_ms)
    _print_samples(samples, trace, series)
    # The server stamps each response: the gaps between one table's stamps are the poll
    # interval as run (the loop's timers and how busy it is), whatever the load on the way back.
    gaps = sorted(
        (b[1] - a[1]) / 1e6
        for polls_of in by_table.values()
        for a, b in itertools.pairwise(sorted(polls_of))
        if b[0] == a[0] + 1
    )
    print(f"  poll interval as run (server stamps of one table's consecutive polls): p50 "
          f"{_p(gaps, 0.5):.2f} ms, p99 {_p99(gaps):.2f} ms (asked: {args.interval_ms} ms)")
    probed.sort()
    exact = _p99(probed)
    print(f"freshness probed (sent -> in the snapshot a query would take, looked at every "
          f"{PROBE_EVERY * 1e3:g} ms) over {len(probed)} responses: p50 "
          f"{_p(probed, 0.5):.2f} ms, p99 {exact:.2f} ms")
    loop_fresh = sorted(s.fresh_ms for s in samples)
    p99 = _p99(loop_fresh)
    ok = p99 <= TARGET_P99_MS
    print(f"p99 target <= {TARGET_P99_MS:.0f} ms through the query loop: "
          f"{'PASS' if ok else 'FAIL'} ({p99:.2f} ms); probed: "
          f"{'PASS' if exact <= TARGET_P99_MS else 'FAIL'} ({exact:.2f} ms)")
    return 0 if ok else 1


def _print_queries(queries: list[tuple[int, int, int, float, float]], gap_ms: float) -> None:
    walls = sorted((e - s) / 1e6 for s, _, e, _, _ in queries)
    cpus = sorted(q[3] for q in queries)
    waits = sorted(q[4] for q in queries)
    blocked = sorted(max(0.0, (e - s) / 1e6 - c - w) for s, _, e, c, w in queries)
    print(f"{len(queries)} snapshot queries ({gap_ms:g} ms apart): wall p50 "
          f"{_p(walls, 0.5):.2f} / p99 {_p99(walls):.2f} ms; of it CPU (thread_time) p50 "
          f"{_p(cpus, 0.5):.2f} / p99 {_p99(cpus):.2f} ms, run-queue wait p50 "
          f"{_p(waits, 0.5):.2f} / p99 {_p99(waits):.2f} ms, blocked (GIL, locks, DuckDB's "
          f"threads) p50 {_p(blocked, 0.5):.2f} / p99 {_p99(blocked):.2f} ms")


def _print_samples(samples: list[Sample], trace: Trace, series: dict[str, Series]) -> None:
    fresh = sorted(s.fresh_ms for s in samples)
    total = sorted((s.returned - s.sent) / 1e6 for s in samples)
    print(f"freshness through the query loop (sent -> pinned by the first query that saw it) "
          f"over {len(samples)} responses: p50 {_p(fresh, 0.5):.2f} ms, p99 {_p99(fresh):.2f} "
          f"ms, max {fresh[-1]:.2f} ms; up to that query's result: p50 {_p(total, 0.5):.2f}, "
          f"p99 {_p99(total):.2f} ms")
    # The same samples with the run-queue waits of the two threads on their path taken out:
    # roughly what a machine without other load would show (the lead measures that directly).
    adjusted = sorted(
        s.fresh_ms - series["loop"].wait_ms(s.sent, s.visible)
        - series["query"].wait_ms(s.visible, s.pinned)
        for s in samples
    )
    print(f"  without the run-queue waits (the machine's load) on the way: p50 "
          f"{_p(adjusted, 0.5):.2f} ms, p99 {_p99(adjusted):.2f} ms (an estimate)")
    threshold = _p99(fresh)
    tail = [s for s in samples if s.fresh_ms >= threshold] or samples
    print(f"  stage                                                        p50      p99   "
          f"tail mean (the {len(tail)} samples >= p99)")
    for label, stage in STAGES:
        values = sorted(stage(s) for s in samples)
        print(f"  {label:<60} {_p(values, 0.5):6.2f}  {_p99(values):7.2f}  "
              f"{statistics.fmean(stage(s) for s in tail):7.2f} ms")
    loop, query = series["loop"], series["query"]
    during = {
        "loop thread runnable, not running (sent -> visible)":
            [loop.wait_ms(s.sent, s.visible) for s in tail],
        "query thread runnable, not running (visible -> pinned)":
            [query.wait_ms(s.visible, s.pinned) for s in tail],
        "garbage collection (sent -> pinned)":
            [trace.overlap_ms(trace.collections, s.sent, s.pinned) for s in tail],
        "compaction passes (sent -> pinned)":
            [trace.overlap_ms(trace.compactions, s.sent, s.pinned) for s in tail],
    }  # fmt: skip
    print("  meanwhile, in the tail's samples (mean ms; share of samples touched):")
    for label, values in during.items():
        touched = sum(1 for v in values if v > 0.05) / len(values)
        print(f"    {label:<58} {statistics.fmean(values):7.2f} ms  {touched:4.0%}")
    pauses = sorted((e - s) / 1e6 for s, e, _ in trace.collections)
    gen2 = sum(1 for *_, g in trace.collections if g == 2)
    merges = sum(m for *_, m in trace.compactions)
    print(f"  over the whole run: {len(pauses)} garbage collections ({gen2} full), longest "
          f"{pauses[-1] if pauses else 0:.2f} ms; {len(trace.compactions)} compaction passes "
          f"({merges} merges), longest "
          f"{max(((e - s) / 1e6 for s, e, _ in trace.compactions), default=0):.2f} ms")


def _probe(
    session: Session,
    tables: int,
    start: float,
    end: float,
    out: list[float],
    series: list[Series],
) -> None:
    """Watch the store as ``Session.query`` sees it: every snapshot a query takes is
    ``session.store.snapshot()``. Polls it every PROBE_EVERY seconds (a few microseconds
    each) and records, for every new row, ``now - sent``; every SCHED_EVERY looks it also
    samples the threads' schedstat."""
    names = [f"t{i}" for i in range(tables)]
    seen = dict.fromkeys(names, 0)
    looks = 0
    while time.monotonic() < end:
        snaps = session.store.snapshot(names)
        now = time.time_ns()
        looks += 1
        if looks % SCHED_EVERY == 0:
            for s in series:
                s.sample(now)
        for name in names:
            snap = snaps.get(name)
            if snap is None or snap.end_row <= seen[name]:
                continue
            new = snap.since(seen[name])
            seen[name] = snap.end_row
            if time.monotonic() >= start:
                out.extend((now - sent) / 1e6 for sent in new.column("sent").to_pylist())
        time.sleep(PROBE_EVERY)


if __name__ == "__main__":
    sys.exit(main())
