"""Push sources notice a server that is up but has gone silent, and reconnect.

Real aiohttp servers on 127.0.0.1 that send one message per connection and then nothing,
holding the connection open: the sse source gives up on the stream after
``read_timeout_ms`` without a byte (and resumes with ``Last-Event-ID``); the websocket
source pings every ``heartbeat_interval_ms`` and drops a connection whose server no longer
answers pings (the server here does not answer them: ``autoping=False``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from tests.support.http_app import url, wait_until
from tests.support.stream_source import RunningStream, source_table

CONNECTIONS: web.AppKey[list[dict[str, str]]] = web.AppKey("connections", list)


async def silent_sse(request: web.Request) -> web.StreamResponse:
    seen = request.app[CONNECTIONS]
    seen.append(dict(request.headers))
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    n = len(seen) - 1
    await response.write(f"id: {n}\ndata: {json.dumps({'n': n})}\n\n".encode())
    await asyncio.Event().wait()  # up, but never another byte (cancelled on disconnect)
    return response


async def deaf_ws(request: web.Request) -> web.WebSocketResponse:
    request.app[CONNECTIONS].append(dict(request.headers))
    ws = web.WebSocketResponse(autoping=False)  # pings go unanswered
    await ws.prepare(request)
    await ws.send_str(json.dumps({"n": len(request.app[CONNECTIONS]) - 1}))
    async for message in ws:
        if message.type is WSMsgType.CLOSE:
            break
    return ws


@pytest.fixture
async def server(aiohttp_server: Any) -> Any:
    app = web.Application()
    app[CONNECTIONS] = []
    app.router.add_get("/sse", silent_sse)
    app.router.add_get("/ws", deaf_ws)
    return await aiohttp_server(app)


async def test_a_silent_sse_stream_is_reconnected_with_its_last_event_id(
    server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="arroyo_lite.sse")
    config = source_table(
        f"CREATE TABLE t (n BIGINT) WITH (connector = 'sse', format = 'json', "
        f"endpoint = '{url(server, '/sse')}', read_timeout_ms = '300', "
        "reconnect_delay_ms = '50');"
    )
    async with RunningStream(config) as src:
        await wait_until(lambda: len(src.rows()) >= 3, what="rows from 3 connections")
        assert src.column("n")[:3] == [0, 1, 2]
        assert src.status.extra["reconnects"] >= 2
    assert "sent nothing for 300 ms (read_timeout_ms); reconnecting" in caplog.text
    connections = server.app[CONNECTIONS]
    assert "Last-Event-ID" not in connections[0]
    assert [c["Last-Event-ID"] for c in connections[1:3]] == ["0", "1"]


async def test_a_websocket_server_that_stops_answering_pings_is_reconnected(server: Any) -> None:
    config = source_table(
        f"CREATE TABLE t (n BIGINT) WITH (connector = 'websocket', format = 'json', "
        f"endpoint = '{url(server, '/ws').replace('http://', 'ws://')}', "
        "heartbeat_interval_ms = '300', reconnect_delay_ms = '50');"
    )
    async with RunningStream(config) as src:
        await wait_until(lambda: len(src.rows()) >= 3, what="rows from 3 connections")
        assert src.column("n")[:3] == [0, 1, 2]
        assert src.status.extra["reconnects"] >= 2
    assert len(server.app[CONNECTIONS]) >= 3
