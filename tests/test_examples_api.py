"""The API examples of sql_examples/ (issue 10, item 8) run end to end against the demo API's
stand-ins (arroyo_lite/demo/apis.py, oauth.py), pointed at it the way the price pipeline's
test does (``retarget`` to the demo server's port): GitHub's Link pages, ETag and rate limit;
Stripe's cursor pages over a created[gte] window; OAuth2 client credentials; a USGS
starttime/endtime window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from arroyo_lite import Session
from arroyo_lite.connectors.polling_http import auth as auth_module
from arroyo_lite.demo import retarget
from arroyo_lite.demo.api import DemoServer
from arroyo_lite.demo.apis import GITHUB, STRIPE
from arroyo_lite.demo.oauth import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, OAUTH
from tests.support.threaded_server import wait_for

pytestmark = pytest.mark.timeout(90)

EXAMPLES = Path(__file__).parents[1] / "sql_examples"
ENV = {"GITHUB_TOKEN": "ghp_demoTokenValue0123456789", "STRIPE_API_KEY": "sk_test_demoKey42",
       "ORDERS_CLIENT_ID": DEMO_CLIENT_ID, "ORDERS_CLIENT_SECRET": DEMO_CLIENT_SECRET}  # fmt: skip


@pytest.fixture(autouse=True)
def _fresh_tokens() -> None:
    auth_module._TOKENS.clear()


def example(name: str, demo: DemoServer, **replace: str) -> str:
    sql = retarget((EXAMPLES / f"{name}.sql").read_text(encoding="utf-8"), demo.port)
    for old, new in replace.items():
        assert old in sql, old
        sql = sql.replace(old, new)
    return sql


def status_of(session: Session, table: str) -> Any:
    return next(s for s in session.status() if s.table == table)


def test_github_issues_every_page_conditionally_within_the_rate_limit() -> None:
    """45 issues in pages of 20; the budget (2 requests per 2 s) runs out after page 2, so
    the poll waits for the reset and goes on; the next poll is a 304 (unchanged)."""
    with DemoServer(port=0) as demo:
        github = demo.app[GITHUB]
        github.limit, github.window_s, github.open_every_s = 2, 2, 10_000.0
        sql = example(
            "github_issues", demo, **{"poll_interval_ms = 10000": "poll_interval_ms = 300"}
        )
        with Session(env=ENV) as session:
            session.execute(sql)
            wait_for(lambda: status_of(session, "issues").unchanged_polls >= 1)
            rows = session.query("SELECT number, page FROM issues ORDER BY number").to_pylist()
            status = status_of(session, "issues")
            by_author = session.query("SELECT count(*) FROM issues").to_pylist()
        assert [r["number"] for r in rows] == list(range(1, 46))
        assert {r["page"] for r in rows} == {1, 2, 3}
        assert by_author == [{"count_star()": 45}]
        assert status.failures == 0, status.last_error
        assert status.extra.get("rate_limited_waits", 0) >= 1
        assert github.not_modified >= 1


def test_stripe_charges_cursor_pages_over_a_created_window() -> None:
    """20 new charges a second, pages of 3: each poll follows starting_after through
    has_more, windows follow on (created[gte] = last success), so every charge from the first
    window on arrives exactly once."""
    with DemoServer(port=0) as demo:
        demo.app[STRIPE].every_s = 0.05
        sql = example(
            "stripe_charges", demo,
            **{"'query.limit' = '100'": "'query.limit' = '3'",
               "poll_interval_ms = 5000": "poll_interval_ms = 1000"},
        )  # fmt: skip
        with Session(env=ENV) as session:
            session.execute(sql)
            wait_for(lambda: status_of(session, "charges").polls >= 3, within=60)
            ids = session.query("SELECT id FROM charges").column("id").to_pylist()
            status = status_of(session, "charges")
    numbers = sorted(int(i.removeprefix("ch_demo")) for i in ids)
    assert len(numbers) == len(set(numbers)) > 20
    assert numbers == list(range(numbers[0], numbers[-1] + 1))  # no charge missed
    assert status.failures == 0, status.last_error
    assert status.extra["pages"] >= 2


def test_oauth_orders_fetch_one_token_and_poll_with_it() -> None:
    with DemoServer(port=0) as demo:
        sql = example("oauth_orders", demo, **{"poll_interval_ms = 2000": "poll_interval_ms = 200"})
        with Session(env=ENV) as session:
            session.execute(sql)
            wait_for(lambda: status_of(session, "orders").polls >= 3)
            count = session.query("SELECT count(*) AS n FROM orders").to_pylist()[0]["n"]
            status = status_of(session, "orders")
        oauth = demo.app[OAUTH]
    assert count >= 5 and status.failures == 0, status.last_error
    assert len(oauth.token_requests) == 1  # cached between polls
    assert oauth.token_requests[0] == {"grant_type": "client_credentials", "scope": "orders:read"}
    assert oauth.resource_requests >= 3


def test_quake_window_asks_for_consecutive_windows() -> None:
    """A quake every 2 s; windows [last success, now] follow on: contiguous ids, none twice."""
    with DemoServer(port=0) as demo:
        sql = example("quake_window", demo, **{"poll_interval_ms = 5000": "poll_interval_ms = 500"})
        with Session(env=ENV) as session:
            session.execute(sql)
            wait_for(lambda: session.query("SELECT count(*) FROM quakes")[0][0].as_py() >= 4)
            ids = session.query("SELECT id FROM quakes").column("id").to_pylist()
            status = status_of(session, "quakes")
    numbers = sorted(int(i.removeprefix("dm")) for i in ids)
    assert numbers == list(range(numbers[0], numbers[-1] + 1))
    assert len(numbers) == len(set(numbers))
    assert status.failures == 0, status.last_error


def test_quake_window_resumes_after_a_restart_with_a_state_dir(tmp_path: Path) -> None:
    """The example's claim: with a state directory the first window after a restart starts
    at the last success of the run before, so the quakes that happened while it was down
    arrive too (contiguous ids across the restart)."""
    import time

    with DemoServer(port=0) as demo:
        sql = example("quake_window", demo, **{"poll_interval_ms = 5000": "poll_interval_ms = 500"})

        def run_until(count: int) -> list[int]:
            with Session(env=ENV, state_dir=tmp_path / "state") as session:
                session.execute(sql)
                wait_for(
                    lambda: session.query("SELECT count(*) FROM quakes")[0][0].as_py() >= count
                )
                ids = session.query("SELECT id FROM quakes").column("id").to_pylist()
            return sorted(int(i.removeprefix("dm")) for i in ids)

        before = run_until(2)
        time.sleep(4.5)  # the table is down while two or three quakes happen
        after = run_until(len(before) + 3)
    assert after[: len(before)] == before  # the restored rows
    assert after[-1] - before[-1] >= 2  # quakes happened while it was down (4.5 s, one per 2 s)
    assert after == list(range(after[0], after[-1] + 1))  # ...and none was missed
