"""Failures never stop polling, are counted and visible, and transient ones back off.

Real server on loopback; time-dependent rules run on a ManualClock.
"""

from __future__ import annotations

import email.utils
import logging
import socket
import time
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from arroyo_lite.clock import SystemClock
from arroyo_lite.connectors.base import SourceState
from tests.support.http_app import STATE, make_app, url, wait_until
from tests.support.polling import RunningSource, polling_table

pytestmark = pytest.mark.timeout(60)




async def test_non_transient_status_is_counted_and_retried_at_the_interval(server: Any) -> None:
    async with RunningSource(polling_table(url(server, "/status/404"))) as src:
        for poll in (1, 2, 3):
            await src.sleeping_after(poll)
            assert src.pending_delay() == pytest.approx(1.0)
            await src.manual.advance(1.0)
        status = src.status
        assert status.failures >= 3
        assert status.last_error == "HTTP request failed: http server responded with 404"
        assert status.last_status_code == 404
        assert status.state is SourceState.RUNNING
        assert src.rows() == []


async def test_5xx_backs_off_exponentially_up_to_the_cap(server: Any) -> None:
    config = polling_table(url(server, "/status/503"), poll_interval_ms=1000, max_backoff_ms=8000)
    async with RunningSource(config) as src:
        for poll, expected in enumerate([1.0, 2.0, 4.0, 8.0, 8.0], start=1):
            await src.sleeping_after(poll)
            assert src.pending_delay() == pytest.approx(expected)
            assert src.status.state is SourceState.BACKOFF
            assert src.status.consecutive_failures == poll
            await src.manual.advance(expected - 0.01)
            assert src.status.polls == poll, "polled before the backoff elapsed"
            await src.manual.advance(0.01)
        assert src.status.last_error == "HTTP request failed: http server responded with 503"


async def test_normal_interval_resumes_after_a_success(server: Any) -> None:
    config = polling_table(url(server, "/fail?times=2&status=502"), poll_interval_ms=1000)
    async with RunningSource(config) as src:
        for poll, expected in enumerate([1.0, 2.0, 1.0, 1.0], start=1):
            await src.sleeping_after(poll)
            assert src.pending_delay() == pytest.approx(expected)
            await src.manual.advance(expected)
        await src.sleeping_after(5)
        assert src.status.failures == 2
        assert src.status.consecutive_failures == 0
        assert src.status.state is SourceState.RUNNING
        assert [r["value"] for r in src.rows()] == ['{"n":3}', '{"n":4}', '{"n":5}']


@pytest.mark.parametrize("code", [429, 503])
async def test_retry_after_seconds_is_honoured(server: Any, code: int) -> None:
    config = polling_table(url(server, f"/status/{code}?retry_after=7"), poll_interval_ms=1000)
    async with RunningSource(config) as src:
        await src.sleeping_after(1)
        assert src.pending_delay() == pytest.approx(7.0)
        await src.manual.advance(6.9)
        assert src.status.polls == 1
        await src.manual.advance(0.1)
        await src.sleeping_after(2)


async def test_retry_after_http_date_is_honoured(server: Any) -> None:
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    config = polling_table(url(server, f"/status/503?retry_after={when}"))
    async with RunningSource(config) as src:
        await src.sleeping_after(1)
        # HTTP-dates have 1 s resolution and real time passes while the request runs (a loaded
        # machine may take seconds): only "about 30 s, never more" is asserted.
        assert 20.0 <= src.pending_delay() <= 31.0


async def test_retry_after_is_ignored_on_other_statuses(server: Any) -> None:
    config = polling_table(url(server, "/status/500?retry_after=30"))
    async with RunningSource(config) as src:
        await src.sleeping_after(1)
        assert src.pending_delay() == pytest.approx(1.0)


