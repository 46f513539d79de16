"""``run`` of a plain-HTTP ``polling_http`` table never imports aiohttp (behaviour, never time).

Its pages go through the lean HTTP/1.1 client (``connectors/polling_http/h1.py``), and the
shared session makes an aiohttp session (importing aiohttp, ~0.1 s: it builds two SSL
contexts) only for a request the lean client does not send. A POST with a body is such a
request: it still goes through aiohttp and gets its rows. The speed figure is
``benchmarks/paginated.py`` (its first-row line).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli_probe import probe_cli
from tests.support.http_app import make_app
from tests.support.threaded_server import ThreadedServer, serve

WATCHED = ("aiohttp",)


@pytest.fixture(scope="module")
def http_server() -> Iterator[ThreadedServer]:
    with serve(make_app()) as server:
        yield server


def run_table(
    tmp_path: Path, columns: dict[str, str], options: str, lines: int
) -> tuple[list[str], set[str]]:
    """The first ``lines`` rows ``run --format jsonl`` prints of the ``columns`` (name: type)
    of a table of ``options``, and the watched modules imported by the end of the run
    (stopped by SIGTERM after those lines)."""
    sql = tmp_path / "t.sql"
    typed = ", ".join(f"{name} {kind}" for name, kind in columns.items())
    sql.write_text(
        f"CREATE TABLE t ({typed}) WITH (connector = 'polling_http', format = 'json', "
        f"{options});\nSELECT {', '.join(columns)} FROM t;\n"
    )
    done = probe_cli(
        ["run", "--format", "jsonl", "--no-progress", str(sql)],
        watched=WATCHED,
        stop_after_lines=lines,
    )
    return done.rows[:lines], done.at_end


def test_a_paginated_plain_http_run_prints_its_rows_without_aiohttp(tmp_path, http_server):
    rows, loaded = run_table(
        tmp_path,
        {"id": "BIGINT"},
        f"endpoint = '{http_server.url('/pages/link?n=3&per=4')}', "
        "'pagination.type' = 'header_link'",
        12,
    )
    assert [json.loads(row)["id"] for row in rows] == list(range(12))
    # Not at the first row, nor later: the run never needed aiohttp.
    assert "aiohttp" not in loaded


def test_a_post_with_a_body_still_goes_through_aiohttp(tmp_path, http_server):
    rows, loaded = run_table(
        tmp_path,
        {"method": "TEXT", "body": "TEXT"},
        f"endpoint = '{http_server.url('/echo')}', method = 'POST', body = '{{\"q\": 1}}', "
        "poll_interval_ms = 60000",
        1,
    )
    assert [json.loads(row) for row in rows] == [{"method": "POST", "body": '{"q": 1}'}]
    assert "aiohttp" in loaded
