"""Ingest benchmark (issue 3 §8): response bytes -> record batch, against pyarrow's parse rate.

A local aiohttp server (127.0.0.1, port 0) serves large JSON bodies: a top-level array of
objects, and NDJSON (decoded with ``framing = 'newline'``), at 1 MiB and 4 MiB. For each body
this measures, in one run:

* ``ingest``: an aiohttp GET of the body plus ``Decoder.decode`` (response to record batch);
* ``operator``: the same through the real ``PollingHttpOperator`` (``poll_interval_ms = 1``),
  from the first poll to the last emitted batch;
* ``decode``: ``Decoder.decode`` alone;
* ``read_json``: ``pyarrow.json.read_json`` parsing the NDJSON form of the same rows with its
  default options (type inference), the parse-only reference.

and prints MB/s, rows/s and ``ingest / read_json`` against the 0.5x target. Run:

    .venv/bin/python benchmarks/ingest.py            # full (well under 2 minutes)
    .venv/bin/python benchmarks/ingest.py --quick    # small bodies, few rounds (smoke test)
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp
import pyarrow.json as pajson
from aiohttp import web

from arroyo_lite.config import TableConfig
from arroyo_lite.connectors.base import SourceContext
from arroyo_lite.formats import make_decoder
from arroyo_lite.sql import compile_sql

TARGET_RATIO = 0.5
MIB = 1024 * 1024

COLUMNS = """
    id BIGINT NOT NULL,
    name TEXT,
    amount DOUBLE,
    active BOOLEAN,
    at TIMESTAMP(3),
    tags TEXT[],
    geo STRUCT<lat DOUBLE, lon DOUBLE>
"""


def make_row(i: int, rng: random.Random) -> dict[str, Any]:
    return {
        "id": i,
        "name": f"user-{rng.randrange(10**6)}",
        "amount": round(rng.uniform(0, 1000), 2),
        "active": rng.random() < 0.5,
        "at": f"2024-05-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}"
        f".{i % 1000:03d}Z",
        "tags": [rng.choice(["a", "bb", "ccc"]) for _ in range(rng.randrange(4))],
        "geo": {"lat": rng.uniform(-90, 90), "lon": rng.uniform(-180, 180)},
        "unused": {"note": "ignored by the schema"},
    }


def make_rows(size: int) -> list[bytes]:
    """Serialized rows whose NDJSON form is about ``size`` bytes."""
    rng = random.Random(size)
    rows: list[bytes] = []
    total = 0
    while total < size:
        line = json.dumps(make_row(len(rows), rng), separators=(", ", ": ")).encode()
        rows.append(line)
        total += len(line) + 1
    return rows


@dataclass
class Case:
    name: str
    body: bytes
    ndjson: bytes
    rows: int
    config: TableConfig


def table_config(name: str, url: str, newline: bool) -> TableConfig:
    framing = ", framing = 'newline'" if newline else ""
    sql = (
        f"CREATE TABLE {name} ({COLUMNS}) WITH (connector = 'polling_http', "
        f"endpoint = '{url}', format = 'json', poll_interval_ms = '1'{framing});"
    )
    return compile_sql(sql).tables[0]


def read_reference(ndjson: bytes) -> object:
    """The parse-only reference: pyarrow's NDJSON reader with its default options."""
    return pajson.read_json(io.BytesIO(ndjson))


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


async def timed_ingest_once(session: aiohttp.ClientSession, url: str, case: Case,
                            decoder: Any) -> float:
    """Seconds from sending the GET to holding the decoded batch."""
    start = time.perf_counter()
    async with session.get(url) as response:
        body = await response.read()
    result = await asyncio.to_thread(decoder.decode, body, time.time_ns())
    elapsed = time.perf_counter() - start
    assert result.rows == case.rows, (result.rows, case.rows)
    return elapsed


async def measure(session: aiohttp.ClientSession, url: str, case: Case,
                  rounds: int) -> tuple[float, float, float]:
    """Best seconds of (ingest, decode, reference) over ``rounds`` interleaved rounds.

    The three are measured one after the other in every round, so a busy machine slows
    them alike; the best of each is the least disturbed figure.
    """
    decoder = make_decoder(case.config)
    ingest = decode = reference = float("inf")
    for _ in range(rounds):
        reference = min(reference, timed(partial(read_reference, case.ndjson)))
        decode = min(decode, timed(partial(decoder.decode, case.body, 0)))
        ingest = min(ingest, await timed_ingest_once(session, url, case, decoder))
    return ingest, decode, reference