async def test_timeout_is_a_transient_failure(server: Any) -> None:
    config = polling_table(url(server, "/sleep?seconds=60"), timeout_ms=200)
    async with RunningSource(config) as src:
        await src.sleeping_after(1)
        assert src.status.last_error == "HTTP request failed: operation timed out after 200 ms"
        assert src.status.state is SourceState.BACKOFF
        assert src.status.failures == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_refused_connection_then_the_server_comes_back() -> None:
    port = _free_port()
    config = polling_table(f"http://127.0.0.1:{port}/counter")
    async with RunningSource(config) as src:
        await src.sleeping_after(1)
        assert src.status.last_error is not None
        expected = f"HTTP request failed: error connecting to 127.0.0.1:{port}: "
        assert src.status.last_error.startswith(expected)
        assert src.status.state is SourceState.BACKOFF
        server = TestServer(make_app(), host="127.0.0.1", port=port)
        await server.start_server()
        try:
            await src.manual.advance(src.pending_delay())
            await src.sleeping_after(2)
            assert [r["value"] for r in src.rows()] == ['{"n":1}']
            assert src.status.state is SourceState.RUNNING
            assert src.status.consecutive_failures == 0
            assert src.status.failures == 1
        finally:
            await server.close()


async def test_server_going_down_and_coming_back(server: Any) -> None:
    app_state = server.app[STATE]
    async with RunningSource(polling_table(url(server, "/toggle"))) as src:
        await src.sleeping_after(1)
        app_state.toggle_status = 503
        await src.manual.advance(1.0)
        await src.sleeping_after(2)
        assert src.status.state is SourceState.BACKOFF
        app_state.toggle_status = 200
        await src.manual.advance(src.pending_delay())
        await src.sleeping_after(3)
        assert len(src.rows()) == 2
        assert src.status.state is SourceState.RUNNING


async def test_dns_failure_is_counted() -> None:
    # '.invalid' never resolves (RFC 2606); with no resolver at all the request times out.
    config = polling_table("http://no-such-host.invalid/x", timeout_ms=3000)
    async with RunningSource(config) as src:
        await src.sleeping_after(1)
        assert src.status.failures == 1
        assert src.status.last_error.startswith("HTTP request failed: ")
        assert src.status.state is SourceState.BACKOFF


TOO_LONG = "HTTP request failed: response body exceeds max length"


@pytest.mark.parametrize(
    ("path", "limit", "error"),
    [
        (
            "/big?size=1000&length=1",
            999,
            "HTTP request failed: content length sent by server exceeds maximum limit "
            "(1000 > 999)",
        ),
        ("/big?size=1000&length=0", 999, f"{TOO_LONG} 999"),
        ("/gzip-big?size=100000", 99_999, f"{TOO_LONG} 99999"),
        ("/big?size=1000&length=1", 1000, None),
        ("/big?size=1000&length=0", 1000, None),
        ("/gzip-big?size=100000", 100_000, None),
        # Compressed length 100,000+ (random bytes do not compress), decompressed exactly the cap.
        ("/gzip-big?size=100000&random=1", 100_000, None),
        ("/gzip-big?size=100000&random=1", 99_999, f"{TOO_LONG} 99999"),
    ],
)
async def test_body_size_cap(server: Any, path: str, limit: int, error: str | None) -> None:
    async with RunningSource(polling_table(url(server, path), max_body_bytes=limit)) as src:
        await src.sleeping_after(1)
        assert src.status.last_error == error
        if error is None:
            size = int(path.split("size=")[1].split("&")[0])
            [row] = src.rows()
            assert src.status.bytes == size
            if "random" not in path:  # random bytes are not UTF-8: raw_string replaces them
                assert len(row["value"].encode()) == size
        else:
            assert src.rows() == []
            # Not transient: the normal interval, not a backoff.
            assert src.status.state is SourceState.RUNNING


async def test_corrupt_gzip_body_is_a_transient_failure(server: Any) -> None:
    async with RunningSource(polling_table(url(server, "/gzip-corrupt"))) as src:
        await src.sleeping_after(1)
        assert src.status.state is SourceState.BACKOFF
    assert src.status.last_error == (
        "HTTP request failed: error reading response body: "
        "Can not decode content-encoding: gzip"
    )
    assert src.status.failures == 1 and src.rows() == []


