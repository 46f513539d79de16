"""Scale benchmark: many ``polling_http`` tables in one process (issue 3 §8).

``--tables`` tables (default 1,000), compiled from real SQL, each poll one local aiohttp server
every ``--interval-ms`` (default 1000) for ``--seconds`` (default 30). The server runs in a
separate process so its CPU is not counted against ours. Reports:

* polls done / polls due (target >= 0.99): a poll is due at each tick of a table's schedule
  inside the window; it is done if it completed;
* p99 lateness of a poll start against its schedule (target <= 50 ms): against one interval
  after the previous start, so a poll delayed by a slow predecessor counts as late; measured
  with the operator's ``poll_started`` hook;
* CPU seconds used per wall second by this process (target <= 0.5), from
  ``time.process_time()`` over the window.

By default table starts are spread over the first interval (as tables created one after
another would be); ``--burst`` starts them all at the same instant instead, the worst case.
The cyclic garbage collector's pauses are reported too: with 1,000 sleeping tasks, objects that
outlive a sleep are promoted to the oldest generation, and full collections over the whole heap
are a main source of lateness. ``--gc tuned`` (the default) applies
:func:`arroyo_lite.runtime.loop.tune_gc`, exactly what ``arroyo-lite run``, ``demo`` and ``repl`` do
once their tables exist (freeze the startup heap, raise the young-generation threshold);
``--gc default`` measures the interpreter's defaults, ``--gc freeze`` only freezes, and
``--gc off`` disables the collector during the run (an upper bound).

The baseline (issue 16): ``--baseline`` (the default ``both``) first runs a bare aiohttp client
loop on the same schedule against the same server in the same process (one task per table:
sleep to the tick, ``session.get``, ``read``), then the tables; each phase reports CPU
microseconds per completed poll from ``time.process_time()`` (CPU, not wall time: the machine
is shared), and the ratio ours / bare is printed. Memory per table is the growth of this
process's resident set from before the operators are built to the end of the run, divided by
the number of tables (read it from a ``--baseline ours`` run: after the baseline phase the
process reuses memory that phase freed). ``--loop uvloop`` runs both phases on uvloop (when
installed: ``pip install 'arroyo-lite[fast]'``), as ``arroyo-lite`` itself does then.

Run: ``.venv/bin/python benchmarks/scale.py [--tables N] [--seconds S] [--burst]
[--baseline both|bare|ours] [--loop asyncio|uvloop]``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import multiprocessing
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import pyarrow as pa


def serve(conn: Connection, port: int = 0, kind: str = "aiohttp") -> None:
    """Server process: a tiny JSON API on 127.0.0.1 (``/t/<i>``), port sent back through
    ``conn``; on "stop", sends back its CPU seconds per wall second (``poll_step.py`` too).

    ``port`` other than 0 joins servers already listening there (``SO_REUSEPORT``: the
    kernel spreads connections over them); ``kind`` ``fast`` is :func:`serve_fast`."""
    if kind == "fast":
        serve_fast(conn, port)
        return
    from aiohttp import web

    hits = 0

    async def handler(request: web.Request) -> web.Response:
        nonlocal hits
        hits += 1
        body = b'{"id":%s,"hits":%d,"status":"ok"}' % (request.match_info["i"].encode(), hits)
        return web.Response(body=body, content_type="application/json")

    async def serve() -> None:
        app = web.Application()
        app.router.add_get("/t/{i}", handler)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096, reuse_port=True)
        await site.start()
        conn.send(runner.addresses[0][1])
        cpu0 = time.process_time()
        wall0 = time.monotonic()
        await _answer_until_stop(conn, lambda: hits)
        conn.send((time.process_time() - cpu0) / (time.monotonic() - wall0))
        await runner.cleanup()

    asyncio.run(serve())


async def _answer_until_stop(conn: Connection, hits: Any) -> None:
    """Wait for "stop" on ``conn``; answer each "stats" with this process's CPU seconds and
    the requests it answered (``hits()``), so a run can take the server's CPU per request
    over its own window."""
    loop = asyncio.get_running_loop()
    while (await loop.run_in_executor(None, conn.recv)) == "stats":
        conn.send((time.process_time(), hits()))


def serve_fast(conn: Connection, port: int) -> None:
    """The same API as :func:`serve` on a bare asyncio protocol (uvloop when installed):
    HTTP/1.1 keep-alive, ``Content-Length`` bodies, GET requests without bodies (what the
    pollers send). A few times cheaper per request than aiohttp's server, so that on a small
    machine more of the CPU is left to the side measured."""
    import socket

    hits = 0
    head = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"

    class Http(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport: Any = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            nonlocal hits
            self.buffer += data
            out = []
            while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
                request, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
                path = request.split(b" ", 2)[1]
                hits += 1
                body = b'{"id":%s,"hits":%d,"status":"ok"}' % (path.rsplit(b"/", 1)[-1], hits)
                out.append(head % len(body) + body)
            if out:
                self.transport.write(b"".join(out))

    async def run() -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(("127.0.0.1", port))
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Http, sock=sock, backlog=4096)
        conn.send(sock.getsockname()[1])
        cpu0, wall0 = time.process_time(), time.monotonic()
        await _answer_until_stop(conn, lambda: hits)
        conn.send((time.process_time() - cpu0) / (time.monotonic() - wall0))
        server.close()

    with asyncio.Runner(loop_factory=lambda: new_loop("auto")) as runner:
        runner.run(run())


@dataclass
class Record:
    """Per-table measurements, filled in by the operator hook and the emit callback."""

    first_scheduled: float | None = None
    lateness: list[float] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)
    rows: int = 0


def new_loop(kind: str) -> asyncio.AbstractEventLoop:
    """An event loop of ``kind``: ``asyncio``, ``uvloop``, or ``auto`` (as arroyo-lite picks)."""
    if kind == "asyncio":
        return asyncio.new_event_loop()
    if kind == "uvloop":
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
        return loop
    from arroyo_lite.runtime.loop import new_event_loop

    return new_event_loop()


def _make_operator_class() -> Any:
    from arroyo_lite.connectors.polling_http.operator import PollingHttpOperator

    class MeasuredOperator(PollingHttpOperator):
        record: Record

        def poll_started(self, due: float, started: float) -> None:
            if self.record.first_scheduled is None:
                self.record.first_scheduled = due
            self.record.lateness.append(started - due)
            self.record.starts.append(started)

    return MeasuredOperator


def _rss_bytes() -> int:
    """This process's resident set size (Linux ``/proc``; 0 elsewhere)."""
    from arroyo_lite.runtime.worker_wire import resident_bytes

    return resident_bytes()


