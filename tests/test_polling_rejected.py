"""401/403 on every poll (issue 8, item 9): a state of its own, polled with backoff, and a
``run`` that ends non-zero saying which table never got through."""

from __future__ import annotations

import itertools
import re
from pathlib import Path
from typing import Any

import pytest

from arroyo_lite.connectors.base import SourceState
from tests.support import cli
from tests.support.http_app import STATE, url
from tests.support.polling import RunningSource, polling_table

pytestmark = pytest.mark.timeout(90)

SECRET = "wrong-but-secret-token-1234"
#: How much earlier than asked an event loop's timer may fire (uvloop: whole milliseconds).
TIMER_SLACK = 0.002


@pytest.mark.parametrize("code", [401, 403])
async def test_rejected_credentials_are_a_state_polled_with_backoff(
    server: Any, code: int
) -> None:
    config = polling_table(
        url(server, f"/status/{code}"),
        headers=(("Authorization", "Bearer {{ TOKEN }}"),),
        poll_interval_ms=1000,
        max_backoff_ms=8000,
    )
    async with RunningSource(config, env={"TOKEN": SECRET}) as src:
        for poll, expected in enumerate([1.0, 2.0, 4.0, 8.0, 8.0], start=1):
            await src.sleeping_after(poll)
            assert src.status.state is SourceState.UNAUTHORIZED
            assert str(src.status.state) == "unauthorized"
            assert src.pending_delay() == pytest.approx(expected)
            await src.manual.advance(expected)
        assert src.status.last_error == f"HTTP request failed: http server responded with {code}"


async def test_accepted_again_the_table_runs_at_its_interval(server: Any) -> None:
    config = polling_table(url(server, "/toggle"), poll_interval_ms=1000)
    server.app[STATE].toggle_status = 401
    async with RunningSource(config) as src:
        await src.sleeping_after(1)
        assert src.status.state is SourceState.UNAUTHORIZED
        server.app[STATE].toggle_status = 200
        await src.manual.advance(src.pending_delay())
        await src.sleeping_after(2)
        assert src.status.state is SourceState.RUNNING
        assert src.pending_delay() == pytest.approx(1.0)


async def test_run_reports_rejected_credentials_and_exits_non_zero(
    server: Any, tmp_path: Path
) -> None:
    path = tmp_path / "t.sql"
    path.write_text(
        f"""
CREATE TABLE ok (value TEXT) WITH (
    connector = 'polling_http', endpoint = '{url(server, "/counter")}',
    format = 'raw_string', poll_interval_ms = 100);
CREATE TABLE locked (value TEXT) WITH (
    connector = 'polling_http', endpoint = '{url(server, "/status/401")}',
    headers = 'Authorization: Bearer {{{{ TOKEN }}}}',
    format = 'raw_string', poll_interval_ms = 100);
SELECT count(*) AS n FROM ok;
"""
    )
    seen = server.app[STATE]
    done = await cli.run_until(
        "run",
        str(path),
        "--format",
        "jsonl",
        # Four rejected polls: three waits between them to check (below).
        until=lambda out: bool(re.search(r'"n":(1[5-9]|[2-9]\d|\d{3,})\b', out))
        and seen.count("/status/401") >= 4,
        until_stderr=lambda err: "credentials rejected: HTTP request failed: " in err,
        TOKEN=SECRET,
    )
    assert done.code == 1, done.stderr
    assert "warning: source 'locked': credentials rejected: HTTP request failed: " in done.stderr
    assert "retrying with backoff" in done.stderr
    assert "error: source 'locked' credentials rejected (" in done.stderr
    assert done.stderr.splitlines()[-1] == "run ended with 1 failed source: 'locked'"
    assert SECRET not in done.stderr + done.stdout
    # Backoff: the k-th rejected poll is followed by a wait of at least 100 ms * 2**(k-1)
    # (max_backoff_ms, 60 s by default, is far off). The wait starts when the rejection has
    # arrived, so the gap between two requests as this server saw them can only be longer,
    # however loaded the machine: load adds to the gaps, never removes from them. (How many
    # requests fit in the run is a matter of how long the run took, which load decides.)
    # The slack is uvloop's timer granularity: libuv counts whole milliseconds and rounds
    # the delay to one, so a timer may fire up to 1.5 ms before the exact delay.
    arrivals = [r.at for r in seen.requests if r.path == "/status/401"]
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert len(gaps) >= 3, arrivals
    for k, gap in enumerate(gaps, start=1):
        assert gap >= 0.1 * 2 ** (k - 1) - TIMER_SLACK, (k, gaps)
