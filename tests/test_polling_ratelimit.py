"""Rate limits (issue 10, item 6) against a real loopback server that answers with the
rate-limit headers real APIs send: GitHub's ``X-RateLimit-*`` (reset in epoch seconds, 403
when spent), the IETF draft's ``RateLimit``/``RateLimit-Policy`` structured fields and its
older ``RateLimit-Remaining``/``-Reset``. Waits run on a manual clock: each test checks the
table waits for exactly the announced reset (no request before it, one right after it),
never with a timed assertion.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiohttp import web

from arroyo_lite import Session
from arroyo_lite.clock import ManualClock
from arroyo_lite.connectors.base import SourceState
from arroyo_lite.connectors.polling_http.probe import probe
from arroyo_lite.connectors.polling_http.ratelimit import read_budget
from arroyo_lite.sql import compile_sql
from arroyo_lite.terminal import render
from tests.support.http_app import wait_until
from tests.support.polling import ID_NAME, RunningSource, polling_table
from tests.support.threaded_server import serve, wait_for

pytestmark = pytest.mark.timeout(60)


@dataclass
class Script:
    """The answers of ``/api``, one per request (the last one repeats), and each request's
    path and query as it came in."""

    answers: list[tuple[int, dict[str, str], object]] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)


SCRIPT = web.AppKey("script", Script)


async def _api(request: web.Request) -> web.Response:
    script = request.app[SCRIPT]
    script.seen.append(request.path_qs)
    status, headers, body = script.answers[min(len(script.seen), len(script.answers)) - 1]
    return web.Response(
        status=status, headers=headers, body=orjson.dumps(body), content_type="application/json"
    )


def make_script_app(script: Script) -> web.Application:
    app = web.Application()
    app[SCRIPT] = script
    app.router.add_get("/api", _api)
    return app


@pytest.fixture
async def api(aiohttp_server: Any) -> Any:
    return await aiohttp_server(make_script_app(Script()))


def script_of(api: Any) -> Script:
    script: Script = api.app[SCRIPT]
    return script


def link(api: Any, page: int) -> dict[str, str]:
    return {"Link": f'<{api.make_url("/api")}?page={page}>; rel="next"'}


def ids(source: RunningSource) -> list[int]:
    return [row["id"] for row in source.rows()]


@pytest.mark.parametrize(
    ("headers", "source"),
    [
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "30"}, "X-RateLimit-Remaining"),
        ({"RateLimit-Remaining": "0", "RateLimit-Reset": "30"}, "RateLimit-Remaining"),
        ({"RateLimit": '"default";r=0;t=30'}, "RateLimit"),
        ({"RateLimit": "limit=100, remaining=0, reset=30"}, "RateLimit"),
        (
            {"RateLimit": '"burst";r=5;t=1, "day";r=0', "RateLimit-Policy": '"day";q=10;w=30'},
            "RateLimit",
        ),
    ],
)
def test_budget_headers_in_every_spelling(headers: dict[str, str], source: str) -> None:
    budget = read_budget(headers, now_wall=1_700_000_000.0)
    assert budget is not None and budget.exhausted
    assert (budget.remaining, budget.reset_s, budget.header) == (0, 30.0, source)


def test_epoch_resets_and_budgets_left() -> None:
    github = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "1700000045"}
    assert read_budget(github, now_wall=1_700_000_000.0).reset_s == 45.0  # type: ignore[union-attr]
    left = read_budget({"RateLimit": '"default";r=4;t=30'}, now_wall=0.0)
    assert left is not None and left.remaining == 4 and not left.exhausted
    assert read_budget({"RateLimit": "garbage;;", "X-Other": "1"}, now_wall=0.0) is None
    assert read_budget({"X-RateLimit-Remaining": "nan"}, now_wall=0.0) is None


async def test_a_spent_budget_mid_pagination_waits_for_the_reset(api: Any) -> None:
    """Page 2 says the budget is spent for 30 s: page 3 is asked for only after 30 s, and
    the poll's three pages are one poll, without a failure."""
    script_of(api).answers = [
        (200, {**link(api, 2), "RateLimit": '"default";r=1;t=30'}, [{"id": 1}]),
        (200, {**link(api, 3), "RateLimit": '"default";r=0;t=30'}, [{"id": 2}]),
        (200, {"RateLimit": '"default";r=9;t=30'}, [{"id": 3}]),
    ]
    config = polling_table(
        str(api.make_url("/api")), columns=ID_NAME[:1], fmt=_json(), pagination_type="header_link",
        poll_interval_ms=3_600_000,
    )  # fmt: skip
    async with RunningSource(config) as source:
        await wait_until(lambda: len(script_of(api).seen) == 2 and source.manual.sleepers >= 1)
        status = source.status
        assert status.state is SourceState.RATE_LIMITED
        assert status.rate_limited_until_ns == source.clock.time_ns() + 30 * 10**9
        assert ids(source) == []  # the poll is not done yet
        await source.manual.advance(29.9)
        assert len(script_of(api).seen) == 2
        await source.manual.advance(0.1)
        await wait_until(lambda: ids(source) == [1, 2, 3])
        assert status.failures == 0 and status.polls == 1
        assert status.state is SourceState.RUNNING and status.rate_limited_until_ns is None
        assert script_of(api).seen[2] == "/api?page=3"