def _tally(
    records: list[Record], failures: list[int], wall1: float, interval: float
) -> tuple[int, int, list[float]]:
    """Polls due and done up to half an interval before ``wall1``, and every lateness.

    Due: schedule ticks up to half an interval before the end (a tick later than that may
    legitimately still be in flight). Done: polls started by then that completed.
    """
    cutoff = wall1 - interval / 2
    due = done = 0
    lateness: list[float] = []
    for record, failed in zip(records, failures, strict=True):
        if record.first_scheduled is None:
            continue
        due += int((cutoff - record.first_scheduled) // interval) + 1
        started = [s for s in record.starts if s <= cutoff]
        # One row per successful poll here, so completed polls = rows + failed polls.
        in_flight = len(record.starts) - (record.rows + failed)
        if in_flight > 0 and started and record.starts[-1] <= cutoff:
            started.pop()
        done += len(started)
        lateness.extend(record.lateness)
    lateness.sort()
    return due, done, lateness


async def _run_bare(
    tables: int, seconds: float, interval_ms: int, port: int, burst: bool, first: int = 0
) -> dict[str, Any]:
    """The baseline: a bare aiohttp client loop per table, same schedule, same server
    (tables ``first`` .. ``first + tables - 1``)."""
    import aiohttp

    interval = interval_ms / 1000.0
    records = [Record() for _ in range(tables)]
    failures = [0] * tables
    timeout = aiohttp.ClientTimeout(total=10.0)

    async def poll(i: int, session: aiohttp.ClientSession) -> None:
        if not burst:
            await asyncio.sleep(interval * i / tables)
        record = records[i]
        url = f"http://127.0.0.1:{port}/t/{first + i}"
        due = time.monotonic()
        record.first_scheduled = due
        while True:
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            started = time.monotonic()
            record.lateness.append(started - due)
            record.starts.append(started)
            try:
                async with session.get(url, timeout=timeout) as resp:
                    await resp.read()
                record.rows += 1
            except (aiohttp.ClientError, TimeoutError):
                failures[i] += 1
            # Lateness is against one interval after the start, as for the operator.
            due = started + interval

    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=60)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        wall0 = time.monotonic()
        cpu0 = time.process_time()
        tasks = [asyncio.create_task(poll(i, session)) for i in range(tables)]
        await asyncio.sleep(seconds)
        wall1 = time.monotonic()
        cpu1 = time.process_time()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    due, done, lateness = _tally(records, failures, wall1, interval)
    completed = sum(r.rows for r in records) + sum(failures)
    return {
        "polls_due": due,
        "polls_done": done,
        "ratio": done / due if due else 0.0,
        "p99_ms": _quantile(lateness, 0.99) * 1000,
        "p50_ms": _quantile(lateness, 0.5) * 1000,
        "cpu_per_wall": (cpu1 - cpu0) / (wall1 - wall0),
        "cpu_us_per_poll": (cpu1 - cpu0) / max(completed, 1) * 1e6,
        "cpu_s": cpu1 - cpu0,
        "failures": sum(failures),
        "lateness": lateness,
    }


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[int(q * (len(sorted_values) - 1))]


