"""The websocket source against a real aiohttp WebSocket server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from arroyo_lite.clock import ManualClock
from arroyo_lite.connectors.streaming.batcher import MAX_BYTES
from arroyo_lite.errors import FatalSourceError
from tests.support.http_app import url, wait_until
from tests.support.stream_app import STREAM_STATE, make_stream_app
from tests.support.stream_source import RunningStream, SlowConsumer, source_table


@pytest.fixture
async def stream_server(aiohttp_server: Any) -> Any:
    return await aiohttp_server(make_stream_app())


def ws_url(server: Any, path: str) -> str:
    return url(server, path).replace("http://", "ws://", 1)


def ws_sql(endpoint: str, *, columns: str = "n BIGINT", fmt: str = "json", extra: str = "") -> str:
    return (
        f"CREATE TABLE t ({columns}) WITH (connector = 'websocket', format = '{fmt}', "
        f"endpoint = '{endpoint}'{extra});"
    )


@pytest.mark.parametrize("binary", [False, True])
async def test_text_and_binary_messages(stream_server: Any, binary: bool) -> None:
    path = "/ws?n=5" + ("&binary=1" if binary else "")
    config = source_table(ws_sql(ws_url(stream_server, path)))
    async with RunningStream(config) as src:
        await wait_until(lambda: len(src.rows()) == 5, what="5 rows")
        assert src.column("n") == [0, 1, 2, 3, 4]
        assert src.status.extra["messages"] == 5
        assert src.status.last_status_code == 101


async def test_raw_bytes_keeps_binary_frames(stream_server: Any) -> None:
    config = source_table(
        ws_sql(ws_url(stream_server, "/ws?n=2&binary=1"), columns="value BYTEA", fmt="raw_bytes")
    )
    async with RunningStream(config) as src:
        await wait_until(lambda: len(src.rows()) == 2, what="2 rows")
        assert src.column("value") == [b'{"n": 0}', b'{"n": 1}']


async def test_subscription_messages_are_sent_in_order_and_again_after_reconnect(
    stream_server: Any,
) -> None:
    config = source_table(
        ws_sql(
            ws_url(stream_server, "/ws/subscribe"),
            columns="sub TEXT",
            extra=", 'subscription_messages.0' = 'first', 'subscription_messages.1' = 'second'",
        )
    )
    state = stream_server.app[STREAM_STATE]
    async with RunningStream(config) as src:
        await wait_until(lambda: len(src.rows()) == 2, what="2 echoes")
        assert src.column("sub") == ["first", "second"]
    assert state.ws_received == [["first", "second"]]
    # The deprecated single message works too, and a reconnect subscribes again.
    state.ws_received.clear()
    config = source_table(
        ws_sql(
            ws_url(stream_server, "/ws/one"),
            extra=', subscription_message = \'{"type": "subscribe"}\', reconnect_delay_ms = 1',
        )
    )
    async with RunningStream(config) as src:
        await wait_until(lambda: len(src.rows()) >= 3, what="3 connections")
        assert src.column("n")[:3] == [0, 1, 2]
        assert src.status.extra["reconnects"] >= 2
        assert src.status.failures == 0


async def test_server_closing_after_each_message_reconnects(stream_server: Any) -> None:
    config = source_table(
        ws_sql(ws_url(stream_server, "/ws/one"), extra=", reconnect_delay_ms = 1")
    )
    async with RunningStream(config) as src:
        await wait_until(lambda: len(src.rows()) >= 5, what="5 rows")
        assert src.column("n")[:5] == [0, 1, 2, 3, 4]


async def test_ping_is_answered_with_pong(stream_server: Any) -> None:
    config = source_table(ws_sql(ws_url(stream_server, "/ws?n=1&ping=1")))
    async with RunningStream(config) as src:
        await wait_until(lambda: stream_server.app[STREAM_STATE].pongs == 1, what="a pong")
        await wait_until(lambda: len(src.rows()) == 1, what="1 row")


async def test_bad_message_follows_bad_data(stream_server: Any) -> None:
    config = source_table(ws_sql(ws_url(stream_server, "/ws/bad"), extra=", bad_data = 'drop'"))
    async with RunningStream(config) as src:
        await wait_until(lambda: len(src.rows()) == 2, what="2 good rows")
        assert src.column("n") == [0, 2]
        assert src.status.dropped_rows == 1
        assert "could not be deserialized" in src.status.last_error
    config = source_table(ws_sql(ws_url(stream_server, "/ws/bad")))
    async with RunningStream(config) as src:
        error = await asyncio.wait_for(src.task, 20)
        assert isinstance(error, FatalSourceError) and "invalid JSON" in error.message


async def test_refused_handshake_backs_off(stream_server: Any) -> None:
    clock = ManualClock()
    config = source_table(ws_sql(ws_url(stream_server, "/ws/status/403")))
    async with RunningStream(config, clock=clock) as src:
        assert await src.backoff_delays(3) == [1.0, 2.0, 4.0]
        assert "failed to connect to websocket" in src.status.last_error
        assert "403" in src.status.last_error
        assert src.status.last_status_code == 403


async def test_dropped_server_reconnects(aiohttp_server: Any) -> None:
    app = make_stream_app()
    server = await aiohttp_server(app)
    config = source_table(
        ws_sql(ws_url(server, "/ws?n=2"), extra=", reconnect_delay_ms = 1, max_backoff_ms = 50")
    )
    async with RunningStream(config) as src:
        await wait_until(lambda: len(src.rows()) == 2, what="2 rows")
        port = server.port
        await server.close()  # every connection drops
        await wait_until(lambda: src.status.failures >= 1, what="a failed reconnect")
        server = await aiohttp_server(make_stream_app(), port=port)
        await wait_until(lambda: len(src.rows()) == 4, what="2 more rows after the restart")
        assert src.status.extra["connected"] is True


async def test_headers_are_sent_with_the_handshake(stream_server: Any) -> None:
    config = source_table(
        ws_sql(ws_url(stream_server, "/ws?n=1"), extra=", headers = 'X-Key: {{ KEY }}'"),
        env={"KEY": "abc"},
    )
    async with RunningStream(config, env={"KEY": "abc"}) as src:
        await wait_until(lambda: len(src.rows()) == 1, what="1 row")
    assert stream_server.app[STREAM_STATE].requests[0][1]["X-Key"] == "abc"


async def test_slow_consumer_is_backpressured_with_bounded_memory(stream_server: Any) -> None:
    """The server can only get as far ahead as the socket buffers and aiohttp's bounded
    queue allow; every message arrives, in order."""
    messages = 40_000  # ~40 MB
    state = stream_server.app[STREAM_STATE]
    slow = SlowConsumer(lambda: state.ws_sent, row_bytes=1020)
    config = source_table(
        ws_sql(
            ws_url(stream_server, f"/ws?n={messages}&close=1&pad=1000"),
            columns="value TEXT",
            fmt="raw_string",  # the test is about flow control, not JSON decoding speed
        )  # fmt: skip
    )
    async with RunningStream(config, on_batch=slow) as src:
        await wait_until(lambda: slow.received == messages, within=120, what="every message")
        assert [json.loads(v)["n"] for v in src.column("value")] == list(range(messages))
        assert src.status.extra["max_buffered_bytes"] <= 2 * MAX_BYTES + 1024 * 1024
    assert slow.ahead < 16 * 1024 * 1024
