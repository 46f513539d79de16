"""``arroyo-lite demo`` end to end, in a subprocess (its demo API runs inside it)."""

from __future__ import annotations

import socket

import orjson

from arroyo_lite.demo.api import SYMBOLS
from tests.support import cli


async def test_demo_for_3_seconds_prints_live_rows_as_jsonl():
    done = await cli.run("demo", "--for", "3", "--port", "0", "--format", "jsonl")
    assert done.code == 0, done.stderr
    assert "demo API on http://127.0.0.1:" in done.stderr
    rows = [orjson.loads(line) for line in done.stdout.splitlines()]
    by_query: dict[int, list[dict[str, object]]] = {}
    for row in rows:
        by_query.setdefault(int(row["_query"]), []).append(row)
    # 1: the per-symbol aggregate; 2: headlines, each once.
    assert {r["symbol"] for r in by_query[1]} == set(SYMBOLS)
    assert all(int(r["ticks"]) >= 1 for r in by_query[1])
    headlines = by_query[2]
    assert headlines and len({r["id"] for r in headlines}) == len(headlines)
    assert "Traceback" not in done.stderr


async def test_demo_table_output_and_a_taken_port():
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        done = await cli.run("demo", "--for", "3", "--port", str(taken), "--no-progress")
    assert done.code == 0, done.stderr
    assert f"port {taken} is taken" in done.stderr
    assert "ACME" in done.stdout and "avg_price" in done.stdout
    assert "[2] SELECT id, headline" in done.stdout
