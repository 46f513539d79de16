"""The lean HTTP/1.1 client of plain polls (issue 16 item 1, connectors/polling_http/h1.py).

Every test sends real requests to a real server on 127.0.0.1: an aiohttp app, or a raw asyncio
server where a test needs bytes aiohttp would not send (a body ended by closing, a connection
closed while idle or in the middle of a body). Where both paths apply, the lean answer must be
the one aiohttp gives for the same request.
"""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from arroyo_lite.connectors.polling_http import h1
from arroyo_lite.connectors.polling_http.client import shared_session
from arroyo_lite.connectors.polling_http.http import (
    HttpError,
    HttpRequest,
    TransientHttpError,
    fetch,
)

pytestmark = pytest.mark.timeout(60)

BODY = b'{"id": 1, "status": "ok"}'
SEEN = web.AppKey("seen", list[tuple[int, dict[str, str]]])


def get(
    url: str, *, headers: tuple[tuple[str, str], ...] = (), limit: int = 1 << 20
) -> HttpRequest:
    return HttpRequest("GET", url, headers, None, 5.0, limit)


@pytest.fixture
async def app_server() -> AsyncIterator[TestServer]:
    """An aiohttp app that records each request's connection (its client port) and headers."""
    seen: list[tuple[int, dict[str, str]]] = []

    async def ok(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        seen.append((peer[1] if peer else 0, dict(request.headers)))
        return web.Response(body=BODY, content_type="application/json")

    async def close(request: web.Request) -> web.Response:
        return web.Response(body=BODY, headers={"Connection": "close"})

    async def chunked(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse()
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for part in (b'{"id": ', b"1, ", b'"status": "ok"}'):
            await resp.write(part)
        await resp.write_eof()
        return resp

    async def encoded(request: web.Request) -> web.Response:
        kind = request.match_info["kind"]
        body = gzip.compress(BODY) if kind == "gzip" else zlib.compress(BODY)
        return web.Response(body=body, headers={"Content-Encoding": kind})

    async def status(request: web.Request) -> web.Response:
        code = int(request.match_info["code"])
        headers = {"Retry-After": "7"} if code == 503 else {}
        return web.Response(status=code, text=f"error {code} for Bearer s3cr3t", headers=headers)

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound("/ok")

    async def big(request: web.Request) -> web.Response:
        return web.Response(body=b"x" * 1000)

    app = web.Application()
    app.router.add_get("/ok", ok)
    app.router.add_get("/close", close)
    app.router.add_get("/chunked", chunked)
    app.router.add_get("/enc/{kind}", encoded)
    app.router.add_get("/status/{code}", status)
    app.router.add_get("/redirect", redirect)
    app.router.add_get("/big", big)
    app[SEEN] = seen
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


def at(server: TestServer, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


async def both(request: HttpRequest) -> tuple[Any, Any]:
    """``request`` through the lean path (shared session) and through aiohttp (a plain one):
    each the response or the error raised."""
    results: list[Any] = []
    async with shared_session() as shared, aiohttp.ClientSession() as plain:
        for session in (shared, plain):
            try:
                results.append(await fetch(session, request))
            except (HttpError, TransientHttpError) as e:
                results.append(e)
    return results[0], results[1]


async def test_plain_gets_are_eligible_and_others_are_not() -> None:
    assert get("http://127.0.0.1:1/x?a=1")._lean_head is not None
    assert get("https://127.0.0.1:1/x")._lean_head is None
    assert HttpRequest("POST", "http://127.0.0.1:1/", (), b"{}", 5.0, 10)._lean_head is None
    assert get("http://127.0.0.1:1/", headers=(("X-A", "a\r\nb"),))._lean_head is None
    head = get("http://127.0.0.1:8080/p?q=1 2", headers=(("X-Key", "v"),))._lean_head
    assert head is not None
    assert head.startswith(b"GET /p?q=1+2 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n")
    assert b"\r\nX-Key: v\r\n" in head and head.endswith(b"\r\n\r\n")


async def test_same_answer_as_aiohttp_and_the_same_request_headers(app_server: TestServer) -> None:
    lean, plain = await both(get(at(app_server, "/ok"), headers=(("X-Api-Key", "k"),)))
    assert (lean.status, lean.reason, lean.body) == (plain.status, plain.reason, plain.body)
    assert lean.url == plain.url
    assert lean.headers["Content-Type"] == plain.headers["Content-Type"] == "application/json"
    (_, sent_lean), (_, sent_plain) = app_server.app[SEEN]
    # Everything aiohttp sends is sent alike (Host, Accept, User-Agent, ours), except that
    # the lean path offers only the encodings it decodes itself (aiohttp adds br with brotli).
    assert sent_lean.pop("Accept-Encoding") == "gzip, deflate"
    sent_plain.pop("Accept-Encoding")
    assert sent_lean == sent_plain


async def test_connections_are_kept_alive_and_reused(app_server: TestServer) -> None:
    async with shared_session() as session:
        for _ in range(20):
            response = await fetch(session, get(at(app_server, "/ok")))
            assert response.body == BODY
    ports = {port for port, _ in app_server.app[SEEN]}
    assert len(app_server.app[SEEN]) == 20
    assert len(ports) == 1


async def test_connection_close_is_honoured(app_server: TestServer) -> None:
    async with shared_session() as session:
        for _ in range(3):
            await fetch(session, get(at(app_server, "/close")))
        response = await fetch(session, get(at(app_server, "/ok")))
    assert response.body == BODY


@pytest.mark.parametrize("path", ["/chunked", "/enc/gzip", "/enc/deflate"])
async def test_chunked_and_compressed_bodies(app_server: TestServer, path: str) -> None:
    lean, plain = await both(get(at(app_server, path)))
    assert lean.body == plain.body == BODY


async def test_redirects_are_followed_as_with_aiohttp(app_server: TestServer) -> None:
    lean, plain = await both(get(at(app_server, "/redirect")))
    assert lean.body == plain.body == BODY
    assert lean.url == plain.url == at(app_server, "/ok")


@pytest.mark.parametrize("code", [404, 401, 503, 500])
async def test_error_statuses_raise_the_same_errors(app_server: TestServer, code: int) -> None:
    secret = "s3cr3t"
    request = HttpRequest(
        "GET", at(app_server, f"/status/{code}"), (), None, 5.0, 1 << 20,
        secrets=h1_secrets(secret),
    )  # fmt: skip
    lean, plain = await both(request)
    assert type(lean) is type(plain)
    assert (lean.message, lean.status_code, lean.body_excerpt) == (
        plain.message, plain.status_code, plain.body_excerpt,
    )  # fmt: skip
    assert secret not in (lean.body_excerpt or "")
    if code == 503:
        assert lean.retry_after == plain.retry_after == 7.0


def h1_secrets(value: str) -> Any:
    from arroyo_lite.secrets import Secrets

    return Secrets.of([value])


async def test_bodies_over_the_limit_are_refused(app_server: TestServer) -> None:
    lean, plain = await both(get(at(app_server, "/big"), limit=999))
    assert isinstance(lean, HttpError) and isinstance(plain, HttpError)
    assert lean.message == plain.message
    assert "(1000 > 999)" in lean.message
    ok, _ = await both(get(at(app_server, "/big"), limit=1000))
    assert ok.body == b"x" * 1000
    lean, plain = await both(get(at(app_server, "/chunked"), limit=10))
    assert (
        lean.message
        == plain.message
        == ("HTTP request failed: response body exceeds max length 10")
    )


async def test_a_long_error_answer_is_cut_short(app_server: TestServer) -> None:
    """A 404 whose body is over the body limit: the error (with its excerpt) comes without
    reading the rest, and the next poll works (on another connection)."""
    request = get(at(app_server, "/status/404"), limit=5)
    lean, plain = await both(request)
    assert isinstance(lean, HttpError) and lean.status_code == 404
    assert (lean.message, lean.body_excerpt) == (plain.message, plain.body_excerpt)
    async with shared_session() as session:
        with pytest.raises(HttpError):
            await fetch(session, request)
        assert (await fetch(session, get(at(app_server, "/ok")))).body == BODY


async def test_connection_refused_is_transient() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    lean, plain = await both(get(f"http://127.0.0.1:{port}/"))
    assert isinstance(lean, TransientHttpError)
    assert lean.message == plain.message
    assert lean.message.startswith(f"HTTP request failed: error connecting to 127.0.0.1:{port}")


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def raw_server(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def answering(raw: bytes) -> tuple[asyncio.Server, str]:
    """A raw server that reads each request's head, writes ``raw`` and closes the connection
    (a client that stops reading a bomb may reset it first: that is its answer too)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        try:
            writer.write(raw)
            await writer.drain()
        except ConnectionError:
            pass
        writer.close()

    return await raw_server(handler)


async def transient_failure(raw: bytes) -> TransientHttpError:
    """The error of a GET answered with ``raw`` (it must fail as transient)."""
    server, url = await answering(raw)
    async with server, shared_session() as session:
        with pytest.raises(TransientHttpError) as caught:
            await fetch(session, get(url))
    return caught.value


async def test_a_body_ended_by_closing_the_connection() -> None:
    server, url = await answering(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + BODY)
    async with server, shared_session() as session:
        response = await fetch(session, get(url))
    assert response.body == BODY


async def test_a_connection_closed_while_idle_is_replaced_once() -> None:
    """The server answers with keep-alive, then closes the connection: the next poll must
    not fail (GET is idempotent: sent again on a new connection)."""
    connections = 0

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(BODY), BODY))
        await writer.drain()
        writer.close()

    server, url = await raw_server(handler)
    async with server, shared_session() as session:
        for _ in range(3):
            assert (await fetch(session, get(url))).body == BODY
    assert connections == 3


async def test_a_disconnect_in_the_middle_of_a_body_is_transient() -> None:
    error = await transient_failure(b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"id"')
    assert error.message == "HTTP request failed: ServerDisconnectedError: Server disconnected"


async def test_garbage_is_a_transient_bad_response() -> None:
    error = await transient_failure(b"NOT HTTP AT ALL\r\n\r\n")
    assert error.message.startswith("HTTP request failed: ClientResponseError: ")


@pytest.mark.parametrize("head", [b"X-Bomb: " + b"h" * 9000, b"X-A: a\r\n" * 20_000])
async def test_header_bombs_fail_the_request(head: bytes) -> None:
    error = await transient_failure(b"HTTP/1.1 200 OK\r\n" + head + b"\r\n\r\n")
    assert error.message.startswith("HTTP request failed: ClientResponseError: ")


async def test_the_timeout_bounds_the_whole_exchange() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        await asyncio.sleep(30)

    server, url = await raw_server(handler)
    request = HttpRequest("GET", url, (), None, 0.2, 1 << 20)
    async with server, shared_session() as session:
        with pytest.raises(TransientHttpError) as caught:
            await fetch(session, request)
    assert caught.value.message == "HTTP request failed: operation timed out after 200 ms"


async def test_the_environment_switch_sends_through_aiohttp(
    app_server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(h1.HTTP_ENV, "aiohttp")
    assert not h1.enabled()
    async with shared_session() as session:
        response = await fetch(session, get(at(app_server, "/ok")))
        assert session.lean is None  # no lean client on this session
        assert session.has_aiohttp_session  # the request went through aiohttp
    assert response.body == BODY