async def timed_operator(case: Case, polls: int) -> float | None:
    """Seconds per poll through the real operator, or None if it is not available."""
    try:
        from arroyo_lite.connectors.polling_http.operator import PollingHttpOperator
    except ImportError:
        return None
    operator = PollingHttpOperator(case.config, SourceContext())
    seen: list[float] = []
    done = asyncio.Event()

    def emit(batch: Any) -> None:
        assert batch.num_rows == case.rows
        seen.append(time.perf_counter())
        if len(seen) > polls:
            done.set()

    task = asyncio.create_task(operator.run(emit))
    try:
        await asyncio.wait_for(done.wait(), timeout=60)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    # Time between consecutive emits = one whole poll (request, read, decode, emit), since
    # polls never overlap and the interval (1 ms) is shorter than a poll. Best of them, like
    # the other figures; the first poll (connection set-up) is left out.
    return min(b - a for a, b in zip(seen, seen[1:], strict=False))


async def run(quick: bool, rounds: int | None = None) -> list[dict[str, Any]]:
    """Serve, decode and time every body; one dict of figures per body."""
    sizes = [("64KiB", 64 * 1024), ("256KiB", 256 * 1024)] if quick else [
        ("1MiB", MIB), ("4MiB", 4 * MIB)
    ]
    if rounds is None:
        rounds = 3 if quick else 15
    bodies: dict[str, bytes] = {}
    cases: list[Case] = []
    app = web.Application()

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=bodies[request.match_info["name"]],
                            content_type="application/json")

    app.router.add_get("/{name}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        for label, size in sizes:
            rows = make_rows(size)
            ndjson = b"\n".join(rows) + b"\n"
            for shape, body, newline in [
                ("array", b"[" + b",\n".join(rows) + b"]", False),
                ("ndjson", ndjson, True),
            ]:
                name = f"{shape}_{label}"
                bodies[name] = body
                url = f"http://127.0.0.1:{port}/{name}"
                cases.append(Case(name, body, ndjson, len(rows),
                                  table_config(name.lower(), url, newline)))
        results = []
        async with aiohttp.ClientSession() as session:
            for case in cases:
                url = f"http://127.0.0.1:{port}/{case.name}"
                decoder = make_decoder(case.config)
                decoder.decode(case.body, 0)  # which path does this body take?
                ingest, decode, reference = await measure(session, url, case, rounds)
                operator = await timed_operator(case, rounds)
                mb = len(case.body) / 1e6
                results.append({
                    "body": case.name,
                    "bytes": len(case.body),
                    "rows": case.rows,
                    "ingest_MBps": mb / ingest,
                    "ingest_rows_per_s": case.rows / ingest,
                    "operator_MBps": None if operator is None else mb / operator,
                    "decode_MBps": mb / decode,
                    "read_json_MBps": len(case.ndjson) / 1e6 / reference,
                    "ratio": (mb / ingest) / (len(case.ndjson) / 1e6 / reference),
                    "operator_ratio": None if operator is None
                    else (mb / operator) / (len(case.ndjson) / 1e6 / reference),
                    "fast_path": getattr(decoder, "fast_bodies", 0) > 0,
                })
    finally:
        await runner.cleanup()
    return results


def print_table(results: list[dict[str, Any]]) -> None:
    header = (
        f"{'body':<14}{'MB':>7}{'rows':>8}{'ingest MB/s':>13}{'rows/s':>11}"
        f"{'operator MB/s':>15}{'decode MB/s':>13}{'read_json MB/s':>16}{'ratio':>7}"
        f"{'op ratio':>9}  target"
    )
    print(header)
    print("-" * len(header))
    for r in results:
        operator = "n/a" if r["operator_MBps"] is None else f"{r['operator_MBps']:.1f}"
        op_ratio = "n/a" if r["operator_ratio"] is None else f"{r['operator_ratio']:.2f}"
        verdict = "ok" if r["ratio"] >= TARGET_RATIO else "MISSED"
        print(
            f"{r['body']:<14}{r['bytes'] / 1e6:>7.2f}{r['rows']:>8}{r['ingest_MBps']:>13.1f}"
            f"{r['ingest_rows_per_s']:>11.0f}{operator:>15}{r['decode_MBps']:>13.1f}"
            f"{r['read_json_MBps']:>16.1f}{r['ratio']:>7.2f}{op_ratio:>9}"
            f"  {verdict} (>= {TARGET_RATIO}x)"
        )
    print("ratio = ingest MB/s / read_json MB/s (pyarrow.json.read_json, default options, "
          "on the NDJSON form of the same rows); op ratio = the same through the operator;\n"
          "target applies to ratio; best of N rounds each.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="small bodies, few rounds")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = parser.parse_args(argv)
    results = asyncio.run(run(args.quick))
    print_table(results)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
