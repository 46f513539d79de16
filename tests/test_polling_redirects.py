"""Redirects (issue 8, items 1 and 10): no secret goes to another origin (headers, a body, and
query parameters a server copies into ``Location``); exactly 10 hops.

Two real aiohttp servers on 127.0.0.1 (two ports, so two origins): the first redirects to the
second, which records what reached it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestServer

from arroyo_lite.connectors.polling_http.probe import probe
from tests.support.http_app import STATE, make_app, url
from tests.support.polling import RunningSource, polling_table

pytestmark = pytest.mark.timeout(60)

SECRET = "k3y-Very-Secret-Value"
ENV = {"API_KEY": SECRET}


@pytest.fixture
async def other() -> Any:
    """A second server: another origin (same host, another port)."""
    server = TestServer(make_app(), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


def to(server: Any, target: str, status: int = 302) -> str:
    return url(server, f"/redirect?status={status}&to={quote(target, safe='')}")


HEADERS = (
    ("X-Api-Key", "{{ API_KEY }}"),
    ("Private-Token", "tok-{{ API_KEY }}"),
    ("Authorization", "Basic plain-not-from-env"),
    ("X-Plain", "kept"),
)


def seen_by(server: Any) -> list[Any]:
    return [r for r in server.app[STATE].requests if r.path == "/echo"]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_headers_with_secrets_stay_with_their_origin(
    server: Any, other: Any, status: int
) -> None:
    config = polling_table(to(server, url(other, "/echo"), status), headers=HEADERS)
    async with RunningSource(config, env=ENV) as src:
        await src.sleeping_after(1)
    assert src.status.failures == 0, src.status.last_error
    (arrived,) = seen_by(other)
    names = {name.lower() for name in arrived.headers}
    assert {"x-api-key", "private-token", "authorization"}.isdisjoint(names)
    assert arrived.headers["X-Plain"] == "kept"
    assert SECRET not in repr(arrived.headers)


async def test_the_same_origin_keeps_every_header(server: Any) -> None:
    config = polling_table(to(server, url(server, "/echo")), headers=HEADERS)
    async with RunningSource(config, env=ENV) as src:
        await src.sleeping_after(1)
    (arrived,) = seen_by(server)
    assert arrived.headers["X-Api-Key"] == SECRET
    assert arrived.headers["Authorization"] == "Basic plain-not-from-env"


async def test_a_secret_query_parameter_copied_into_location_is_dropped(
    server: Any, other: Any
) -> None:
    target = url(other, "/echo") + f"?key={SECRET}&page=2"
    config = polling_table(to(server, target), headers=(("X-Api-Key", "{{ API_KEY }}"),))
    async with RunningSource(config, env=ENV) as src:
        await src.sleeping_after(1)
    (arrived,) = [r for r in other.app[STATE].requests if r.path == "/echo"]
    echoed = src.rows()[0]["value"]
    assert '"query":{"page":"2"}' in echoed.replace(" ", "")
    assert SECRET not in echoed and SECRET not in repr(arrived)


@pytest.mark.parametrize("status", [307, 308])
async def test_a_307_does_not_resend_a_secret_body_to_another_origin(
    server: Any, other: Any, status: int
) -> None:
    # The body holds the value of a secret the request carries (here: its header's).
    config = polling_table(
        to(server, url(other, "/echo"), status),
        method="POST",
        body=f'{{"key": "{SECRET}"}}',
        headers=(("X-Api-Key", "{{ API_KEY }}"),),
    )
    async with RunningSource(config, env=ENV) as src:
        await src.sleeping_after(1)
    (arrived,) = seen_by(other)
    # Sent on without the body that holds the secret (main's rule for 307/308).
    assert SECRET.encode() not in arrived.body
    assert SECRET not in repr(arrived.headers)


async def test_a_303_after_a_post_is_a_get_without_the_body(server: Any, other: Any) -> None:
    config = polling_table(to(server, url(other, "/echo"), 303), method="POST", body="x=1")
    async with RunningSource(config) as src:
        await src.sleeping_after(1)
    (arrived,) = seen_by(other)
    assert arrived.method == "GET" and arrived.body == b""


async def test_test_output_shows_the_redirect_and_what_stayed_behind(
    server: Any, other: Any
) -> None:
    config = polling_table(to(server, url(other, "/echo")), headers=HEADERS)
    result = await probe(config, ENV)
    assert result.ok, result.error
    assert [w.split(" not sent")[0] for w in result.withheld] == [
        "X-Api-Key", "Private-Token", "Authorization",
    ]  # fmt: skip
    assert SECRET not in repr(result)


async def test_exactly_ten_redirects_are_followed(server: Any) -> None:
    async with RunningSource(polling_table(url(server, "/hops/10"))) as src:
        await src.sleeping_after(1)
    assert src.status.failures == 0, src.status.last_error
    assert src.rows() == [{"value": '{"hops":0}'}]
    async with RunningSource(polling_table(url(server, "/hops/11"))) as src:
        await src.sleeping_after(1)
    assert src.status.last_error == "HTTP request failed: too many redirects (more than 10)"
