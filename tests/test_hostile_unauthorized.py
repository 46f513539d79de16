"""401/403 is its own state, polled with backoff (issue 8, item 9, the source's half).

A server that rejects the credentials on every poll leaves the table ``unauthorized``
(visible in the status, the status table and run's progress line and warnings), polled with
exponential backoff instead of at the normal rate; the first good answer puts it back to
``running`` at its interval. Real server on 127.0.0.1, manual clock.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web

from arroyo_lite.connectors.base import SourceState
from arroyo_lite.terminal import render
from arroyo_lite.terminal.progress import SourceReporter
from tests.support.polling import RunningSource, polling_table

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("status", [401, 403])
async def test_rejected_credentials_back_off_in_their_own_state(
    aiohttp_server: Any, status: int
) -> None:
    answers = {"status": status}

    async def guarded(request: web.Request) -> web.Response:
        return web.Response(status=answers["status"], text="go away")

    app = web.Application()
    app.router.add_get("/guarded", guarded)
    server = await aiohttp_server(app)
    config = polling_table(
        str(server.make_url("/guarded")), poll_interval_ms=1000, max_backoff_ms=8000
    )
    async with RunningSource(config) as src:
        for poll, delay in enumerate([1.0, 2.0, 4.0, 8.0, 8.0], start=1):
            await src.sleeping_after(poll)
            assert src.status.state is SourceState.UNAUTHORIZED
            assert src.pending_delay() == pytest.approx(delay)
            if poll < 5:
                await src.manual.advance(delay)
        assert src.status.last_error == f"HTTP request failed: http server responded with {status}"
        line = render.status_line([src.status.snapshot()])
        assert "[unauthorized]" in line
        [(warning, _)] = SourceReporter().check([src.status.snapshot()])
        assert "credentials rejected: HTTP request failed" in warning
        assert warning.endswith("retrying with backoff)")
        answers["status"] = 200
        await src.manual.advance(8.0)
        await src.sleeping_after(6)
        assert src.status.state is SourceState.RUNNING
        assert src.pending_delay() == pytest.approx(1.0)