async def test_gzip_chunked_and_ndjson_bodies(server: Any) -> None:
    async with (
        RunningSource(polling_table(url(server, "/gzip?n=2"), name="g")) as gz,
        RunningSource(polling_table(url(server, "/chunked?n=4"), name="c")) as ch,
        RunningSource(polling_table(url(server, "/ndjson?n=3"), newline=True, name="n")) as nd,
    ):
        for src in (gz, ch, nd):
            await src.sleeping_after(1)
    assert [r["value"] for r in gz.rows()] == [
        '[{"id":0,"name":"item-0"},{"id":1,"name":"item-1"}]'
    ]
    assert ch.rows()[0]["value"].startswith('[{"id":0,') and len(ch.rows()) == 1
    assert [r["value"] for r in nd.rows()] == [
        '{"id":0,"name":"item-0"}',
        '{"id":1,"name":"item-1"}',
        '{"id":2,"name":"item-2"}',
    ]


async def test_secrets_never_reach_status_or_logs(
    server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "tok-3f9a,with:colon"
    # The error body reflects the request headers: its excerpt in the log must be masked.
    config = polling_table(
        url(server, "/status/500?echo=1"), headers=(("Authorization", "Bearer {{ TOKEN }}"),)
    )
    caplog.set_level(logging.DEBUG, logger="arroyo_lite")
    async with RunningSource(config, env={"TOKEN": secret}) as src:
        await src.sleeping_after(1)
    assert server.app[STATE].requests[-1].headers["Authorization"] == f"Bearer {secret}"
    assert "HTTP request failed" in caplog.text
    assert '(body: {"' in caplog.text and "Bearer ****" in caplog.text
    # Nor any repr that a traceback or a debug log could show.
    step = src.operator._step
    request = step.first_request()  # the request as sent, credentials included
    assert dict(request.headers)["Authorization"] == f"Bearer {secret}"
    shown = (repr(src.status), repr(step), repr(request), repr(step.secrets), repr(step.auth))
    for text in (caplog.text, *shown):
        assert secret not in text
        assert "tok-3f9a" not in text


async def test_missing_variable_is_fatal_and_named(server: Any) -> None:
    config = polling_table(url(server, "/fixed"), headers=(("X-Key", "{{ NOT_SET_ANYWHERE }}"),))
    async with RunningSource(config) as src:
        await wait_until(lambda: src.task is not None and src.task.done())
        assert src.task is not None
        error = src.task.result()
        assert error is not None
        assert str(error).startswith("error: Environment variable NOT_SET_ANYWHERE not found")
        assert src.status.state is SourceState.FAILED
    assert server.app[STATE].count("/fixed") == 0


async def test_real_clock_keeps_polling(server: Any) -> None:
    # The SystemClock path: a short interval, waiting (bounded) for a few real polls.
    config = polling_table(url(server, "/counter"), poll_interval_ms=20)
    async with RunningSource(config, clock=SystemClock()) as src:
        await wait_until(lambda: src.status.rows >= 3, what="three polls' rows")
    assert len(src.rows()) >= 3
    assert src.status.polls >= 3
    assert src.status.state is SourceState.STOPPED




async def test_a_failure_streak_logs_one_warning(
    server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="arroyo_lite.polling_http")
    async with RunningSource(polling_table(url(server, "/status/404"))) as src:
        for poll in (1, 2, 3):
            await src.sleeping_after(poll)
            await src.manual.advance(1.0)
        await src.sleeping_after(4)
    records = [r for r in caplog.records if r.name == "arroyo_lite.polling_http"]
    assert [r.levelno for r in records] == [logging.WARNING] + [logging.DEBUG] * 3
    assert "(body: status)" in records[0].getMessage()


async def test_header_value_with_a_line_break_is_refused_not_sent(server: Any) -> None:
    # A substituted value with CR/LF would inject a header: aiohttp refuses to send it. That is
    # a request error (counted, masked, normal interval), and nothing reaches the server.
    secret = "tok-9\r\nX-Injected: 1"
    config = polling_table(url(server, "/fixed"), headers=(("X-Key", "{{ K }}"),))
    async with RunningSource(config, env={"K": secret}) as src:
        await src.sleeping_after(1)
        assert src.status.state is SourceState.RUNNING
        assert src.pending_delay() == pytest.approx(1.0)
        await src.manual.advance(1.0)
        await src.sleeping_after(2)
    error = src.status.last_error
    assert error is not None and error.startswith("invalid request: ")
    assert "tok-9" not in error
    assert src.status.failures == 2
    assert server.app[STATE].count("/fixed") == 0
