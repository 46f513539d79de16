"""One-page polls emitted from the decode's flush (issue 16 item 1): operator._deferred,
coalesce.Coalescer.then, and together's plain-row shortcut.

What must not change: each poll's rows and status, the validators of a conditional request
(moved only once the poll's rows are emitted), a body failing under ``bad_data = 'fail'``
(the run raises it at once, not a sleep later), a stopped run (no rows after it, no poll
counted that emitted nothing). Real operators against a real aiohttp server on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pyarrow as pa
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from arroyo_lite.clock import SystemClock
from arroyo_lite.connectors.base import SourceContext
from arroyo_lite.connectors.polling_http.coalesce import coalescer
from arroyo_lite.connectors.polling_http.operator import PollingHttpOperator
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.formats import make_decoder
from arroyo_lite.formats.result import DecodeResult
from arroyo_lite.formats.together import decode_together, together_key
from arroyo_lite.sql import compile_sql

pytestmark = pytest.mark.timeout(60)


def config(url: str, *, interval_ms: int = 20, extra: str = "", columns: str = "") -> Any:
    columns = columns or "id BIGINT, n BIGINT"
    sql = (
        f"CREATE TABLE t ({columns}) WITH (connector = 'polling_http', endpoint = '{url}', "
        f"poll_interval_ms = {interval_ms}, format = 'json'{extra});"
    )
    [table] = compile_sql(sql, env={}).tables
    return table


class Api:
    """A JSON API on 127.0.0.1: ``/n`` counts (with an ETag that changes every second
    answer), ``/bad`` answers a record that does not match the schema."""

    def __init__(self) -> None:
        self.hits = 0
        self.conditional: list[str | None] = []
        app = web.Application()
        app.router.add_get("/n", self.counting)
        app.router.add_get("/bad", self.bad)
        self.server = TestServer(app, host="127.0.0.1")

    async def counting(self, request: web.Request) -> web.Response:
        self.hits += 1
        etag = f'"v{(self.hits + 1) // 2}"'
        sent = request.headers.get("If-None-Match")
        self.conditional.append(sent)
        if sent == etag:
            return web.Response(status=304, headers={"ETag": etag})
        return web.json_response({"id": 1, "n": self.hits}, headers={"ETag": etag})

    async def bad(self, request: web.Request) -> web.Response:
        return web.json_response({"id": "one", "n": 1})

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.port}{path}"


@pytest.fixture
async def api() -> Any:
    api = Api()
    await api.server.start_server()
    yield api
    await api.server.close()


async def test_rows_status_and_validators_from_the_flush(api: Api) -> None:
    operator = PollingHttpOperator(config(api.url("/n")), SourceContext(clock=SystemClock()))
    batches: list[pa.RecordBatch] = []
    enough = asyncio.Event()

    def emit(batch: pa.RecordBatch) -> None:
        batches.append(batch)
        if len(batches) == 3:
            enough.set()

    flushed = coalescer().flushes
    task = asyncio.create_task(operator.run(emit))
    await enough.wait()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert operator._defer  # the path under test was taken
    assert coalescer().flushes > flushed
    ns = [n for b in batches for n in b.column("n").to_pylist()]
    # Every second answer repeats the ETag the poll before it got: a 304, no rows.
    assert ns == [n for n in range(1, api.hits + 1) if n % 2 == 1][: len(ns)]
    assert operator.status.rows == len(ns)
    assert operator.status.unchanged_polls >= 2
    # The validator of a poll was remembered for the next one (moved by the flush).
    assert api.conditional[0] is None
    assert api.conditional[1] == '"v1"'
    assert operator.status.polls == len(api.conditional)
    assert operator.status.polls == len(ns) + operator.status.unchanged_polls


async def test_a_failing_body_fails_the_run_at_once(api: Api) -> None:
    """bad_data = 'fail': the flush's failure reaches the task sleeping for an hour."""
    table = config(api.url("/bad"), interval_ms=3_600_000, extra=", bad_data = 'fail'")
    operator = PollingHttpOperator(table, SourceContext(clock=SystemClock()))
    batches: list[pa.RecordBatch] = []
    with pytest.raises(FatalSourceError, match="JSON does not match schema"):
        await asyncio.wait_for(operator.run(batches.append), timeout=30)
    assert batches == []
    assert operator.status.rows == 0


async def test_a_stopped_run_emits_nothing_after_it(api: Api) -> None:
    """Stopped in the turn its first answer came in: the poll's rows are emitted (by the
    flush already queued) and counted, or neither; nothing comes after the run ended."""
    operator = PollingHttpOperator(config(api.url("/n")), SourceContext(clock=SystemClock()))
    batches: list[pa.RecordBatch] = []
    task = asyncio.create_task(operator.run(batches.append))
    for _ in range(100_000):  # loop turns until the first answer is in
        if operator._pending is not None:
            break
        await asyncio.sleep(0)
    assert operator._pending is not None
    assert not operator._pending.done()  # the flush has not run yet
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    ended = len(batches)
    await asyncio.sleep(0.05)
    assert len(batches) == ended <= 1
    assert operator.status.polls == operator.status.rows == ended


PLAIN = "i BIGINT, s INT, d DOUBLE, t TEXT, b BOOLEAN, at TIMESTAMP"
BODIES = [
    b'{"i": 1, "s": 2, "d": 1.5, "t": "x", "b": true, "at": 5}',
    b'{"i": 1, "s": 2, "d": 3, "t": "x", "b": false, "at": "2026-12-02T05:00:00Z"}',
    b'{"i": true, "s": 2, "d": 1.0, "t": "x", "b": true, "at": 5}',
    b'{"i": 1, "s": 3000000000, "d": 1.0, "t": "x", "b": true, "at": 5}',
    b'{"i": "7", "s": null, "d": 1.0, "t": "x", "b": true}',
    b'{"i": 1, "s": 2, "d": 1.0, "t": 5, "b": 1, "at": 5}',
    b'{"i": 1, "s": 2, "d": 1.0, "t": "x", "b": true, "at": 5, "extra": [1]}',
    b'[{"i": 9, "s": 2, "d": 1.0, "t": "y", "b": true, "at": 5}]',
    b'{"i": 1}{"i": 2}',
]


@pytest.mark.parametrize("bad_data", ["drop", "fail"])
def test_plain_rows_are_the_exact_paths(bad_data: str) -> None:
    """Values of every plain type, and the ones the shortcut leaves to the converters
    (a bool for an integer, out of range, a string number, null, missing, another type)."""
    table = config("http://127.0.0.1:1/", columns=PLAIN, extra=f", bad_data = '{bad_data}'")
    decoder = make_decoder(table)
    assert together_key(decoder) is not None
    stamps = [10 * (i + 1) for i in range(len(BODIES))]
    got = decode_together([make_decoder(table) for _ in BODIES], BODIES, stamps)
    for body, stamp, result in zip(BODIES, stamps, got, strict=True):
        try:
            want: DecodeResult | BaseException = make_decoder(table).decode(body, stamp)
        except Exception as e:
            want = e
        if isinstance(want, BaseException):
            assert type(result) is type(want) and str(result) == str(want)
            continue
        assert isinstance(result, DecodeResult)
        assert (result.rows, result.dropped, result.errors) == (
            want.rows,
            want.dropped,
            want.errors,
        )
        if want.batch is None:
            assert result.batch is None
        else:
            assert result.batch is not None
            assert result.batch.to_pylist() == want.batch.to_pylist()
