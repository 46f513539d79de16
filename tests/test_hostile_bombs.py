"""Record bombs (issue 8, item 7): the work one body can cause is bounded.

A body may decode to at most ``max_records_per_body`` records (default 1,000,000; an
arroyo-lite option): a body with more is bad data, refused as soon as the count is known
(before any per-record work), dropped whole under ``bad_data = 'drop'``, a clear error under
``'fail'``. Bytes are bounded by polling_http's ``max_body_bytes``. Real decoders, real SQL,
and a real server on 127.0.0.1 beside a control table.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pyarrow as pa
import pytest
from aiohttp import web

from arroyo_lite import Session
from arroyo_lite.clock import ManualClock
from arroyo_lite.config import DEFAULT_MAX_RECORDS_PER_BODY, BadData, TableConfig
from arroyo_lite.connectors.base import SourceState
from arroyo_lite.errors import FatalSourceError, ValidationErrors
from arroyo_lite.formats import make_decoder
from arroyo_lite.formats.result import TOO_MANY_SUMMARY
from arroyo_lite.sql import compile_sql
from tests.support.format_tables import col, raw_string, table
from tests.support.threaded_server import serve, wait_for

pytestmark = pytest.mark.timeout(120)

#: The issue's bomb: 15 MB, five million empty objects, one per line.
NDJSON_BOMB = b"\n".join([b"{}"] * 5_000_000)


def columns() -> tuple[Any, ...]:
    return (col("id", pa.int64()), col("name", pa.string()))


def limited(config: TableConfig, limit: int) -> TableConfig:
    return dataclasses.replace(config, max_records_per_body=limit)


def test_the_15_mb_bomb_is_refused_before_decoding_under_drop() -> None:
    decoder = make_decoder(table(*columns(), newline=True, bad_data=BadData.DROP))
    result = decoder.decode(NDJSON_BOMB, 1)
    assert (result.batch, result.rows) == (None, 0)
    assert result.dropped == 5_000_000
    assert result.errors == (
        TOO_MANY_SUMMARY,
        f"the body has more than {DEFAULT_MAX_RECORDS_PER_BODY} records (max_records_per_body)",
    )


def test_the_15_mb_bomb_is_a_clear_error_under_fail() -> None:
    with pytest.raises(FatalSourceError) as info:
        make_decoder(table(*columns(), newline=True)).decode(NDJSON_BOMB, 1)
    assert info.value.message == (
        f"bad data: the body has more than {DEFAULT_MAX_RECORDS_PER_BODY} records "
        "(max_records_per_body)"
    )
    assert info.value.hint is not None and "raise max_records_per_body" in info.value.hint


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"[" + b",".join([b"{}"] * 2000) + b"]", id="array, native path"),
        pytest.param(b"[" + b",".join([b'{"id":"x"}'] * 2000) + b"]", id="array, exact path"),
        pytest.param(b" ".join([b"{}"] * 2000), id="concatenated"),
        pytest.param(b"\n".join([b'{"id":1}'] * 2000), id="ndjson"),
        pytest.param(b"\n".join([b"nope"] * 2000), id="ndjson, all invalid"),
    ],
)
@pytest.mark.parametrize("newline", [False, True])
def test_every_json_path_counts_records(body: bytes, newline: bool) -> None:
    config = limited(table(*columns(), newline=newline, bad_data=BadData.DROP), 1000)
    result = make_decoder(config).decode(body, 1)
    if body.startswith(b"nope") and not newline:
        assert result.dropped == 1  # one message that is not JSON: one bad record
        return
    assert result.rows == 0 and result.dropped > 1000, result.errors
    assert result.errors[0] == TOO_MANY_SUMMARY
    # The same body is fine with room for it.
    roomy = make_decoder(limited(config, 10_000)).decode(body, 1)
    assert TOO_MANY_SUMMARY not in roomy.errors


def test_raw_formats_count_messages() -> None:
    config = limited(raw_string(newline=True, bad_data=BadData.DROP), 10)
    result = make_decoder(config).decode(b"a\n" * 11, 1)
    assert (result.rows, result.dropped) == (0, 11)
    assert make_decoder(config).decode(b"a\n" * 10, 1).rows == 10


def test_many_empty_objects_decode_natively_when_allowed() -> None:
    # 5,000 {} are 5,000 rows of NULLs; they used to fall to the per-record path.
    body = b"\n".join([b"{}"] * 5000)
    decoder = make_decoder(table(*columns(), newline=True))
    result = decoder.decode(body, 1)
    assert result.rows == 5000 and result.batch is not None
    assert result.batch.column("id").null_count == 5000
    assert getattr(decoder, "fast_bodies", None) == 1


def test_the_option_in_sql() -> None:
    base = "CREATE TABLE t (id BIGINT) WITH (connector = 'polling_http', " \
        "endpoint = 'http://127.0.0.1:9/', format = 'json'"  # fmt: skip
    [config] = compile_sql(base + ", max_records_per_body = '10');", env={}).tables
    assert config.max_records_per_body == 10
    [default] = compile_sql(base + ");", env={}).tables
    assert default.max_records_per_body == DEFAULT_MAX_RECORDS_PER_BODY
    with pytest.raises(ValidationErrors) as info:
        compile_sql(base + ", max_records_per_body = 0);", env={})
    [error] = info.value.errors
    assert error.message == "invalid value for 'max_records_per_body': 0 (expected at least 1)"
    assert error.position is not None and error.position.col == len(base) + 26


def test_a_bomb_from_a_server_is_dropped_and_the_control_table_keeps_receiving() -> None:
    bomb = b"[" + b",".join([b"{}"] * 1_500_000) + b"]"  # 4.5 MB, within max_body_bytes
    app = web.Application()

    async def serve_bomb(request: web.Request) -> web.Response:
        return web.Response(body=bomb, content_type="application/json")

    async def good(request: web.Request) -> web.Response:
        return web.Response(body=b'{"id": 1}', content_type="application/json")

    app.router.add_get("/bomb", serve_bomb)
    app.router.add_get("/good", good)
    clock = ManualClock()
    with serve(app) as server, Session(clock=clock, env={}) as session:
        session.execute(
            "CREATE TABLE b (id BIGINT, name TEXT) WITH (connector = 'polling_http', "
            f"endpoint = '{server.url('/bomb')}', format = 'json', bad_data = 'drop');\n"
            "CREATE TABLE control (id BIGINT) WITH (connector = 'polling_http', "
            f"endpoint = '{server.url('/good')}', format = 'json');"
        )
        statuses = wait_for(
            lambda: (s := {x.table: x for x in session.status()})["b"].polls >= 1
            and s["b"].dropped_rows
            and s["control"].rows >= 1
            and s
        )
        assert statuses["b"].state is SourceState.RUNNING
        assert statuses["b"].dropped_rows == 1_500_000
        assert "max_records_per_body" in (statuses["b"].last_error or "")
        assert session.query("SELECT count(*) FROM b").column(0)[0].as_py() == 0
        assert session.query("SELECT count(*) FROM control").column(0)[0].as_py() >= 1
