"""A secret stays with its origin across redirects (issue 8, item 1).

Two real servers on 127.0.0.1 (two ports: two origins). The first redirects to the second;
the second records what it received. A header whose value holds a secret (any name, not only
``Authorization``) and a 307 body holding one are not sent to the other origin; a redirect
within the origin keeps them; ``arroyo-lite test`` says what was withheld.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner

from arroyo_lite.cli import main
from tests.support.polling import RunningSource, polling_table

pytestmark = pytest.mark.timeout(60)

TOKEN = "tok-Secret-0123456789"
KEY = "key-Secret-9876543210"
ENV = {"TOKEN": TOKEN, "KEY": KEY}
HEADERS = (
    ("Authorization", "Bearer {{ TOKEN }}"),
    ("X-Api-Key", "{{ KEY }}"),
    ("X-Plain", "visible"),
)


def pieces(secret: str) -> list[str]:
    return [secret[i : i + 8] for i in range(len(secret) - 7)]


class Landing:
    """The other origin: records every request it gets."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, dict[str, str], bytes]] = []

    def app(self) -> web.Application:
        async def land(request: web.Request) -> web.Response:
            self.seen.append((request.method, dict(request.headers), await request.read()))
            return web.Response(text="landed")

        app = web.Application()
        app.router.add_route("*", "/land", land)
        return app

    def leaked(self) -> list[str]:
        text = repr(self.seen)
        return [p for secret in (TOKEN, KEY) for p in pieces(secret) if p in text]


def origin_app(landing_url: str) -> web.Application:
    async def away(request: web.Request) -> web.Response:
        status = int(request.query.get("status", "302"))
        return web.Response(status=status, headers={"Location": landing_url})

    async def here(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": "/echo"})

    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=request.headers.get("X-Api-Key", "none"))

    app = web.Application()
    app.router.add_route("*", "/away", away)
    app.router.add_get("/here", here)
    app.router.add_get("/echo", echo)
    return app


async def servers(aiohttp_server: Any) -> tuple[Any, Landing]:
    landing = Landing()
    other = await aiohttp_server(landing.app())
    origin = await aiohttp_server(origin_app(str(other.make_url("/land"))))
    return origin, landing


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_secret_headers_are_not_sent_to_another_origin(
    aiohttp_server: Any, status: int
) -> None:
    origin, landing = await servers(aiohttp_server)
    config = polling_table(str(origin.make_url(f"/away?status={status}")), headers=HEADERS)
    async with RunningSource(config, env=ENV) as src:
        await src.sleeping_after(1)
    assert src.rows() == [{"value": "landed"}]
    [(_, headers, _)] = landing.seen
    assert headers["X-Plain"] == "visible"
    assert "X-Api-Key" not in headers and "Authorization" not in headers
    assert landing.leaked() == []


async def test_a_307_body_holding_a_secret_is_not_resent_to_another_origin(
    aiohttp_server: Any,
) -> None:
    origin, landing = await servers(aiohttp_server)
    config = polling_table(
        str(origin.make_url("/away?status=307")),
        headers=HEADERS,
        method="POST",
        body=f'{{"key": "{KEY}"}}',
    )
    async with RunningSource(config, env=ENV) as src:
        await src.sleeping_after(1)
    [(method, _, body)] = landing.seen
    assert method == "POST" and body == b""
    assert landing.leaked() == []


async def test_a_redirect_within_the_origin_keeps_the_headers(aiohttp_server: Any) -> None:
    origin, _ = await servers(aiohttp_server)
    config = polling_table(str(origin.make_url("/here")), headers=HEADERS)
    async with RunningSource(config, env=ENV) as src:
        await src.sleeping_after(1)
    assert src.rows() == [{"value": KEY}]


async def test_arroyo_lite_test_shows_what_a_redirect_withheld(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    origin, landing = await servers(aiohttp_server)
    path = tmp_path / "t.sql"
    path.write_text(
        "CREATE TABLE t (value TEXT) WITH (connector = 'polling_http', "
        f"endpoint = '{origin.make_url('/away')}', format = 'raw_string', "
        "headers = 'Authorization: Bearer {{ TOKEN }}, X-Api-Key: {{ KEY }}, X-Plain: visible');"
    )
    result = await asyncio.to_thread(CliRunner().invoke, main, ["test", str(path)], env=ENV)
    other = str(landing_origin(landing, origin))
    assert result.exit_code == 0, result.output
    assert f"(redirect: Authorization not sent to {other} (another origin))" in result.output
    assert f"(redirect: X-Api-Key not sent to {other} (another origin))" in result.output
    assert "X-Plain not sent" not in result.output
    assert not [p for s in (TOKEN, KEY) for p in pieces(s) if p in result.output]


def landing_origin(landing: Landing, origin: Any) -> str:
    [(_, headers, _)] = landing.seen
    return f"http://{headers['Host']}"
