"""``arroyo-lite demo`` end to end, in a subprocess (its demo API runs inside it)."""

from __future__ import annotations

import socket

import orjson

from arroyo_lite.demo.api import SYMBOLS
from tests.support import cli


def by_query(out: str) -> dict[int, list[dict[str, object]]]:
    """The complete jsonl lines printed so far, by ``_query``."""
    rows: dict[int, list[dict[str, object]]] = {}
    for line in out.splitlines(keepends=True):
        if line.endswith("\n"):
            row = orjson.loads(line)
            rows.setdefault(int(row["_query"]), []).append(row)
    return rows


def every_symbol_and_a_headline(out: str) -> bool:
    rows = by_query(out)
    symbols = {r.get("symbol") for r in rows.get(1, [])}
    return symbols >= set(SYMBOLS) and bool(rows.get(2))


async def test_demo_prints_live_rows_as_jsonl():
    done = await cli.run_until(
        "demo", "--port", "0", "--format", "jsonl", until=every_symbol_and_a_headline
    )
    assert done.code == 0, done.stderr
    assert "demo API on http://127.0.0.1:" in done.stderr
    rows = by_query(done.stdout)
    # 1: the per-symbol aggregate; 2: headlines, each once.
    assert {r["symbol"] for r in rows[1]} == set(SYMBOLS)
    assert all(int(r["ticks"]) >= 1 for r in rows[1])
    headlines = rows[2]
    assert headlines and len({r["id"] for r in headlines}) == len(headlines)
    assert "Traceback" not in done.stderr


async def test_demo_table_output_and_a_taken_port():
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        done = await cli.run_until(
            "demo",
            "--port",
            str(taken),
            "--no-progress",
            until=lambda out: "avg_price" in out and "[2] SELECT id, headline" in out,
        )
    assert done.code == 0, done.stderr
    assert f"port {taken} is taken" in done.stderr
    assert "ACME" in done.stdout and "avg_price" in done.stdout
    assert "[2] SELECT id, headline" in done.stdout
