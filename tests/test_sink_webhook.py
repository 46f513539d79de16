"""The ``webhook`` sink: one POST per record to a real local server, bounded in flight,
retried with backoff, headers with ``{{ VAR }}`` (masked), and ``arroyo-lite test``'s
test record. Validation follows Arroyo's rules."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pytest
from aiohttp import web
from click.testing import CliRunner

from arroyo_lite import Session
from arroyo_lite.cli import main
from arroyo_lite.clock import ManualClock
from arroyo_lite.config import TableKind
from arroyo_lite.connectors.base import SourceContext, SourceState
from arroyo_lite.connectors.webhook.operator import WebhookSink
from arroyo_lite.errors import SqlError
from arroyo_lite.sql import compile_sql
from tests.support.http_app import url, wait_until
from tests.support.threaded_server import ThreadedServer, serve, wait_for


class Hook:
    """A webhook receiver: records bodies and headers; fails the first ``fail`` requests
    with 503; counts the most requests open at once."""

    def __init__(self, fail: int = 0, delay: float = 0.0, status: int = 200) -> None:
        self.fail, self.delay, self.status = fail, delay, status
        self.bodies: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.attempts = 0
        self.open = self.most_open = 0

    def app(self) -> web.Application:
        async def hook(request: web.Request) -> web.Response:
            self.attempts += 1
            self.open += 1
            self.most_open = max(self.most_open, self.open)
            try:
                body = await request.read()
                if self.delay:
                    await asyncio.sleep(self.delay)
                if self.fail:
                    self.fail -= 1
                    return web.Response(status=503, text="try later")
                self.bodies.append(body)
                self.headers.append(dict(request.headers))
                return web.json_response({"ok": True}, status=self.status)
            finally:
                self.open -= 1

        app = web.Application()
        app.router.add_post("/hook", hook)
        return app


@pytest.fixture
def hook_server() -> Iterator[tuple[Hook, ThreadedServer]]:
    hook = Hook()
    with serve(hook.app()) as server:
        yield hook, server


def pipeline(url: str, count: int, extra: str = "") -> str:
    return f"""
    CREATE TABLE imp WITH (connector = 'impulse', event_rate = '2000', message_count = '{count}');
    CREATE TABLE out WITH (connector = 'webhook', endpoint = '{url}', format = 'json'{extra});
    INSERT INTO out SELECT counter FROM imp;
    """


def sink(session: Session) -> Any:
    return next(s for s in session.status() if s.table == "out")


def test_one_post_per_record_with_headers_from_the_environment(
    hook_server: tuple[Hook, ThreadedServer],
) -> None:
    hook, server = hook_server
    headers = ", headers = 'Authorization: Bearer {{ HOOK_TOKEN }},X-Source: lite'"
    env = {"HOOK_TOKEN": "s3cret-token"}
    with Session(env=env) as session:
        session.execute(pipeline(server.url("/hook"), 40, headers))
        wait_for(lambda: len(hook.bodies) == 40)
    counters = sorted(orjson.loads(b)["counter"] for b in hook.bodies)
    assert counters == list(range(40))
    assert all(h["Authorization"] == "Bearer s3cret-token" for h in hook.headers)
    assert all(h["X-Source"] == "lite" for h in hook.headers)
    assert sink(session).state is SourceState.FINISHED


def test_a_webhook_that_fails_three_times_then_recovers_loses_nothing() -> None:
    hook = Hook(fail=3)
    with serve(hook.app()) as server, Session(env={"T": "tok-abc"}) as session:
        extra = ", headers = 'X-Key: {{ T }}', max_inflight = '1'"
        session.execute(pipeline(server.url("/hook"), 5, extra))
        wait_for(lambda: sink(session).failures >= 1)
        status = sink(session)
        assert status.last_error.startswith("webhook failed (retry 0): ")
        assert "503" in status.last_error
        wait_for(lambda: len(hook.bodies) == 5)
        wait_for(lambda: sink(session).state is SourceState.RUNNING)
        status = sink(session)
    assert status.failures == 3 and status.consecutive_failures == 0
    assert hook.attempts == 8
    assert sorted(orjson.loads(b)["counter"] for b in hook.bodies) == list(range(5))


class SleepLog(ManualClock):
    """A manual clock that also records every sleep asked of it: (when, how long)."""

    def __init__(self) -> None:
        super().__init__()
        self.slept: list[tuple[float, float]] = []

    async def sleep(self, seconds: float) -> None:
        self.slept.append((self.monotonic(), seconds))
        await super().sleep(seconds)


@pytest.mark.parametrize(
    ("max_backoff_ms", "waits"), [(5000, [0.1, 0.2, 0.4]), (150, [0.1, 0.15, 0.15])]
)
async def test_retries_wait_as_arroyos_backoff_then_the_record_goes_through(
    aiohttp_server: Any, max_backoff_ms: int, waits: list[float]
) -> None:
    # Arroyo's 50 ms * 2^retry (the first retry after 100 ms), capped at max_backoff_ms; the
    # sink sleeps on its clock, so the test moves time and sees no retry before it is due.
    hook = Hook(fail=3)
    server = await aiohttp_server(hook.app())
    sql = (
        f"CREATE TABLE out (n BIGINT) WITH (connector = 'webhook', endpoint = "
        f"'{url(server, '/hook')}', format = 'json', max_backoff_ms = '{max_backoff_ms}');"
    )
    (config,) = [t for t in compile_sql(sql).tables if t.kind is TableKind.SINK]
    clock = SleepLog()
    sink = WebhookSink(config, SourceContext(clock=clock))
    states: list[SourceState] = []
    sink.bind_reporter(states.append)
    await sink.open()
    try:
        await sink.write(
            pa.record_batch({"n": [7], "_timestamp": pa.array([0], pa.timestamp("ns"))})
        )
        for attempt, wait in enumerate(waits, 1):
            await wait_until(lambda a=attempt: hook.attempts == a and clock.sleepers == 1)
            assert sink.status.last_error == (
                f"webhook failed (retry {attempt - 1}): server responded with error code: 503"
            )
            began, asked = clock.slept[-1]
            assert asked == pytest.approx(wait)
            await clock.advance(began + asked / 2 - clock.monotonic())
            assert hook.attempts == attempt  # (not yet due)
            await clock.advance(began + asked + 1e-6 - clock.monotonic())
        await asyncio.wait_for(sink.flush(), 20)  # (the fourth attempt was accepted)
    finally:
        hook.fail = 0  # (after a failed assertion: let close's flush end)
        await clock.advance(60)
        await sink.close()
    assert [asked for _, asked in clock.slept] == pytest.approx(waits)
    assert hook.attempts == 4 and hook.bodies == [b'{"n":7}']
    assert sink.status.failures == 3 and sink.status.consecutive_failures == 0
    assert states == [SourceState.BACKOFF, SourceState.RUNNING]


def test_a_password_in_the_endpoint_is_masked_in_errors() -> None:
    with Session() as session:
        session.execute(pipeline("http://user:pw-7f3k9q@127.0.0.1:1/hook", 2))
        wait_for(lambda: sink(session).failures >= 1)
        status = sink(session)
    assert "pw-7f3k9q" not in (status.last_error or "")


def test_requests_in_flight_are_bounded() -> None:
    hook = Hook(delay=0.05)
    with serve(hook.app()) as server, Session() as session:
        session.execute(pipeline(server.url("/hook"), 60, ", max_inflight = '4'"))
        wait_for(lambda: len(hook.bodies) == 60)
    assert 1 < hook.most_open <= 4


def test_a_refused_record_is_counted_not_retried() -> None:
    hook = Hook(status=400)
    with serve(hook.app()) as server, Session() as session:
        session.execute(pipeline(server.url("/hook"), 3))
        wait_for(lambda: sink(session).dropped_rows == 3)
        assert "server responded with error code: 400" in (sink(session).last_error or "")
    assert hook.attempts == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("format = 'json'", "required option 'endpoint' not set"),
        ("endpoint = 'http://127.0.0.1:1/x'", "'format' must be set for webhook connection"),
        ("endpoint = 'ftp://h/x', format = 'json'", "invalid endpoint 'ftp://h/x'"),
        (
            "endpoint = 'http://h/x', headers = 'nocolon', format = 'json'",
            "Invalid format for headers",
        ),
        (
            "endpoint = 'http://h/{{ NOPE_VAR }}', format = 'json'",
            "Environment variable NOPE_VAR not found",
        ),
    ],
)
def test_validation_uses_arroyos_rules(options: str, message: str) -> None:
    with pytest.raises(SqlError) as info:
        compile_sql(f"CREATE TABLE out (n BIGINT) WITH (connector = 'webhook', {options});")
    assert message in str(info.value)
    assert info.value.position is not None


def test_an_updating_query_into_a_webhook_is_an_error() -> None:
    with Session() as session, pytest.raises(SqlError) as info:
        session.execute(
            "CREATE TABLE imp WITH (connector = 'impulse', event_rate = '10');"
            "CREATE TABLE out WITH (connector = 'webhook', endpoint = 'http://127.0.0.1:1/',"
            " format = 'json');"
            "INSERT INTO out SELECT count(*) FROM imp;"
        )
    assert "input is updating, but sink is not configured as an updating sink" in (
        info.value.message
    )


def test_arroyo_lite_test_sends_one_test_record_and_shows_the_answer(
    hook_server: tuple[Hook, ThreadedServer], tmp_path: Path
) -> None:
    hook, server = hook_server
    sql = tmp_path / "hook.sql"
    sql.write_text(
        f"CREATE TABLE out (n BIGINT) WITH (connector = 'webhook', endpoint = "
        f"'{server.url('/hook')}', headers = 'X-Key: {{{{ HOOK_KEY }}}}', format = 'json');\n"
    )
    result = CliRunner(env={"HOOK_KEY": "k-123456"}).invoke(main, ["test", str(sql)])
    assert result.exit_code == 0, result.output
    assert hook.bodies == [b'{"message":"this is a test message from the Arroyo Webhook Sink"}']
    assert hook.headers[0]["X-Key"] == "k-123456"
    assert "POST " + server.url("/hook") in result.output
    assert "X-Key: ****" in result.output and "k-123456" not in result.output
    assert 'response: {"ok": true}' in result.output
    assert "1 of 1 tested table(s) OK" in result.output