async def test_a_github_403_with_a_spent_budget_is_waited_out(api: Any) -> None:
    """GitHub answers 403 with ``X-RateLimit-Remaining: 0`` and the reset as epoch seconds:
    the table waits for that second and asks again; not a failure, not 'unauthorized'."""
    clock = ManualClock()
    reset = clock.time_ns() // 10**9 + 60
    exceeded = {"message": "API rate limit exceeded for user ID 1."}
    spent = {"X-RateLimit-Limit": "60", "X-RateLimit-Remaining": "0",
             "X-RateLimit-Reset": str(reset), "X-RateLimit-Resource": "core"}  # fmt: skip
    script_of(api).answers = [(403, spent, exceeded), (200, {}, [{"id": 7}])]
    config = polling_table(
        str(api.make_url("/api")), columns=ID_NAME[:1], fmt=_json(), poll_interval_ms=3_600_000
    )
    async with RunningSource(config, clock=clock) as source:
        await wait_until(lambda: source.manual.sleepers >= 1)
        assert source.status.state is SourceState.RATE_LIMITED
        assert source.status.rate_limited_until_ns == reset * 10**9
        await source.manual.advance(reset - clock.time_ns() / 1e9)
        await wait_until(lambda: ids(source) == [7])
        assert source.status.failures == 0 and len(script_of(api).seen) == 2


@pytest.mark.parametrize(
    "spent",
    [
        {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "5"},
        {"RateLimit-Remaining": "0", "RateLimit-Reset": "5"},
        {"RateLimit": '"default";r=0', "RateLimit-Policy": '"default";q=100;w=5'},
    ],
)
async def test_the_next_poll_waits_for_the_reset(api: Any, spent: dict[str, str]) -> None:
    """A poll whose answer spends the budget: the next poll starts at the reset (5 s), not
    at the interval (1 s)."""
    script_of(api).answers = [(200, spent, [{"id": 1}]), (200, {}, [{"id": 2}])]
    config = polling_table(
        str(api.make_url("/api")), columns=ID_NAME[:1], fmt=_json(), poll_interval_ms=1000
    )
    async with RunningSource(config) as source:
        await source.sleeping_after(1)
        await source.manual.advance(1.0)
        await wait_until(lambda: source.status.state is SourceState.RATE_LIMITED)
        assert len(script_of(api).seen) == 1
        await source.manual.advance(3.9)
        assert len(script_of(api).seen) == 1
        await source.manual.advance(0.1)
        await wait_until(lambda: ids(source) == [1, 2])


async def test_a_403_with_retry_after_is_a_rate_limit_not_unauthorized(api: Any) -> None:
    """GitHub's secondary limit: 403 with Retry-After. A transient failure honouring it."""
    script_of(api).answers = [(403, {"Retry-After": "20"}, {}), (200, {}, [{"id": 1}])]
    config = polling_table(
        str(api.make_url("/api")), columns=ID_NAME[:1], fmt=_json(), poll_interval_ms=1000
    )
    async with RunningSource(config) as source:
        await source.sleeping_after(1)
        assert source.status.state is SourceState.BACKOFF
        assert source.pending_delay() == pytest.approx(20.0)


