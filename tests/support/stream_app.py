"""A real aiohttp app that pushes: Server-Sent Events and WebSocket routes for source tests.

Serve ``make_stream_app()`` with pytest-aiohttp's ``aiohttp_server`` (127.0.0.1, port 0);
``app[STREAM_STATE]`` is a :class:`StreamState` that records every connection and lets a test
release hanging streams.

SSE routes (``text/event-stream``; event ``i`` is ``id: i``, ``event: <type>``,
``data: {"n": i}``, and numbering resumes after the request's ``Last-Event-ID``):

=================================  ==========================================================
``/sse?n=5``                       ``n`` events, then hang until ``state.release`` is set;
                                   ``&close=1`` closes instead; ``&retry=MS`` sends ``retry:``;
                                   ``&types=a,b`` cycles event types; ``&comment=1`` sends a
                                   comment (keep-alive) before each event
``/sse/one``                       one event per connection, then closes (with ``retry: 1``)
``/sse/drop?after=3``              ``after`` events, half of the next, then a dropped socket
``/sse/flood?events=N``            ``N`` events of ~1 KB as fast as the client takes them;
                                   ``state.flood_sent`` counts bytes the server got rid of
``/sse/status/{code}``             that status (``Retry-After`` with ``?retry_after=``)
``/sse/fail?times=2``              ``503`` for the first ``times`` connections, then ``/sse``
``/sse/raw``                       ``state.raw_body`` verbatim, then closes
=================================  ==========================================================

WebSocket routes (messages are ``{"n": i}``; every text message received is recorded):

=================================  ==========================================================
``/ws?n=5``                        ``n`` text messages, then hang until ``state.release``;
                                   ``&close=1`` closes; ``&binary=1`` binary frames;
                                   ``&ping=1`` pings first and records the pong;
                                   ``&pad=K`` adds a ``pad`` string of ``K`` bytes
                                   (``state.ws_sent`` counts bytes sent)
``/ws/one``                        one message per connection, then a close frame
``/ws/subscribe``                  waits for text messages and answers each with
                                   ``{"sub": <message>}``
``/ws/bad``                        ``{"n": 0}``, ``not json``, ``{"n": 2}``, then hangs
``/ws/status/{code}``              refuses the handshake with that status
=================================  ==========================================================
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import WSMsgType, web


@dataclass
class StreamState:
    """What the routes remember; tests read it and set ``release`` to end hanging streams."""

    release: asyncio.Event = field(default_factory=asyncio.Event)
    #: (path, headers) of every request, in order.
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    connections: dict[str, int] = field(default_factory=dict)
    flood_sent: int = 0
    ws_sent: int = 0
    raw_body: bytes = b""
    #: Text messages received per WebSocket connection.
    ws_received: list[list[str]] = field(default_factory=list)
    pongs: int = 0

    def hit(self, request: web.Request) -> int:
        self.requests.append((request.path, dict(request.headers)))
        n = self.connections.get(request.path, 0) + 1
        self.connections[request.path] = n
        return n


STREAM_STATE = web.AppKey("stream_state", StreamState)


def _state(request: web.Request) -> StreamState:
    return request.app[STREAM_STATE]


def _first_id(request: web.Request) -> int:
    last = request.headers.get("Last-Event-ID", "")
    return int(last) + 1 if last.isdigit() else 0


def event_bytes(i: int, event: str = "message", data: bytes | None = None) -> bytes:
    body = data if data is not None else b'{"n": %d}' % i
    return b"id: %d\nevent: %s\ndata: %s\n\n" % (i, event.encode(), body)


async def _open_sse(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    return response


async def _sse(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    state.hit(request)
    q = request.query
    n = int(q.get("n", "5"))
    types = q.get("types", "message").split(",")
    response = await _open_sse(request)
    if "retry" in q:
        await response.write(b"retry: %s\n\n" % q["retry"].encode())
    start = _first_id(request)
    for i in range(start, start + n):
        if q.get("comment"):
            await response.write(b": keep-alive\n")
        await response.write(event_bytes(i, types[i % len(types)]))
    if not q.get("close"):
        await state.release.wait()
    return response


async def _sse_one(request: web.Request) -> web.StreamResponse:
    _state(request).hit(request)
    response = await _open_sse(request)
    await response.write(b"retry: 1\n" + event_bytes(_first_id(request)))
    return response


async def _sse_drop(request: web.Request) -> web.StreamResponse:
    _state(request).hit(request)
    after = int(request.query.get("after", "3"))
    response = await _open_sse(request)
    start = _first_id(request)
    for i in range(start, start + after):
        await response.write(event_bytes(i))
    await response.write(b'id: 999\ndata: {"n": 9')  # cut short: never dispatched
    assert request.transport is not None
    request.transport.abort()
    return response


async def _sse_flood(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    state.hit(request)
    total = int(request.query.get("events", "1000"))
    response = await _open_sse(request)
    pad = b"x" * 1000
    for i in range(total):
        chunk = event_bytes(i, data=b'{"n": %d, "pad": "%s"}' % (i, pad))
        await response.write(chunk)  # waits while the client does not read (drain)
        state.flood_sent += len(chunk)
    return response


async def _sse_status(request: web.Request) -> web.StreamResponse:
    _state(request).hit(request)
    headers = {}
    if "retry_after" in request.query:
        headers["Retry-After"] = request.query["retry_after"]
    return web.Response(status=int(request.match_info["code"]), text="nope", headers=headers)


async def _sse_fail(request: web.Request) -> web.StreamResponse:
    n = _state(request).hit(request)
    if n <= int(request.query.get("times", "2")):
        return web.Response(status=503, text="busy")
    response = await _open_sse(request)
    for i in range(_first_id(request), _first_id(request) + 3):
        await response.write(event_bytes(i))
    await _state(request).release.wait()
    return response


async def _sse_raw(request: web.Request) -> web.StreamResponse:
    state = _state(request)
    state.hit(request)
    response = await _open_sse(request)
    await response.write(state.raw_body)
    return response


async def _ws_open(request: web.Request, *, autoping: bool = True) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(autoping=autoping)
    await ws.prepare(request)
    return ws


async def _ws_drain(ws: web.WebSocketResponse, state: StreamState, received: list[str]) -> None:
    """Record text messages (and pongs) until the socket closes."""
    async for message in ws:
        if message.type is WSMsgType.TEXT:
            received.append(message.data)
        elif message.type is WSMsgType.PONG:
            state.pongs += 1


async def _ws(request: web.Request) -> web.WebSocketResponse:
    state = _state(request)
    state.hit(request)
    q = request.query
    ws = await _ws_open(request, autoping=not q.get("ping"))
    received: list[str] = []
    state.ws_received.append(received)
    reader = asyncio.ensure_future(_ws_drain(ws, state, received))
    if q.get("ping"):
        await ws.ping(b"are you there")
    pad = "x" * int(q.get("pad", "0"))
    for i in range(int(q.get("n", "5"))):
        text = f'{{"n": {i}, "pad": "{pad}"}}' if pad else f'{{"n": {i}}}'
        if q.get("binary"):
            await ws.send_bytes(text.encode())
        else:
            await ws.send_str(text)  # waits while the client does not read (drain)
        state.ws_sent += len(text)
    if not q.get("close"):
        await asyncio.wait(
            [reader, asyncio.ensure_future(state.release.wait())],
            return_when=asyncio.FIRST_COMPLETED,
        )
    await ws.close()
    reader.cancel()
    return ws


async def _ws_one(request: web.Request) -> web.WebSocketResponse:
    state = _state(request)
    n = state.hit(request)
    ws = await _ws_open(request)
    await ws.send_str(f'{{"n": {n - 1}}}')
    await ws.close()
    return ws


async def _ws_subscribe(request: web.Request) -> web.WebSocketResponse:
    import json

    state = _state(request)
    state.hit(request)
    ws = await _ws_open(request)
    received: list[str] = []
    state.ws_received.append(received)
    async for message in ws:
        if message.type is WSMsgType.TEXT:
            received.append(message.data)
            await ws.send_str(json.dumps({"sub": message.data}))
    return ws


async def _ws_bad(request: web.Request) -> web.WebSocketResponse:
    state = _state(request)
    state.hit(request)
    ws = await _ws_open(request)
    for text in ('{"n": 0}', "not json", '{"n": 2}'):
        await ws.send_str(text)
    await state.release.wait()
    await ws.close()
    return ws


async def _ws_status(request: web.Request) -> web.Response:
    _state(request).hit(request)
    return web.Response(status=int(request.match_info["code"]), text="no socket for you")


def make_stream_app() -> web.Application:
    app = web.Application()
    app[STREAM_STATE] = StreamState()
    app.router.add_get("/sse", _sse)
    app.router.add_get("/sse/one", _sse_one)
    app.router.add_get("/sse/drop", _sse_drop)
    app.router.add_get("/sse/flood", _sse_flood)
    app.router.add_get("/sse/status/{code}", _sse_status)
    app.router.add_get("/sse/fail", _sse_fail)
    app.router.add_get("/sse/raw", _sse_raw)
    app.router.add_get("/ws", _ws)
    app.router.add_get("/ws/one", _ws_one)
    app.router.add_get("/ws/subscribe", _ws_subscribe)
    app.router.add_get("/ws/bad", _ws_bad)
    app.router.add_get("/ws/status/{code}", _ws_status)

    async def release_all(app: web.Application) -> None:
        app[STREAM_STATE].release.set()  # let hanging streams end when the server stops

    app.on_shutdown.append(release_all)
    return app
