"""No piece of a secret leaks through a cut text or a URL's userinfo (issue 8, item 3).

Error-body excerpts are masked before they are cut, and a secret split by a cut (the
200-character excerpt, the 1,024-byte head read, a decoder message cut to 500 characters)
loses its visible start too. A password in an endpoint's userinfo is a secret: masked in
``test`` output, ``validate`` messages, status and logs. Every output is searched for the
secret and for every 8-character piece of it. Real servers on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner

from arroyo_lite.cli import main
from arroyo_lite.errors import ValidationErrors
from arroyo_lite.secrets import Secrets, redact_url, url_password
from arroyo_lite.sql import compile_sql
from tests.support.http_app import wait_until
from tests.support.polling import RunningSource, polling_table

pytestmark = pytest.mark.timeout(60)

SECRET = "Zq8-very-secret-token-9xK2"


def pieces(secret: str, size: int = 8) -> list[str]:
    return [secret[i : i + size] for i in range(len(secret) - size + 1)]


def assert_no_piece(text: str, secret: str = SECRET) -> None:
    leaked = [p for p in pieces(secret) if p in text]
    assert not leaked, f"secret pieces {leaked} in {text!r}"


@pytest.mark.parametrize("at", [150, 190, 193, 197, 199, 210])
def test_a_secret_cut_by_the_excerpt_limit_is_masked(at: int) -> None:
    secrets = Secrets.of([SECRET])
    text = "x" * at + SECRET + " tail"
    shown = secrets.mask_and_cut(text, 200)
    assert len(shown) <= 200
    assert_no_piece(shown)
    assert not any(shown.removesuffix("...").endswith(SECRET[:k]) for k in range(1, 27))


def test_a_cut_decoder_message_loses_the_start_of_a_secret_when_masked() -> None:
    from arroyo_lite.formats.result import bounded

    message = bounded("virtual column failed: " + "y" * 470 + SECRET)
    assert message.endswith(SECRET[:4] + "...")  # what the decoder hands over, unmasked
    masked = Secrets.of([SECRET]).mask(message)
    assert masked.endswith("y...")


def _app(body: bytes) -> web.Application:
    async def fail(request: web.Request) -> web.Response:
        return web.Response(status=500, body=body)

    app = web.Application()
    app.router.add_get("/fail", fail)
    return app


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(("e" * 185 + SECRET).encode(), id="split by the 200-character cut"),
        pytest.param((" " * 1014 + SECRET).encode(), id="split by the 1024-byte head read"),
        pytest.param(("a b " * 40 + SECRET + " z").encode(), id="after whitespace is folded"),
    ],
)
async def test_error_body_excerpts_never_show_a_piece_of_a_secret(
    body: bytes, aiohttp_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = await aiohttp_server(_app(body))
    config = polling_table(
        str(server.make_url("/fail")), headers=(("X-Api-Key", "{{ KEY }}"),)
    )
    with caplog.at_level(logging.DEBUG):
        async with RunningSource(config, env={"KEY": SECRET}) as src:
            await wait_until(lambda: src.status.failures >= 1, what="a failed poll")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "(body: " in logged
    assert_no_piece(logged)
    assert_no_piece(str(src.status))


def test_url_password_helpers() -> None:
    assert url_password("http://user:pa55@host:8/x") == "pa55"
    assert url_password("http://user@host/") is None and url_password("http://host/") is None
    assert redact_url("https://me:pa55@host/p?q=1") == "https://me:****@host/p?q=1"


async def test_userinfo_password_is_masked_in_test_output(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    async def ok(request: web.Request) -> web.Response:
        return web.Response(status=401, text=f"denied for {request.headers.get('Authorization')}")

    app = web.Application()
    app.router.add_get("/x", ok)
    server = await aiohttp_server(app)
    endpoint = f"http://reader:{SECRET}@127.0.0.1:{server.port}/x"
    path = tmp_path / "t.sql"
    path.write_text(
        f"CREATE TABLE t (value TEXT) WITH (connector = 'polling_http', "
        f"endpoint = '{endpoint}', format = 'raw_string');"
    )
    result = await asyncio.to_thread(CliRunner().invoke, main, ["test", str(path)])
    assert f"GET http://reader:****@127.0.0.1:{server.port}/x" in result.output
    assert "401" in result.output
    assert_no_piece(result.output)


def test_userinfo_password_is_masked_in_validate_messages() -> None:
    sql = (
        "CREATE TABLE t (value TEXT) WITH (connector = 'polling_http', "
        f"endpoint = 'http://reader:{SECRET}@127.0.0.1:9/x y', format = 'raw_string');"
    )
    with pytest.raises(ValidationErrors) as info:
        compile_sql(sql, env={})
    [error] = info.value.errors
    assert "http://reader:****@127.0.0.1:9/x y" in error.message
    assert_no_piece(error.message)
