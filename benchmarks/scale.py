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

Run: ``.venv/bin/python benchmarks/scale.py [--tables N] [--seconds S] [--burst]``.
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


def _serve(conn: Connection) -> None:
    """Server process: a tiny JSON API on 127.0.0.1, port sent back through ``conn``."""
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
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
        await site.start()
        port = runner.addresses[0][1]
        conn.send(port)
        cpu0 = time.process_time()
        wall0 = time.monotonic()
        await asyncio.get_running_loop().run_in_executor(None, conn.recv)  # wait for "stop"
        conn.send((time.process_time() - cpu0) / (time.monotonic() - wall0))
        await runner.cleanup()

    asyncio.run(serve())


@dataclass
class Record:
    """Per-table measurements, filled in by the operator hook and the emit callback."""

    first_scheduled: float | None = None
    lateness: list[float] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)
    rows: int = 0


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
    gc.callbacks.remove(on_gc)
    gc.enable()
    for task in tasks:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    fatal = [r for r in results if isinstance(r, Exception)]

    # Polls due: schedule ticks up to half an interval before the end (a tick later than that
    # may legitimately still be in flight). Done: polls started by then that completed.
    cutoff = wall1 - interval / 2
    due = done = 0
    lateness: list[float] = []
    for op, record in zip(operators, records, strict=True):
        if record.first_scheduled is None:
            continue
        due += int((cutoff - record.first_scheduled) // interval) + 1
        started = [s for s in record.starts if s <= cutoff]
        # One row per successful poll here, so completed polls = rows + failed polls.
        in_flight = len(record.starts) - (record.rows + op.status.failures)
        if in_flight > 0 and started and record.starts[-1] <= cutoff:
            started.pop()
        done += len(started)
        lateness.extend(record.lateness)
    lateness.sort()
    p99 = lateness[int(0.99 * (len(lateness) - 1))] if lateness else float("nan")
    p50 = lateness[len(lateness) // 2] if lateness else float("nan")
    return {
        "seconds": wall1 - wall0,
        "polls_due": due,
        "polls_done": done,
        "ratio": done / due if due else 0.0,
        "p50_ms": p50 * 1000,
        "p99_ms": p99 * 1000,
        "cpu_per_wall": (cpu1 - cpu0) / (wall1 - wall0),
        "failures": sum(op.status.failures for op in operators),
        "rows": sum(r.rows for r in records),
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
    args = parser.parse_args(argv)

    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(child,), daemon=True)
    server.start()
    try:
        port = parent.recv()
        figures = asyncio.run(
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
        parent.send("stop")
        server_cpu = parent.recv()
    finally:
        if server.is_alive():
            parent.send("stop")
        server.join(timeout=10)
        if server.is_alive():
            server.terminate()

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
            "<= 50 ms",
            figures["p99_ms"] <= 50.0,
        ),
        (
            "CPU s per wall s",
            f"{figures['cpu_per_wall']:.3f}",
            "<= 0.5",
            figures["cpu_per_wall"] <= 0.5,
        ),
    ]
    mode = "burst start" if args.burst else "starts spread over one interval"
    if args.gc != "default":
        mode += f", garbage collector {args.gc}"
    print(
        f"scale: {args.tables} polling_http tables ({args.format}), every {args.interval_ms} ms, "
        f"{figures['seconds']:.1f} s, {mode}; server in a separate process"
    )
    print(
        f"rows emitted {figures['rows']:.0f}, failed polls {figures['failures']:.0f}, "
        f"tables stopped by a fatal error {figures['fatal']:.0f}; "
        f"server process CPU s per wall s {server_cpu:.2f} (not ours)"
    )
    print(
        f"garbage collections {figures['gc_count']:.0f}, {figures['gc_total_s']:.2f} s in total "
        f"({figures['gc_cpu_s']:.2f} s CPU), longest pause {figures['gc_max_ms']:.1f} ms"
    )
    width = max(len(c[0]) for c in checks)
    print(f"{'measure'.ljust(width)}  {'value':<36} {'target':<9} result")
    for name, value, target, ok in checks:
        print(f"{name.ljust(width)}  {value:<36} {target:<9} {'PASS' if ok else 'FAIL'}")
    return 0 if all(c[3] for c in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
