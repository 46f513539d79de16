"""SSE benchmark (issue 13 §8): events/s into a live table against the raw parse rate.

One run builds a stream of Wikimedia-recentchange-like events (``id:``, ``event:``, one JSON
``data:`` line each, ~600 bytes) and measures, on the same bytes:

* ``table``: the real :class:`~arroyo_lite.connectors.sse.operator.SseOperator` reading the
  stream from a local aiohttp server (127.0.0.1, port 0) over HTTP, its batches appended to a
  real :class:`~arroyo_lite.runtime.store.Store` table; from the connection until the last row
  is in the table;
* ``parse``: the raw parse rate of the same events, in memory: the same bytes, in the same
  64 KiB chunks, through :class:`~arroyo_lite.connectors.sse.parser.EventStreamParser` and the
  table's decoder (:class:`~arroyo_lite.formats.messages.MessageDecoder`, in batches of the
  source's size), no network, no table;
* ``read_json``: for reference, ``pyarrow.json.read_json`` of the events' data as NDJSON with
  the table's schema (the JSON decoding alone, no SSE framing).

and prints events/s and ``table / parse`` against the 0.7x target (best of ``--rounds``).

    .venv/bin/python benchmarks/sse.py            # 200,000 events, 3 rounds (~30 s)
    .venv/bin/python benchmarks/sse.py --quick    # 20,000 events, 1 round (smoke test)
"""

from __future__ import annotations

import argparse
import asyncio
import io
import random
import sys
import time
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.json as pajson
from aiohttp import web

from arroyo_lite.config import TableConfig
from arroyo_lite.connectors.base import SourceContext
from arroyo_lite.connectors.sse.operator import SseOperator
from arroyo_lite.connectors.sse.parser import EventStreamParser
from arroyo_lite.connectors.streaming.batcher import MAX_BYTES, MAX_MESSAGES
from arroyo_lite.demo.streams import recent_change
from arroyo_lite.formats.messages import MessageDecoder
from arroyo_lite.runtime.store import Store
from arroyo_lite.sql import compile_sql

TARGET_RATIO = 0.7
CHUNK = 64 * 1024

COLUMNS = """
    id BIGINT,
    type TEXT,
    title TEXT,
    "user" TEXT,
    bot BOOLEAN,
    namespace INT,
    wiki TEXT,
    server_name TEXT,
    timestamp BIGINT,
    length STRUCT<old BIGINT, new BIGINT>
"""


def make_stream(events: int) -> tuple[bytes, list[bytes]]:
    """The SSE bytes of ``events`` events, and their data payloads."""
    now = 1_700_000_000.0
    datas = [orjson.dumps(recent_change(i, now + i / 1000)) for i in range(events)]
    random.Random(0)  # (the events are deterministic per offset already)
    parts = [b":ok\n\n"]
    for i, data in enumerate(datas):
        parts.append(b'event: message\nid: [{"offset":%d}]\ndata: %s\n\n' % (i, data))
    return b"".join(parts), datas


def table_config(endpoint: str) -> TableConfig:
    sql = (
        f"CREATE TABLE rc ({COLUMNS}) WITH (connector = 'sse', format = 'json', "
        f"endpoint = '{endpoint}');\nSELECT 1;"
    )
    (table,) = compile_sql(sql, env={}).tables
    return table


async def serve(stream: bytes) -> tuple[web.AppRunner, int]:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        view = memoryview(stream)
        for start in range(0, len(stream), CHUNK):
            await response.write(bytes(view[start : start + CHUNK]))
        await asyncio.Event().wait()  # keep the stream open: the client decides when to stop
        return response

    app = web.Application()
    app.router.add_get("/stream", handler)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, int(runner.addresses[0][1])


async def run_table(config: TableConfig, events: int) -> float:
    """Seconds from starting the source to ``events`` rows in a store table."""
    store = Store(compact=True)
    store.create("rc", config.output_schema())
    operator = SseOperator(config, SourceContext())
    done = asyncio.Event()
    rows = [0]

    def emit(batch: pa.RecordBatch) -> None:
        store.append("rc", batch)
        rows[0] += batch.num_rows
        if rows[0] >= events:
            done.set()

    started = time.perf_counter()
    task = asyncio.create_task(operator.run(emit))
    await asyncio.wait_for(done.wait(), 600)
    elapsed = time.perf_counter() - started
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert store.snapshot(["rc"])["rc"].num_rows == events
    store.close() if hasattr(store, "close") else None
    return elapsed


def run_parse(config: TableConfig, stream: bytes, events: int) -> float:
    """Seconds to parse and decode the same bytes in memory, batched as the source does."""
    decoder = MessageDecoder(config)
    started = time.perf_counter()
    parser = EventStreamParser()
    pending: list[bytes] = []
    size = 0
    rows = 0
    for start in range(0, len(stream), CHUNK):
        for event in parser.feed(stream[start : start + CHUNK]):
            pending.append(event.data)
            size += len(event.data)
            if len(pending) >= MAX_MESSAGES or size >= MAX_BYTES:
                rows += decoder.decode(pending, 0).rows
                pending, size = [], 0
    if pending:
        rows += decoder.decode(pending, 0).rows
    elapsed = time.perf_counter() - started
    assert rows == events, (rows, events)
    return elapsed


def run_read_json(config: TableConfig, datas: list[bytes]) -> float:
    ndjson = b"\n".join(datas)
    schema = config.decode_schema()
    options = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    started = time.perf_counter()
    table = pajson.read_json(io.BytesIO(ndjson), parse_options=options)
    elapsed = time.perf_counter() - started
    assert table.num_rows == len(datas)
    return elapsed


async def main_async(events: int, rounds: int) -> dict[str, Any]:
    stream, datas = make_stream(events)
    runner, port = await serve(stream)
    config = table_config(f"http://127.0.0.1:{port}/stream")
    best = {"table": float("inf"), "parse": float("inf"), "read_json": float("inf")}
    try:
        for _ in range(rounds):
            best["parse"] = min(best["parse"], run_parse(config, stream, events))
            best["table"] = min(best["table"], await run_table(config, events))
            best["read_json"] = min(best["read_json"], run_read_json(config, datas))
    finally:
        await runner.cleanup()
    return {"events": events, "bytes": len(stream), **best}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="20,000 events, 1 round")
    args = parser.parse_args(argv)
    events, rounds = (20_000, 1) if args.quick else (args.events, args.rounds)
    r = asyncio.run(main_async(events, rounds))
    n, mb = r["events"], r["bytes"] / 1e6
    print(f"{n:,} events, {mb:.1f} MB of text/event-stream (best of {rounds})")
    print(f"{'path':<12}{'events/s':>12}{'MB/s':>9}")
    for name in ("table", "parse", "read_json"):
        print(f"{name:<12}{n / r[name]:>12,.0f}{mb / r[name]:>9.1f}")
    ratio = r["parse"] / r["table"]
    verdict = "PASS" if ratio >= TARGET_RATIO else "FAIL"
    print(f"table / parse = {ratio:.2f}  (target >= {TARGET_RATIO}): {verdict}")
    print(f"table / read_json = {r['read_json'] / r['table']:.2f}  (reference only)")
    return 0 if ratio >= TARGET_RATIO else 1


if __name__ == "__main__":
    sys.exit(main())
