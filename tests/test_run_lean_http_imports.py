"""``run`` of a plain-HTTP ``polling_http`` table never imports aiohttp (behaviour, never time).

Its pages go through the lean HTTP/1.1 client (``connectors/polling_http/h1.py``), and the
shared session makes an aiohttp session (importing aiohttp, ~0.1 s: it builds two SSL
contexts) only for a request the lean client does not send. A POST with a body is such a
request: it still goes through aiohttp and gets its rows. Nor do a poll's array pages, read
together (``formats/json_pieces.py``), import ``pyarrow.compute`` before the first row (~40
ms: it wraps every kernel). The speed figure is ``benchmarks/paginated.py`` (its first-row
line).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli_probe import Probed, probe_cli
from tests.support.http_app import make_app
from tests.support.threaded_server import ThreadedServer, serve

WATCHED = ("aiohttp", "pyarrow.compute")


@pytest.fixture(scope="module")
def http_server() -> Iterator[ThreadedServer]:
    with serve(make_app()) as server:
        yield server


def run_table(tmp_path: Path, columns: dict[str, str], options: str, lines: int) -> Probed:
    """What ``run --format jsonl`` printed of the ``columns`` (name: type) of a table of
    ``options`` (stopped by SIGTERM after ``lines`` lines), and what it had imported."""
    sql = tmp_path / "t.sql"
    typed = ", ".join(f"{name} {kind}" for name, kind in columns.items())
    sql.write_text(
        f"CREATE TABLE t ({typed}) WITH (connector = 'polling_http', format = 'json', "
        f"{options});\nSELECT {', '.join(columns)} FROM t;\n"
    )
    return probe_cli(
        ["run", "--format", "jsonl", "--no-progress", str(sql)],
        watched=WATCHED,
        stop_after_lines=lines,
    )


def test_a_paginated_plain_http_run_prints_its_rows_without_aiohttp(tmp_path, http_server):
    done = run_table(
        tmp_path,
        {"id": "BIGINT"},
        f"endpoint = '{http_server.url('/pages/link?n=3&per=200')}', "
        "'pagination.type' = 'header_link'",
        600,
    )
    assert [json.loads(row)["id"] for row in done.rows[:600]] == list(range(600))
    # Not at the first row, nor later: the run never needed aiohttp.
    assert "aiohttp" not in done.at_end
    assert done.at_first_row is not None and "pyarrow.compute" not in done.at_first_row


def test_a_post_with_a_body_still_goes_through_aiohttp(tmp_path, http_server):
    done = run_table(
        tmp_path,
        {"method": "TEXT", "body": "TEXT"},
        f"endpoint = '{http_server.url('/echo')}', method = 'POST', body = '{{\"q\": 1}}', "
        "poll_interval_ms = 60000",
        1,
    )
    assert [json.loads(row) for row in done.rows[:1]] == [{"method": "POST", "body": '{"q": 1}'}]
    assert done.at_first_row is not None and "aiohttp" in done.at_first_row
