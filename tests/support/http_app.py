"""A real aiohttp application for tests of HTTP sources (anyone may reuse it).

``make_app()`` returns an :class:`aiohttp.web.Application`; serve it with pytest-aiohttp's
``aiohttp_server`` fixture (127.0.0.1, port 0). ``app[STATE]`` is an :class:`AppState` that
counts hits per path, remembers every request, and lets a test script what comes next.

Routes (all GET/POST/PUT/PATCH unless noted):

==============================  ===========================================================
``/counter``                    ``{"n": <hit number>}`` -- a different body every time
``/fixed``                      the same JSON object every time
``/sequence``                   the bodies in ``state.sequence``, one per hit, then the last
``/array?n=3``                  a JSON array of ``n`` objects ``{"id": i, "name": "item-i"}``
``/ndjson?n=3``                 ``n`` NDJSON lines of the same objects
``/fail?times=2&status=500``    ``status`` for the first ``times`` hits, then ``/counter``'s body
``/status/{code}``              that status, body ``status``; ``?retry_after=`` sets a Retry-After
                                header, ``?echo=1`` makes the body the request's headers as JSON
``/sleep?seconds=30``           answers after sleeping (to run past a client timeout)
``/big?size=N&length=1``        ``N`` bytes of JSON-string padding; ``length=0`` sends it chunked
                                without a Content-Length
``/chunked?n=5``                a JSON array written in ``n`` separate chunks (no length)
``/gzip?n=3``                   ``/array``'s body gzip-compressed (Content-Encoding: gzip)
``/gzip-big?size=N``            ``N`` bytes (decompressed) gzip-compressed, Content-Length of the
                                compressed form; ``&random=1``: random (incompressible) bytes
``/gzip-corrupt``               ``Content-Encoding: gzip`` on bytes that do not decompress
``/invalid``                    a body that is not JSON
``/wrong-types``                ``{"id": "not a number", "name": 5}``
``/mixed``                      NDJSON: good, bad (``id`` not a number), good lines
``/echo``                       ``{"method", "path", "headers", "body", "query"}`` of the request
``/toggle``                     ``state.toggle_status``; if 200, the body ``{"n": 1}``
``/gate``                       waits until ``state.gate`` is set, then ``/counter``'s body
==============================  ===========================================================

:func:`wait_until` is the bounded wait the tests use instead of sleeps.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    #: The decoded query parameters.
    query: dict[str, str] = field(default_factory=dict)


@dataclass
class AppState:
    """What the app has seen, and what tests can script."""

    hits: Counter[str] = field(default_factory=Counter)
    requests: list[SeenRequest] = field(default_factory=list)
    #: Bodies ``/sequence`` returns, one per hit; the last one repeats.
    sequence: list[bytes] = field(default_factory=lambda: [b'{"n": 0}'])
    #: Status ``/toggle`` answers with.
    toggle_status: int = 200
    #: ``/gate`` answers only while this is set (it starts set).
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.gate.set()

    def count(self, path: str) -> int:
        return self.hits[path]


STATE = web.AppKey("state", AppState)


def _objects(n: int) -> list[dict[str, object]]:
    return [{"id": i, "name": f"item-{i}"} for i in range(n)]


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@web.middleware
async def _record(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    state = request.app[STATE]
    body = await request.read()
    state.hits[request.path] += 1
    state.requests.append(
        SeenRequest(
            request.method,
            request.path,
            dict(request.headers),
            body,
            time.monotonic(),
            dict(request.query),
        )
    )
    return await handler(request)


def _hit(request: web.Request) -> int:
    return request.app[STATE].hits[request.path]


async def counter(request: web.Request) -> web.Response:
    return web.Response(body=_json({"n": _hit(request)}), content_type="application/json")


async def fixed(request: web.Request) -> web.Response:
    return web.Response(body=_json({"n": 42, "name": "fixed"}), content_type="application/json")


async def sequence(request: web.Request) -> web.Response:
    bodies = request.app[STATE].sequence
    body = bodies[min(_hit(request), len(bodies)) - 1]
    return web.Response(body=body, content_type="application/json")


async def array(request: web.Request) -> web.Response:
    n = int(request.query.get("n", "3"))
    return web.Response(body=_json(_objects(n)), content_type="application/json")


async def ndjson(request: web.Request) -> web.Response:
    n = int(request.query.get("n", "3"))
    body = b"".join(_json(o) + b"\n" for o in _objects(n))
    return web.Response(body=body, content_type="application/x-ndjson")


async def fail(request: web.Request) -> web.Response:
    times = int(request.query.get("times", "2"))
    status = int(request.query.get("status", "500"))
    if _hit(request) <= times:
        return web.Response(status=status, text=f"failure {_hit(request)}")
    return web.Response(body=_json({"n": _hit(request)}), content_type="application/json")


async def status(request: web.Request) -> web.Response:
    headers = {}
    if "retry_after" in request.query:
        headers["Retry-After"] = request.query["retry_after"]
    text = "status"
    if "echo" in request.query:
        # Reflect the request headers into the error body (as some APIs do with tokens).
        text = json.dumps(dict(request.headers))
    return web.Response(status=int(request.match_info["code"]), headers=headers, text=text)


async def sleep(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("seconds", "30")))
    return web.Response(body=_json({"n": 1}), content_type="application/json")


async def big(request: web.Request) -> web.StreamResponse:
    size = int(request.query["size"])
    # A JSON string of exactly `size` bytes: '"' + padding + '"'.
    body = b'"' + b"x" * max(size - 2, 0) + b'"'
    if request.query.get("length", "1") == "1":
        return web.Response(body=body, content_type="application/json")
    response = web.StreamResponse()
    response.content_type = "application/json"
    response.enable_chunked_encoding()
    await response.prepare(request)
    for start in range(0, len(body), 64 * 1024):
        await response.write(body[start : start + 64 * 1024])
    await response.write_eof()
    return response


async def chunked(request: web.Request) -> web.StreamResponse:
    n = int(request.query.get("n", "5"))
    body = _json(_objects(n))
    response = web.StreamResponse()
    response.content_type = "application/json"
    response.enable_chunked_encoding()
    await response.prepare(request)
    step = max(1, len(body) // n)
    for start in range(0, len(body), step):
        await response.write(body[start : start + step])
    await response.write_eof()
    return response


async def gzipped(request: web.Request) -> web.Response:
    n = int(request.query.get("n", "3"))
    return web.Response(
        body=gzip.compress(_json(_objects(n))),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )


async def gzip_big(request: web.Request) -> web.Response:
    size = int(request.query["size"])
    body = b'"' + b"x" * max(size - 2, 0) + b'"'
    if request.query.get("random") == "1":
        # Incompressible: the compressed form (and its Content-Length) is *larger* than N.
        body = random.Random(size).randbytes(size)
    return web.Response(
        body=gzip.compress(body),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )


async def gzip_corrupt(request: web.Request) -> web.Response:
    return web.Response(
        body=b"\x1f\x8b\x08\x00 not really gzip", headers={"Content-Encoding": "gzip"}
    )


async def invalid(request: web.Request) -> web.Response:
    return web.Response(body=b'{"id": 1, "name": ', content_type="application/json")


async def wrong_types(request: web.Request) -> web.Response:
    return web.Response(body=_json({"id": "not a number", "name": 5}))


async def mixed(request: web.Request) -> web.Response:
    lines = [_json({"id": 1, "name": "a"}), _json({"id": "x", "name": "b"}), _json({"id": 3})]
    return web.Response(body=b"\n".join(lines) + b"\n", content_type="application/x-ndjson")


async def echo(request: web.Request) -> web.Response:
    seen = request.app[STATE].requests[-1]
    return web.json_response(
        {
            "method": request.method,
            "path": request.path,
            "headers": dict(request.headers),
            "body": seen.body.decode("utf-8", "replace"),
            "query": dict(request.query),
        }
    )


async def toggle(request: web.Request) -> web.Response:
    code = request.app[STATE].toggle_status
    if code != 200:
        return web.Response(status=code, text="toggled")
    return web.Response(body=_json({"n": 1}), content_type="application/json")


async def gate(request: web.Request) -> web.Response:
    await request.app[STATE].gate.wait()
    return web.Response(body=_json({"n": _hit(request)}), content_type="application/json")


async def redirect(request: web.Request) -> web.Response:
    """``/redirect?to=URL&status=302``: a redirect to ``to`` (any origin) with that status."""
    code = int(request.query.get("status", "302"))
    return web.Response(status=code, headers={"Location": request.query["to"]})


async def hops(request: web.Request) -> web.Response:
    """``/hops/N``: ``N`` more redirects (same origin) before the answer ``{"hops": N}``."""
    left = int(request.match_info["n"])
    if left == 0:
        return web.Response(body=_json({"hops": 0}), content_type="application/json")
    return web.Response(status=302, headers={"Location": f"/hops/{left - 1}"})


async def feed(request: web.Request) -> web.Response:
    """``/feed?after=K``: the next two event ids after ``K`` (ids 1..10), and ``next``, the
    last id given (a cursor API: send it back as ``after``)."""
    after = int(request.query.get("after") or 0)
    ids = [i for i in range(after + 1, after + 3) if i <= 10]
    body = {"ids": ids, "next": ids[-1] if ids else after}
    return web.Response(
        body=_json(body), content_type="application/json", headers={"X-Next": str(body["next"])}
    )


async def pages(request: web.Request) -> web.Response:
    """``/pages/{kind}?n=N&per=K``: N pages of K records (``{"id": ...}``) in the shape of
    pagination ``kind``: ``link`` (a top-level array, ``Link: <...>; rel="next"``), ``json``
    (``{"page", "items", "next": URL|null}``), ``cursor`` (``{"page", "data",
    "next_cursor", "has_more"}``, Stripe-like), ``offset`` (``?offset&limit`` ->
    ``{"page", "items", "total"}``), ``number`` (``?page=`` -> a top-level array, empty
    after the last page). ``fail=P`` answers 500 for page P (``fail_times`` times, default
    always). ``n=0`` means endless."""
    kind = request.match_info["kind"]
    q = request.query
    n, per = int(q.get("n", "3")), int(q.get("per", "2"))
    if kind == "cursor":
        page = int(q.get("cursor", "c1")[1:])
    elif kind == "offset":
        page = int(q.get("offset", "0")) // int(q.get("limit", str(per))) + 1
        per = int(q.get("limit", str(per)))
    else:
        page = int(q.get("page", "1"))
    state = request.app[STATE]
    if q.get("fail") == str(page):
        key = f"fail:{request.path}:{page}"
        state.hits[key] += 1
        if state.hits[key] <= int(q.get("fail_times", "1000000")):
            return web.Response(status=500, text="page failed")
    last = n != 0 and page >= n
    items = [] if n and page > n else [{"id": (page - 1) * per + i} for i in range(per)]
    more = not last

    def link(to: int) -> str:
        return str(request.url.update_query({"page": str(to)}))

    if kind == "link":
        headers = {"Link": f'<{link(page + 1)}>; rel="next"'} if more else {}
        if page > 1:
            headers["Link"] = ", ".join(
                [*([headers["Link"]] if more else []), f'<{link(1)}>; rel="first"']
            )
        return web.Response(body=_json(items), content_type="application/json", headers=headers)
    if kind == "json":
        body: object = {"page": page, "items": items, "next": link(page + 1) if more else None}
    elif kind == "cursor":
        body = {"page": page, "data": items, "next_cursor": f"c{page + 1}", "has_more": more}
    elif kind == "offset":
        body = {"page": page, "items": items, "total": n * per if n else None}
    else:
        body = items
    return web.Response(body=_json(body), content_type="application/json")


async def conditional(request: web.Request) -> web.Response:
    """``/conditional``: a JSON body with an ``ETag`` and a ``Last-Modified``; 304 (no body)
    when ``If-None-Match`` names the current tag (RFC 9110 13.1.2) or, without it, when
    ``If-Modified-Since`` is not older. ``app[STATE].sequence`` bodies change the tag."""
    state = request.app[STATE]
    body = state.sequence[-1]
    tag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
    modified = "Wed, 21 Oct 2026 07:28:00 GMT"
    headers = {"ETag": tag, "Last-Modified": modified}
    match = request.headers.get("If-None-Match")
    if match is not None:
        if tag in [t.strip() for t in match.split(",")] or match.strip() == "*":
            return web.Response(status=304, headers=headers)
    elif request.headers.get("If-Modified-Since") == modified:
        return web.Response(status=304, headers=headers)
    return web.Response(body=body, content_type="application/json", headers=headers)


def make_app() -> web.Application:
    """A fresh app with its own :class:`AppState` under ``app[STATE]``."""
    app = web.Application(middlewares=[_record])
    app[STATE] = AppState()
    routes = {
        "/counter": counter,
        "/fixed": fixed,
        "/sequence": sequence,
        "/array": array,
        "/ndjson": ndjson,
        "/fail": fail,
        "/status/{code}": status,
        "/sleep": sleep,
        "/big": big,
        "/chunked": chunked,
        "/gzip": gzipped,
        "/gzip-big": gzip_big,
        "/gzip-corrupt": gzip_corrupt,
        "/invalid": invalid,
        "/wrong-types": wrong_types,
        "/mixed": mixed,
        "/echo": echo,
        "/toggle": toggle,
        "/gate": gate,
        "/redirect": redirect,
        "/hops/{n}": hops,
        "/feed": feed,
        "/pages/{kind}": pages,
        "/conditional": conditional,
    }
    for path, handler in routes.items():
        app.router.add_route("*", path, handler)
    return app


async def wait_until(
    condition: Callable[[], bool], *, within: float = 20.0, what: str = "condition"
) -> None:
    """Poll ``condition`` every few milliseconds until true; fail after ``within`` seconds.

    The deadline is a safety net for a broken build, not a speed assumption: passing tests
    return as soon as the condition holds.
    """
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within} s waiting for {what}")
        await asyncio.sleep(0.005)


def url(server: Any, path: str) -> str:
    """Absolute URL of ``path`` on a running aiohttp test server."""
    return str(server.make_url(path))