def _sql(tables: int, port: int, interval_ms: int, fmt: str) -> str:
    columns = "id BIGINT, hits BIGINT, status TEXT" if fmt == "json" else "value TEXT"
    return "\n".join(
        f"""CREATE TABLE t{i} ({columns}) WITH (
  connector = 'polling_http', endpoint = 'http://127.0.0.1:{port}/t/{i}',
  poll_interval_ms = {interval_ms}, format = '{fmt}');"""
        for i in range(tables)
    )


async def _run(
    tables: int,
    seconds: float,
    interval_ms: int,
    port: int,
    burst: bool,
    fmt: str,
    gc_mode: str,
) -> dict[str, float]:
    from arroyo_lite.clock import SystemClock
    from arroyo_lite.connectors.base import SourceContext
    from arroyo_lite.runtime.loop import tune_gc
    from arroyo_lite.sql import compile_sql

    rss0 = _rss_bytes()
    program = compile_sql(_sql(tables, port, interval_ms, fmt), env={})
    operator_class = _make_operator_class()
    interval = interval_ms / 1000.0
    records = [Record() for _ in range(tables)]
    operators = []
    for config, record in zip(program.tables, records, strict=True):
        op = operator_class(config, SourceContext(clock=SystemClock()))
        op.record = record
        operators.append(op)

    def emitter(record: Record) -> Any:
        def emit(batch: pa.RecordBatch) -> None:
            record.rows += batch.num_rows

        return emit

    async def start(i: int, op: Any) -> None:
        if not burst:
            await asyncio.sleep(interval * i / tables)
        await op.run(emitter(records[i]))

    if gc_mode == "freeze":
        gc.collect()
        gc.freeze()
    if gc_mode == "tuned":
        tune_gc()
    if gc_mode == "off":
        gc.disable()
    pauses: list[float] = []
    gc_cpu: list[float] = []
    gc_started = [0.0, 0.0]

    def on_gc(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            gc_started[:] = [time.perf_counter(), time.thread_time()]
        else:
            pauses.append(time.perf_counter() - gc_started[0])
            gc_cpu.append(time.thread_time() - gc_started[1])

    gc.callbacks.append(on_gc)
    wall0 = time.monotonic()
    cpu0 = time.process_time()
    tasks = [asyncio.create_task(start(i, op)) for i, op in enumerate(operators)]
    await asyncio.sleep(seconds)
    wall1 = time.monotonic()
    cpu1 = time.process_time()
    rss1 = _rss_bytes()
    gc.callbacks.remove(on_gc)
    gc.enable()
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    fatal = [r for r in results if isinstance(r, Exception)]

    due, done, lateness = _tally(
        records, [op.status.failures for op in operators], wall1, interval
    )
    completed = sum(r.rows for r in records) + sum(op.status.failures for op in operators)
    p99 = _quantile(lateness, 0.99)
    p50 = _quantile(lateness, 0.5)
    return {
        "seconds": wall1 - wall0,
        "polls_due": due,
        "polls_done": done,
        "ratio": done / due if due else 0.0,
        "p50_ms": p50 * 1000,
        "p99_ms": p99 * 1000,
        "cpu_per_wall": (cpu1 - cpu0) / (wall1 - wall0),
        "cpu_us_per_poll": (cpu1 - cpu0) / max(completed, 1) * 1e6,
        "rss_per_table": (rss1 - rss0) / tables,
        "failures": sum(op.status.failures for op in operators),
        "rows": sum(r.rows for r in records),
        "tables_polled": sum(1 for r in records if r.rows),
        "fatal": len(fatal),
        "gc_count": len(pauses),
        "gc_total_s": sum(pauses),
        "gc_max_ms": max(pauses, default=0.0) * 1000,
        "gc_cpu_s": sum(gc_cpu),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Many polling_http tables in one process.")
    parser.add_argument("--tables", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--interval-ms", type=int, default=1000)
    parser.add_argument("--burst", action="store_true", help="start every table at once")
    parser.add_argument(
        "--format",
        choices=["json", "raw_string"],
        default="json",
        help="table format: json (decoded into 3 columns) or raw_string (no parsing)",
    )
    parser.add_argument(
        "--gc",
        choices=["default", "freeze", "tuned", "off"],
        default="tuned",
        help="garbage collector setting during the run (see the module docstring)",
    )
    parser.add_argument(
        "--baseline",
        choices=["both", "bare", "ours"],
        default="both",
        help="run the bare aiohttp baseline, the tables, or both (baseline first)",
    )
    parser.add_argument(
        "--loop",
        choices=["auto", "asyncio", "uvloop"],
        default="auto",
        help="event loop: auto (uvloop when installed, as arroyo-lite does), asyncio, uvloop",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="N >= 2: the tables run in a session with N worker processes (run --workers N), "
        "the baseline in N processes (benchmarks/scale_workers.py)",
    )
    parser.add_argument(
        "--servers", type=int, default=1, help="server processes sharing the port (SO_REUSEPORT)"
    )
    parser.add_argument(
        "--server",
        choices=["aiohttp", "fast"],
        default="aiohttp",
        help="server implementation: aiohttp's, or a bare asyncio protocol (cheaper)",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=5.0,
        help="with --workers: seconds measured after every table polled once",
    )
    parser.add_argument(
        "--timeline",
        action="store_true",
        help="with --workers: print each second of the window per worker (polls started, "
        "late ones, collector passes), to see whether late polls come in bursts",
    )
    args = parser.parse_args(argv)
    def loop_factory() -> asyncio.AbstractEventLoop:
        return new_loop(args.loop)

    ctx = multiprocessing.get_context("spawn")
    servers: list[tuple[Any, Connection]] = []
    port = 0
    for _ in range(max(args.servers, 1)):
        parent, child = ctx.Pipe()
        process = ctx.Process(target=serve, args=(child, port, args.server), daemon=True)
        process.start()
        port = parent.recv()
        servers.append((process, parent))
    if args.workers > 1:
        from scale_workers import run_with_workers

        def server_stats() -> tuple[float, int]:
            """The servers' CPU seconds and requests answered so far, summed."""
            cpu, hits = 0.0, 0
            for _, conn in servers:
                conn.send("stats")
                a, b = conn.recv()
                cpu, hits = cpu + a, hits + b
            return cpu, hits

        try:
            return run_with_workers(args, port, server_stats)
        finally:
            for process, parent in servers:
                parent.send("stop")
                process.join(timeout=10)
    server, parent = servers[0]
    bare: dict[str, Any] | None = None
    figures: dict[str, float] | None = None
    try:
        if args.baseline in ("both", "bare"):
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                bare = runner.run(
                    _run_bare(args.tables, args.seconds, args.interval_ms, port, args.burst)
                )
        if args.baseline in ("both", "ours"):
            with asyncio.Runner(loop_factory=loop_factory) as runner:
                loop_name = type(runner.get_loop()).__module__.split(".")[0]
                figures = runner.run(
                    _run(
                        args.tables,
                        args.seconds,
                        args.interval_ms,
                        port,
                        args.burst,
                        args.format,
                        args.gc,
                    )
                )
        server_cpu = 0.0
        for _, conn in servers:
            conn.send("stop")
            server_cpu += conn.recv()
    finally:
        for process, conn in servers:
            if process.is_alive():
                conn.send("stop")
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()

    mode = "burst start" if args.burst else "starts spread over one interval"
    if args.gc != "default":
        mode += f", garbage collector {args.gc}"
    print(
        f"scale: {args.tables} polling_http tables ({args.format}), every {args.interval_ms} ms, "
        f"{args.seconds:.1f} s per phase, {mode}, loop {args.loop}; "
        f"server in {len(servers)} separate process(es) ({args.server}; CPU s per wall s "
        f"{server_cpu:.2f}, not ours)"
    )
    if bare is not None:
        print(
            f"baseline (bare aiohttp loop): done/due {bare['polls_done']:.0f} / "
            f"{bare['polls_due']:.0f} = {bare['ratio']:.4f}, p99 lateness "
            f"{bare['p99_ms']:.1f} ms, CPU {bare['cpu_us_per_poll']:.0f} us/poll "
            f"({bare['cpu_per_wall']:.3f} CPU s per wall s), failed {bare['failures']:.0f}"
        )
    if figures is None:
        return 0
    print(
        f"tables (event loop {loop_name}): rows emitted {figures['rows']:.0f}, failed polls "
        f"{figures['failures']:.0f}, tables stopped by a fatal error {figures['fatal']:.0f}, "
        f"tables polled at least once {figures['tables_polled']:.0f} / {args.tables}, "
        f"memory {figures['rss_per_table'] / 1024:.1f} KiB per table (RSS growth / tables"
        f"{'; after the baseline phase, so low: use --baseline ours' if bare else ''})"
    )
    print(
        f"garbage collections {figures['gc_count']:.0f}, {figures['gc_total_s']:.2f} s in total "
        f"({figures['gc_cpu_s']:.2f} s CPU), longest pause {figures['gc_max_ms']:.1f} ms"
    )
    per_poll = figures["cpu_us_per_poll"]
    vs = f" = {per_poll / bare['cpu_us_per_poll']:.2f}x bare aiohttp" if bare else ""
    checks = [
        (
            "polls done / due",
            f"{figures['polls_done']:.0f} / {figures['polls_due']:.0f} = {figures['ratio']:.4f}",
            ">= 0.99",
            figures["ratio"] >= 0.99,
        ),
        (
            "p99 poll-start lateness",
            f"{figures['p99_ms']:.1f} ms (p50 {figures['p50_ms']:.1f} ms)",
            "<= 100 ms",
            figures["p99_ms"] <= 100.0,
        ),
        ("CPU per poll", f"{per_poll:.0f} us{vs}", "<= 150 us", per_poll <= 150.0),
        (
            "CPU s per wall s",
            f"{figures['cpu_per_wall']:.3f}",
            "(info)",
            True,
        ),
    ]
    width = max(len(c[0]) for c in checks)
    print(f"{'measure'.ljust(width)}  {'value':<40} {'target':<9} result")
    for name, value, target, ok in checks:
        print(f"{name.ljust(width)}  {value:<40} {target:<9} {'PASS' if ok else 'FAIL'}")
    return 0 if all(c[3] for c in checks) else 1

if __name__ == "__main__":
    sys.exit(main())