async def test_requests_per_second_is_shared_by_the_tables_of_a_host(api: Any) -> None:
    """Two tables on one host at 2 requests/s: the second's first request waits 0.5 s for
    the first's; the strictest rate declared (1/s) applies to both."""
    script_of(api).answers = [(200, {}, [{"id": 1}])]
    clock = ManualClock()
    endpoint = str(api.make_url("/api"))

    def table(name: str, rate: float) -> Any:
        return polling_table(
            endpoint, name=name, columns=ID_NAME[:1], fmt=_json(), poll_interval_ms=3_600_000,
            rate_limit_requests_per_second=rate,
        )  # fmt: skip

    async with RunningSource(table("a", 2.0), clock=clock):
        await wait_until(lambda: len(script_of(api).seen) == 1)
        async with RunningSource(table("b", 1.0), clock=clock):
            await wait_until(lambda: clock.sleepers >= 2)
            assert len(script_of(api).seen) == 1
            await clock.advance(0.4)
            assert len(script_of(api).seen) == 1
            await clock.advance(0.1)
            await wait_until(lambda: len(script_of(api).seen) == 2)
            # A third table on that host at 5/s: paced by the strictest rate, 1/s.
            async with RunningSource(table("c", 5.0), clock=clock):
                await wait_until(lambda: clock.sleepers >= 3)
                await clock.advance(0.9)
                assert len(script_of(api).seen) == 2
                await clock.advance(0.1)
                await wait_until(lambda: len(script_of(api).seen) == 3)


async def test_a_table_without_the_option_is_not_paced(api: Any) -> None:
    script_of(api).answers = [(200, {}, [{"id": 1}])]
    clock = ManualClock()
    endpoint = str(api.make_url("/api"))
    paced = polling_table(endpoint, name="a", columns=ID_NAME[:1], fmt=_json(),
                          rate_limit_requests_per_second=0.1)  # fmt: skip
    free = polling_table(endpoint, name="b", columns=ID_NAME[:1], fmt=_json())
    async with RunningSource(paced, clock=clock), RunningSource(free, clock=clock):
        await wait_until(lambda: len(script_of(api).seen) == 2)


async def test_test_shows_the_wait_and_refuses_a_long_one(api: Any) -> None:
    script_of(api).answers = [
        (200, {**link(api, 2), "RateLimit": '"default";r=0;t=0.2'}, [{"id": 1}]),
        (200, {**link(api, 3), "RateLimit": '"default";r=0;t=3600'}, [{"id": 2}]),
    ]
    config = compile_sql(
        f"CREATE TABLE t (id BIGINT) WITH (connector = 'polling_http', format = 'json', "
        f"endpoint = '{api.make_url('/api')}', 'pagination.type' = 'header_link');"
    ).tables[0]
    result = await probe(config, {})
    assert any(
        line.startswith("  rate limited (RateLimit: 0): waiting 0.2 s") for line in result.notes
    )
    assert result.error is not None
    assert "the budget resets in 3600 s, longer than this waits (5 s)" in result.error


def test_status_shows_a_table_waiting_and_until_when() -> None:
    """Through a Session: arroyo_status, \\status and the progress line say it."""
    script = Script(answers=[(200, {"RateLimit": '"default";r=0;t=120'}, [{"id": 1}])])
    with serve(make_script_app(script)) as server, Session() as session:
        session.execute(
            f"CREATE TABLE t (id BIGINT) WITH (connector = 'polling_http', format = 'json', "
            f"endpoint = '{server.url('/api')}', poll_interval_ms = 100);"
        )
        wait_for(lambda: session.status()[0].state is SourceState.RATE_LIMITED)
        row = session.query(
            "SELECT state, epoch_us(rate_limited_until) AS until FROM arroyo_status"
        ).to_pylist()[0]
        [status] = session.status()
        assert row["state"] == "rate_limited"
        assert status.rate_limited_until_ns is not None
        assert row["until"] == status.rate_limited_until_ns // 10**3
        until = render.format_ns(status.rate_limited_until_ns)
        assert f"[rate limited until {until} UTC (in 1" in render.status_line([status])
        text = _rendered(render.status_table([status]))
        assert f"t: rate limited until {until} UTC" in text
        assert len(script.seen) == 1


def _rendered(renderable: Any) -> str:
    from rich.console import Console

    console = Console(width=120, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def _json() -> Any:
    from arroyo_lite.config import Format

    return Format.JSON
