"""Conditional requests (issue 10, item 5): ETag / Last-Modified sent back, a 304 is an
unchanged poll (100 of them in a row), validators survive a restart, and the option to turn
it off; against a real loopback server and httpbin's ``/etag`` and ``/cache``."""

from __future__ import annotations

from typing import Any

import pytest

from arroyo_lite.connectors.polling_http.conditional import ETAG_KEY
from tests.support.http_app import STATE, url
from tests.support.polling import RunningSource, polling_table

pytestmark = pytest.mark.timeout(120)


def conditional_requests(server: Any) -> list[Any]:
    return [r for r in server.app[STATE].requests if r.path == "/conditional"]


async def test_a_304_run_of_100_polls_is_unchanged_and_never_a_failure(server: Any) -> None:
    server.app[STATE].sequence = [b'{"n": 1}']
    async with RunningSource(polling_table(url(server, "/conditional"))) as src:
        await src.run_polls(101)
    status = src.status
    assert status.failures == 0 and status.polls == 101
    assert status.unchanged_polls == 100
    assert status.last_status_code == 304
    assert src.rows() == [{"value": '{"n": 1}'}]
    first, *rest = conditional_requests(server)
    assert "If-None-Match" not in first.headers
    assert all(r.headers["If-None-Match"].startswith('"') for r in rest)
    assert all(r.headers["If-Modified-Since"] == "Wed, 21 Oct 2026 07:28:00 GMT" for r in rest)


async def test_a_changed_resource_is_fetched_again(server: Any) -> None:
    server.app[STATE].sequence = [b'{"n": 1}']
    async with RunningSource(polling_table(url(server, "/conditional"))) as src:
        await src.run_polls(2)
        server.app[STATE].sequence = [b'{"n": 2}']
        await src.manual.advance(1.0)
        await src.sleeping_after(3)
    assert [r["value"] for r in src.rows()] == ['{"n": 1}', '{"n": 2}']
    assert src.status.unchanged_polls == 1


async def test_validators_survive_a_restart(server: Any) -> None:
    state: dict[str, bytes] = {}
    config = polling_table(url(server, "/conditional"))
    async with RunningSource(config, state=state) as first:
        await first.sleeping_after(1)
    assert ETAG_KEY in state
    async with RunningSource(config, state=state) as second:
        await second.sleeping_after(1)
    assert second.rows() == [] and second.status.unchanged_polls == 1


async def test_it_can_be_turned_off(server: Any) -> None:
    config = polling_table(url(server, "/conditional"), conditional_requests=False)
    async with RunningSource(config) as src:
        await src.run_polls(2)
    assert len(src.rows()) == 2
    assert all("If-None-Match" not in r.headers for r in conditional_requests(server))


@pytest.mark.parametrize("path", ["/etag/abc123", "/cache"])
async def test_httpbin_etag_and_cache(httpbin: Any, path: str) -> None:
    async with RunningSource(polling_table(httpbin.url + path)) as src:
        await src.run_polls(2)
    assert src.status.failures == 0, src.status.last_error
    assert src.status.unchanged_polls == 1 and len(src.rows()) == 1
