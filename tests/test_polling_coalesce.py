"""Small bodies of many polls decoded together (issue 16 item 1): formats/together.py and
connectors/polling_http/coalesce.py.

What batching must not change: each body's rows, their order and ``_timestamp``, its dropped
count and error lines, the failure of a table with bad data (that table alone). The unit tests
compare with each body decoded alone by its own decoder; the end-to-end test runs many real
tables against a real server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pyarrow as pa
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from arroyo_lite.connectors.polling_http.coalesce import coalescer, decode_soon
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.formats import make_decoder
from arroyo_lite.formats.result import DecodeResult
from arroyo_lite.formats.together import decode_together, together_key
from arroyo_lite.session import Session
from arroyo_lite.sql import compile_sql

pytestmark = pytest.mark.timeout(60)

BODIES = [
    b'{"id": 1, "name": "a"}',
    b'[{"id": 2, "name": "b"}, {"id": 3}, {"id": 4, "name": "d"}]',
    b"[]",
    b'{"id": 5, "name": "e"} {"id": 6, "name": "f"}',
    b'{"id": "seven"}',
    b"not json",
    b"",
    b'[{"id": 8, "name": "h"}, 9]',
    b'{"id": 10, "name": "j", "extra": true}',
]


def table(bad_data: str = "drop", name: str = "t", columns: str = "id BIGINT, name TEXT") -> Any:
    sql = (
        f"CREATE TABLE {name} ({columns}) WITH (connector = 'polling_http', "
        f"endpoint = 'http://127.0.0.1:1/', format = 'json', bad_data = '{bad_data}');"
    )
    [config] = compile_sql(sql, env={}).tables
    return config


def alone(config: Any, body: bytes, at: int) -> DecodeResult | BaseException:
    try:
        return make_decoder(config).decode(body, at)
    except Exception as e:
        return e


def same(got: DecodeResult | BaseException, want: DecodeResult | BaseException) -> None:
    if isinstance(want, BaseException):
        assert type(got) is type(want) and str(got) == str(want)
        return
    assert isinstance(got, DecodeResult)
    assert (got.rows, got.dropped, got.errors) == (want.rows, want.dropped, want.errors)
    if want.batch is None:
        assert got.batch is None
        return
    assert got.batch is not None
    assert got.batch.schema.equals(want.batch.schema, check_metadata=True)
    assert got.batch.to_pylist() == want.batch.to_pylist()


@pytest.mark.parametrize("bad_data", ["drop", "fail"])
def test_together_is_each_body_alone(bad_data: str) -> None:
    config = table(bad_data)
    stamps = [1_000_000_000 * (i + 1) for i in range(len(BODIES))]
    decoders = [make_decoder(config) for _ in BODIES]
    got = decode_together(decoders, BODIES, stamps)
    assert len(got) == len(BODIES)
    for body, stamp, result in zip(BODIES, stamps, got, strict=True):
        same(result, alone(config, body, stamp))


KINDS = "id BIGINT, name TEXT, score DOUBLE, ok BOOLEAN, small INT, at TIMESTAMP"
KIND_BODIES = [
    b'{"id": 1, "name": "plain", "score": 1.5, "ok": true, "small": 7, "at": 5}',
    b'{"id": 2, "name": "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80", "score": -0.25}',
    b'{"id": 3, "name": null, "ok": false, "small": -8}',
    b'[{"id": 4, "name": ""}, {"id": 5, "name": "\xc3\xa9"}, {"name": "no id"}]',
    b'{"id": 6, "name": "x", "score": 3, "at": "2026-12-02T10:00:00Z"}',
    b'{"id": 7, "name": "y", "small": 4294967296}',
]


@pytest.mark.parametrize("together", [1, 2, len(KIND_BODIES)])
def test_every_column_kind_is_each_body_alone(together: int) -> None:
    """Numbers, text (ASCII or not, empty, null), booleans, timestamps, missing columns and
    out-of-range values, in flushes of one body (the batch is that body's), two and all."""
    config = table(columns=KINDS)
    stamps = [1_000 * (i + 1) for i in range(len(KIND_BODIES))]
    for start in range(0, len(KIND_BODIES), together):
        bodies = KIND_BODIES[start : start + together]
        at = stamps[start : start + together]
        got = decode_together([make_decoder(config) for _ in bodies], bodies, at)
        assert len(got) == len(bodies)
        for body, stamp, result in zip(bodies, at, got, strict=True):
            same(result, alone(config, body, stamp))


def test_rows_of_the_common_bodies_share_one_batch() -> None:
    config = table()
    bodies = [b'{"id": %d, "name": "x"}' % i for i in range(50)]
    got = decode_together([make_decoder(config)] * 50, bodies, list(range(50)))
    batches = [r.batch for r in got if isinstance(r, DecodeResult) and r.batch is not None]
    assert [b.column("id").to_pylist() for b in batches] == [[i] for i in range(50)]
    # Zero-copy slices of one batch: every slice's id column shares one buffer.
    assert len({b.column("id").buffers()[1].address for b in batches}) == 1
    assert [b.column("id").offset for b in batches] == list(range(50))
    stamps = [b.column("_timestamp").cast(pa.int64()).to_pylist() for b in batches]
    assert stamps == [[i] for i in range(50)]


def test_only_plain_json_tables_take_part() -> None:
    assert together_key(make_decoder(table())) is not None
    assert together_key(make_decoder(table())) == together_key(make_decoder(table(name="u")))
    assert together_key(make_decoder(table())) != together_key(make_decoder(table("fail")))
    assert together_key(make_decoder(table(columns="id BIGINT"))) != together_key(
        make_decoder(table())
    )
    virtual = "id BIGINT, d BIGINT GENERATED ALWAYS AS (id * 2)"
    assert together_key(make_decoder(table(columns=virtual))) is None
    assert together_key(make_decoder(table(columns="id BIGINT, p JSON"))) is None


async def test_polls_of_one_loop_turn_share_one_decode() -> None:
    """Bodies that arrive in one turn of the loop are decoded by one call; a bad body fails
    only its own poll."""
    good, bad = table("fail"), table("fail", name="u")
    key = together_key(make_decoder(good))
    bodies = [b'{"id": 1, "name": "a"}', b'{"id": "x"}', b'{"id": 3, "name": "c"}']
    decoders = [make_decoder(good), make_decoder(bad), make_decoder(good)]
    before = (coalescer().flushes, coalescer().bodies)
    got = await asyncio.gather(
        *(decode_soon(key, d, b, 7) for d, b in zip(decoders, bodies, strict=True)),
        return_exceptions=True,
    )
    assert (coalescer().flushes, coalescer().bodies) == (before[0] + 1, before[1] + 3)
    assert isinstance(got[1], FatalSourceError)
    assert "JSON does not match schema" in str(got[1])
    rows = [r.batch.to_pylist() for r in got if isinstance(r, DecodeResult) and r.batch]
    assert rows == [
        [{"id": 1, "name": "a", "_timestamp": rows[0][0]["_timestamp"]}],
        [{"id": 3, "name": "c", "_timestamp": rows[1][0]["_timestamp"]}],
    ]


async def test_many_tables_keep_their_own_rows_in_order() -> None:
    """40 tables poll one real server at 20 ms; each table's rows are its own, in poll order,
    with statuses that count them."""
    hits: dict[str, int] = {}

    async def handler(request: web.Request) -> web.Response:
        i = request.match_info["i"]
        hits[i] = hits.get(i, 0) + 1
        return web.json_response({"id": int(i), "n": hits[i]})

    app = web.Application()
    app.router.add_get("/t/{i}", handler)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        sql = "\n".join(
            f"CREATE TABLE t{i} (id BIGINT, n BIGINT) WITH (connector = 'polling_http', "
            f"endpoint = 'http://127.0.0.1:{server.port}/t/{i}', poll_interval_ms = 20, "
            f"format = 'json');"
            for i in range(40)
        )
        loop = asyncio.get_running_loop()
        with Session() as session:
            await loop.run_in_executor(None, session.execute, sql)
            for _ in range(200):
                statuses = session.status()
                if all(s.rows >= 5 for s in statuses):
                    break
                await asyncio.sleep(0.05)
            seen: dict[str, int] = {}
            for i in range(40):
                result = await loop.run_in_executor(
                    None, session.query, f"SELECT id, n FROM t{i} ORDER BY _timestamp, n"
                )
                rows = result.to_pylist()
                assert len(rows) >= 5
                assert {r["id"] for r in rows} == {i}
                # In poll order: the server's count for this table only grows (a poll that
                # failed on a loaded machine would leave a gap, never a swap).
                ns = [r["n"] for r in rows]
                assert ns == sorted(set(ns))
                seen[f"t{i}"] = len(rows)
            for status in session.status():
                assert status.rows >= seen[status.table]
                assert status.polls >= status.rows
    finally:
        await server.close()


async def test_a_lone_poll_waits_for_no_window() -> None:
    """The first poll of a table (or any poll alone) is decoded in the very next turn of the
    loop: no timer holds it back (issue 16 item 5, time to first row)."""
    decoder = make_decoder(table())
    key = together_key(decoder)
    future = coalescer().add(key, decoder, b'{"id": 1, "name": "a"}', 5)
    await asyncio.sleep(0)  # one turn of the loop
    assert future.done()
    result = future.result()
    assert result.batch is not None and result.batch.column("id").to_pylist() == [1]
