"""The polling schedule, emit_behavior and state, against a real server on loopback.

Time is a ManualClock: the tests wait (bounded) for the operator to sleep, then move time.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from arroyo_lite.clock import ManualClock
from arroyo_lite.connectors.base import SourceState
from arroyo_lite.connectors.polling_http.changes import STATE_KEY
from arroyo_lite.connectors.polling_http.operator import PollingHttpOperator
from tests.support.http_app import STATE, make_app, url, wait_until
from tests.support.polling import RunningSource, polling_table

pytestmark = pytest.mark.timeout(60)




async def test_first_poll_at_once_and_rows_carry_arrival_time(server: Any) -> None:
    clock = ManualClock()
    async with RunningSource(polling_table(url(server, "/fixed")), clock=clock) as src:
        await src.sleeping_after(1)
        assert server.app[STATE].count("/fixed") == 1
        [row] = src.rows()
        assert row["value"] == '{"n":42,"name":"fixed"}'
        # The manual clock did not move, so arrival time is exactly its wall time.
        assert src.timestamps() == [clock.time_ns()]
        assert src.status.state is SourceState.RUNNING
        assert src.status.rows == 1
        assert src.status.bytes == len(row["value"])
        assert src.status.last_status_code == 200
        assert src.pending_delay() == pytest.approx(1.0)


async def test_interval_between_poll_starts(server: Any) -> None:
    config = polling_table(url(server, "/counter"), poll_interval_ms=500)
    async with RunningSource(config) as src:
        await src.sleeping_after(1)
        await src.manual.advance(0.499)
        assert src.status.polls == 1, "polled before the interval elapsed"
        await src.manual.advance(0.001)
        await src.sleeping_after(2)
        await src.manual.advance(0.5)
        await src.sleeping_after(3)
        assert [r["value"] for r in src.rows()] == ['{"n":1}', '{"n":2}', '{"n":3}']
        stamps = src.timestamps()
        assert [b - a for a, b in zip(stamps, stamps[1:], strict=False)] == [500_000_000] * 2


class Recording(PollingHttpOperator):
    """Records the ``poll_started`` hook's (due, started) pairs."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.starts: list[tuple[float, float]] = []

    def poll_started(self, due: float, started: float) -> None:
        self.starts.append((due, started))


async def test_slow_poll_delays_the_next_without_pile_up(server: Any) -> None:
    state = server.app[STATE]
    config = polling_table(url(server, "/gate"), poll_interval_ms=1000)
    async with RunningSource(config, operator_class=Recording) as src:
        await src.sleeping_after(1)
        state.gate.clear()
        await src.manual.advance(1.0)  # poll 2 starts and hangs on the gate
        await wait_until(lambda: state.count("/gate") == 2, what="poll 2 to reach the server")
        # 3.5 intervals pass while poll 2 is in flight; no tick may fire meanwhile.
        await src.manual.advance(3.5)
        assert src.status.polls == 2
        state.gate.set()
        # Poll 3 follows at once (the missed tick), then ticks are re-based: no burst of 3.
        await src.sleeping_after(3)
        assert src.pending_delay() == pytest.approx(1.0)
        await src.manual.advance(0.9)
        assert src.status.polls == 3
        await src.manual.advance(0.1)
        await src.sleeping_after(4)
        assert state.count("/gate") == 4
    # Poll 2 started at +1 s and ended at +4.5 s; poll 3 was due at +2 s: 2.5 s late.
    assert isinstance(src.operator, Recording)
    lateness = [round(started - due, 6) for due, started in src.operator.starts]
    assert lateness == [0.0, 0.0, 2.5, 0.0]


async def test_changed_skips_byte_equal_bodies(server: Any) -> None:
    server.app[STATE].sequence = [b'{"a":1}', b'{"a":1}', b'{"a":2}', b'{"a":2}', b'{"a":1}']
    config = polling_table(url(server, "/sequence"), emit_behavior="changed")
    async with RunningSource(config) as src:
        await src.run_polls(6)
        assert [r["value"] for r in src.rows()] == ['{"a":1}', '{"a":2}', '{"a":1}']
        assert src.status.unchanged_polls == 3
        assert src.status.polls == 6


async def test_all_emits_every_body(server: Any) -> None:
    async with RunningSource(polling_table(url(server, "/fixed"))) as src:
        await src.run_polls(2)
        assert len(src.rows()) == 2
        assert src.status.unchanged_polls == 0


async def test_changed_state_survives_a_restart(server: Any) -> None:
    state: dict[str, bytes] = {}
    config = polling_table(url(server, "/fixed"), emit_behavior="changed")
    async with RunningSource(config, state=state) as first:
        await first.sleeping_after(1)
        assert len(first.rows()) == 1
    assert first.status.state is SourceState.STOPPED
    assert set(state) == {STATE_KEY}
    async with RunningSource(config, state=state) as second:
        await second.sleeping_after(1)
        assert second.rows() == []
        assert second.status.unchanged_polls == 1
    assert server.app[STATE].count("/fixed") == 2


async def test_failed_poll_leaves_changed_state_alone(server: Any) -> None:
    app_state = server.app[STATE]
    config = polling_table(url(server, "/toggle"), emit_behavior="changed")
    async with RunningSource(config) as src:
        await src.sleeping_after(1)
        app_state.toggle_status = 500
        await src.manual.advance(1.0)
        await src.sleeping_after(2)
        assert src.status.failures == 1
        app_state.toggle_status = 200
        await src.manual.advance(src.pending_delay())
        await src.sleeping_after(3)
        # The same body as before the failure: still not emitted again.
        assert len(src.rows()) == 1
        assert src.status.unchanged_polls == 1
        assert src.status.consecutive_failures == 0


async def test_operators_share_one_session_and_close_it(aiohttp_server: Any) -> None:
    from arroyo_lite.connectors.polling_http import client

    server = await aiohttp_server(make_app())
    clock = ManualClock()
    async with (
        RunningSource(polling_table(url(server, "/fixed"), name="a"), clock=clock) as a,
        RunningSource(polling_table(url(server, "/counter"), name="b"), clock=clock) as b,
    ):
        await wait_until(lambda: (a.status.polls, b.status.polls, clock.sleepers) == (1, 1, 2))
        loop = asyncio.get_running_loop()
        shared = client._sessions[loop]
        assert shared.users == 2
        # Plain GETs: the lean client sent them all, no aiohttp session was made.
        assert not shared.has_aiohttp_session
    assert loop not in client._sessions
    assert shared.closed


async def test_method_body_and_headers_reach_the_server(server: Any) -> None:
    config = polling_table(
        url(server, "/echo"),
        method="PATCH",
        body='{"q": "a,b:c"}',
        headers=(("X-Token", "{{ TOKEN }}"), ("X-Url", "http://h:8080/x")),
    )
    env = {"TOKEN": "se,cr:et"}
    async with RunningSource(config, env=env) as src:
        await src.sleeping_after(1)
    seen = server.app[STATE].requests[-1]
    assert seen.method == "PATCH"
    assert seen.body == b'{"q": "a,b:c"}'
    # Substituted per value after splitting: a secret may hold ',' and ':'.
    assert seen.headers["X-Token"] == "se,cr:et"
    assert seen.headers["X-Url"] == "http://h:8080/x"
    assert "Content-Type" not in seen.headers
    assert seen.headers["User-Agent"].startswith("arroyo-lite/")
