"""Graceful overload (issue 16): admission of polls, lag in status, the behind-schedule warning.

No timings are asserted: the tests check who waits where (a poll waits for a slot before its
request exists, so its timeout cannot run out while it queues), what the status says, and what
the warning says for given figures.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from arroyo_lite.clock import SystemClock
from arroyo_lite.connectors.polling_http import scheduling
from arroyo_lite.query.status_table import STATUS_SCHEMA, status_table
from arroyo_lite.runtime.loop import LAG_WARN_MS, lag_warning
from tests.support.http_app import wait_until
from tests.support.polling import RunningSource, polling_table

pytestmark = pytest.mark.timeout(60)


async def test_polls_beyond_the_slots_queue_before_sending_and_none_times_out(
    aiohttp_server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One slot, eight tables, each answer held 0.2 s: the last table's poll queues for about
    # 1.4 s, more than its 1 s timeout. Timed from the queue, it would fail; timed from the
    # send, each has 0.8 s to spare (a loaded machine used up the 0.2 s spare of an earlier
    # 0.3 s hold against a 0.5 s timeout).
    monkeypatch.setattr(scheduling, "MAX_IN_FLIGHT", 1)
    in_flight = peak = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await asyncio.sleep(0.2)
        finally:
            in_flight -= 1
        return web.Response(body=b'{"n":1}', content_type="application/json")

    app = web.Application()
    app.router.add_get("/slow/{i}", slow)
    server = await aiohttp_server(app)
    async with AsyncExitStack() as stack:
        sources = [
            await stack.enter_async_context(
                RunningSource(
                    polling_table(
                        str(server.make_url(f"/slow/{i}")),
                        name=f"t{i}",
                        poll_interval_ms=60_000,
                        timeout_ms=1_000,
                    ),
                    clock=SystemClock(),
                )
            )
            for i in range(8)
        ]
        await wait_until(
            lambda: all(s.status.rows == 1 for s in sources), what="every table polled", within=30
        )
        assert peak == 1, "more requests were in flight than there are slots"
        assert [s.status.failures for s in sources] == [0] * 8
        lags = sorted(s.status.lag_ms or 0.0 for s in sources)
        # The tables that queued behind the others started late, and their status says so.
        assert lags[-1] > lags[0]


async def test_status_table_shows_each_sources_lag(server: Any) -> None:
    config = polling_table(str(server.make_url("/counter")), poll_interval_ms=60_000)
    async with RunningSource(config, clock=SystemClock()) as src:
        await wait_until(lambda: src.status.polls == 1, what="a poll")
        table = status_table([src.status.snapshot()])
    assert table.schema == STATUS_SCHEMA
    [lag] = table.column("lag_ms").to_pylist()
    assert lag is not None and lag >= 0.0


def test_no_warning_while_every_poll_starts_on_time() -> None:
    assert lag_warning([0.0, 3.0, LAG_WARN_MS], cpu_per_wall=0.99, polls_per_s=2000) is None
    assert lag_warning([], cpu_per_wall=0.0, polls_per_s=0) is None


def test_warning_says_how_far_behind_and_that_the_process_is_cpu_bound() -> None:
    message = lag_warning([5.0, 150.0, 2400.0], cpu_per_wall=0.97, polls_per_s=2100)
    assert message is not None
    assert message.startswith("polling is behind schedule: 2 of 3 tables")
    assert "worst 2400 ms, median 150 ms" in message
    assert "CPU-bound (0.97 CPU s per s, 2100 polls/s)" in message
    assert "poll_interval_ms" in message


def test_warning_blames_the_machine_when_the_process_is_not_busy() -> None:
    message = lag_warning([400.0], cpu_per_wall=0.2, polls_per_s=50)
    assert message is not None
    assert "the machine is busy with other work, or something blocked the event loop" in message


def test_readme_shows_the_warning_as_written() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    block = readme.split("```text\npolling is behind schedule", 1)[1].split("```", 1)[0]
    shown = " ".join(("polling is behind schedule" + block).split())
    lags = [40.0] * 2188 + [150.0] * 811 + [2400.0]
    assert lag_warning(lags, cpu_per_wall=0.97, polls_per_s=2100) == shown
