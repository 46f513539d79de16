"""Plain polls made by event-loop callbacks (issue 16 item 1): callback_polls.CallbackPolls,
h1.Pool.begin, and the hand-over of what they do not take to the table's task.

What must not change: each poll's rows and status; a failed answer, a timeout, a closed
connection counted and backed off exactly as the task's own polls are (the outcome of a
request sent by a callback is taken as that request's, never sent again); a run stopped
while a callback poll is in flight counts no poll for it. Real operators against a real
aiohttp server on 127.0.0.1, no timing assertions.
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
from arroyo_lite.connectors.polling_http.operator import PollingHttpOperator
from arroyo_lite.sql import compile_sql

pytestmark = pytest.mark.timeout(60)


def operator(url: str, *, interval_ms: int = 20, extra: str = "") -> PollingHttpOperator:
    sql = (
        f"CREATE TABLE t (id BIGINT, n BIGINT) WITH (connector = 'polling_http', "
        f"endpoint = '{url}', poll_interval_ms = {interval_ms}, format = 'json'{extra});"
    )
    [table] = compile_sql(sql, env={}).tables
    return PollingHttpOperator(table, SourceContext(clock=SystemClock()))


class Api:
    """``/n`` answers ``{"id": 1, "n": hit}``, except the hits listed in ``script``:
    ``500`` (a server error), ``"slow"`` (an answer after 2 s), ``"close"`` (the connection
    closed without an answer), ``"hang"`` (never answered until the server stops)."""

    def __init__(self, script: dict[int, Any] | None = None) -> None:
        self.hits = 0
        self.script = script or {}
        self.hanging = asyncio.Event()
        app = web.Application()
        app.router.add_get("/n", self.counting)
        self.server = TestServer(app, host="127.0.0.1")

    async def counting(self, request: web.Request) -> web.StreamResponse:
        self.hits += 1
        what = self.script.get(self.hits)
        if what == 500:
            return web.Response(status=500, text="boom")
        if what == "slow":
            await asyncio.sleep(2)
        if what == "close":
            assert request.transport is not None
            request.transport.close()
            return web.Response()
        if what == "hang":
            self.hanging.set()
            await asyncio.Event().wait()
        return web.json_response({"id": 1, "n": self.hits})

    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/n"


async def run_until(op: PollingHttpOperator, rows: list[pa.RecordBatch], polls: int) -> None:
    """Run ``op`` until it has made ``polls`` polls and emitted rows for every successful
    one (or 30 s), then stop it."""
    task = asyncio.create_task(op.run(rows.append))
    for _ in range(3000):
        await asyncio.sleep(0.01)
        status = op.status
        if status.polls >= polls and len(rows) >= status.polls - status.failures:
            break
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_plain_polls_are_made_by_callbacks() -> None:
    api = Api()
    await api.server.start_server()
    try:
        op = operator(api.url())
        rows: list[pa.RecordBatch] = []
        await run_until(op, rows, 12)
    finally:
        await api.server.close()
    assert op.callbacks is not None
    # The first poll is the task's (it connects); the rest ride the kept connection.
    assert op.callbacks.made >= 10
    status = op.status
    assert status.failures == 0
    ns = [n for batch in rows for n in batch.column("n").to_pylist()]
    assert ns == list(range(1, len(ns) + 1))  # every answer once, in order
    assert status.rows == len(ns) and status.polls >= len(ns)
    assert status.last_status_code == 200 and status.extra["pages"] == 1


async def test_a_failed_answer_is_the_tasks_and_is_not_sent_again() -> None:
    api = Api({5: 500, 9: "close"})
    await api.server.start_server()
    try:
        op = operator(api.url(), extra=", max_backoff_ms = 50")
        rows: list[pa.RecordBatch] = []
        await run_until(op, rows, 14)
    finally:
        await api.server.close()
    status = op.status
    assert op.callbacks is not None and op.callbacks.made >= 8
    # The 500 failed its poll once: the answer a callback poll got was the poll's (the
    # request was not sent again). The kept connection closed without an answer is the
    # lean client's "stale" case: that request is sent once more on a new connection
    # (hit 10 answers that poll), as the task's own polls do.
    assert status.failures == 1
    assert status.last_error is not None and "responded with 500" in status.last_error
    ns = [n for batch in rows for n in batch.column("n").to_pylist()]
    assert 5 not in ns and 9 not in ns and 10 in ns
    assert ns == [n for n in range(1, api.hits + 1) if n not in (5, 9)][: len(ns)]
    assert status.consecutive_failures == 0


async def test_a_timeout_in_a_callback_poll_is_a_transient_failure() -> None:
    api = Api({4: "slow"})
    await api.server.start_server()
    try:
        op = operator(api.url(), extra=", timeout_ms = 300, max_backoff_ms = 50")
        rows: list[pa.RecordBatch] = []
        await run_until(op, rows, 8)
    finally:
        await api.server.close()
    status = op.status
    assert status.failures == 1
    assert status.last_error is not None and "timed out after 300 ms" in status.last_error
    ns = [n for batch in rows for n in batch.column("n").to_pylist()]
    assert 4 not in ns and ns[:3] == [1, 2, 3]


async def test_a_run_stopped_mid_callback_poll_counts_no_poll_for_it() -> None:
    api = Api({6: "hang"})
    await api.server.start_server()
    try:
        op = operator(api.url())
        rows: list[pa.RecordBatch] = []
        task = asyncio.create_task(op.run(rows.append))
        await asyncio.wait_for(api.hanging.wait(), 30)
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        await api.server.close()
    assert op.callbacks is not None and op.callbacks.made >= 3
    ns = [n for batch in rows for n in batch.column("n").to_pylist()]
    assert ns == [1, 2, 3, 4, 5]
    assert op.status.polls == 5 and op.status.failures == 0
