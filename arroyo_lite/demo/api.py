"""The embedded demo API: a small aiohttp app whose endpoints behave like real ones.

Endpoints (all on 127.0.0.1):

``GET /prices``
    A few stock symbols whose prices move on every request (a random walk). A JSON array of
    objects by default; ``?format=ndjson`` answers one object per line (what
    ``format = 'json', framing = 'newline'`` decodes into one row per symbol).
``GET /news``
    One JSON object (a headline) that changes only every ``news_every`` requests, so a table
    with ``emit_behavior = 'changed'`` gets a row only when the story changes.
``GET /weather``
    NDJSON readings per city, but every ``fail_every``-th request answers
    ``503 Service Unavailable`` with ``Retry-After: 1``: shows failure handling and backoff.
``GET /metrics``
    Prometheus-style text with request counters (for ``format = 'raw_string'``).
``GET /incidents``
    PagerDuty-style open incidents, paged, changing every poll (:mod:`.incidents`).
``GET /``
    A JSON index of the endpoints.

Push endpoints (SSE and WebSocket stand-ins for Wikimedia, Mastodon, Jetstream and firesky)
are in :mod:`arroyo_lite.demo.streams`; stand-ins for GitHub's issues, Stripe's charges and
USGS' event query in :mod:`arroyo_lite.demo.apis`; an OAuth2 token endpoint and a resource it
protects in :mod:`arroyo_lite.demo.oauth`.

Use :class:`DemoServer` to run it on a background thread (what ``arroyo-lite demo`` does), or
run it standalone: ``python -m arroyo_lite.demo.api --port 8080``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import errno
import random
import threading
from collections import Counter, deque
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from arroyo_lite.demo import DEFAULT_HOST, DEFAULT_PORT
from arroyo_lite.demo.apis import API_ENDPOINTS, add_api_routes
from arroyo_lite.demo.incidents import INCIDENT_ENDPOINTS, add_incident_routes
from arroyo_lite.demo.oauth import add_oauth_routes
from arroyo_lite.demo.streams import STREAM_ENDPOINTS, add_stream_routes

SYMBOLS = {"ACME": 120.0, "GLOBEX": 48.5, "INITECH": 15.25, "UMBRELLA": 310.0, "HOOLI": 72.0}
CITIES = {"Lisbon": 21.0, "Oslo": 4.0, "Nairobi": 24.0, "Denver": 12.0}
HEADLINES = (
    "ACME beats earnings expectations",
    "GLOBEX announces new CEO",
    "INITECH recalls TPS report covers",
    "UMBRELLA shares halted pending news",
    "HOOLI unveils compression breakthrough",
    "Markets close mixed after volatile session",
)


@dataclass
class DemoState:
    """Everything the demo endpoints remember between requests. One per app."""

    seed: int | None = None
    news_every: int = 4
    fail_every: int = 3
    rng: random.Random = field(init=False)
    prices: dict[str, float] = field(default_factory=lambda: dict(SYMBOLS))
    temperatures: dict[str, float] = field(default_factory=lambda: dict(CITIES))
    hits: Counter[str] = field(default_factory=Counter)
    #: The last bodies POSTed to /hooks (JSON values), oldest first.
    hooks: deque[object] = field(default_factory=lambda: deque(maxlen=HOOKS_KEPT))

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)


STATE = web.AppKey("demo_state", DemoState)
#: How many webhook bodies /hooks keeps.
HOOKS_KEPT = 1000


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json_lines(rows: list[dict[str, object]]) -> bytes:
    return b"".join(orjson.dumps(r) + b"\n" for r in rows)


async def _index(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "endpoints": {
                "/prices": "JSON array of {symbol, price, volume, ts}; ?format=ndjson for lines",
                "/news": "one headline object; changes every few requests",
                "/weather": "NDJSON city readings; fails with 503 now and then",
                "/metrics": "Prometheus text: request counters",
                "/hooks": "POST: a webhook receiver; GET: the last bodies it received",
                **STREAM_ENDPOINTS,
                **API_ENDPOINTS,
                **INCIDENT_ENDPOINTS,
            }
        }
    )


async def _prices(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.hits["/prices"] += 1
    ts = _now_iso()
    rows: list[dict[str, object]] = []
    for symbol, price in state.prices.items():
        # A small multiplicative random walk keeps prices positive and plausible.
        price = round(max(0.01, price * (1 + state.rng.gauss(0, 0.004))), 2)
        state.prices[symbol] = price
        rows.append(
            {"symbol": symbol, "price": price, "volume": state.rng.randint(1, 500), "ts": ts}
        )
    if request.query.get("format") == "ndjson":
        return web.Response(body=_json_lines(rows), content_type="application/x-ndjson")
    return web.Response(body=orjson.dumps(rows), content_type="application/json")


async def _news(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.hits["/news"] += 1
    # The story advances every `news_every` requests; in between the body is byte-identical.
    story = (state.hits["/news"] - 1) // max(1, state.news_every)
    body = {
        "id": story + 1,
        "headline": HEADLINES[story % len(HEADLINES)],
        "source": "demo-wire",
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def _weather(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.hits["/weather"] += 1
    if state.fail_every > 0 and state.hits["/weather"] % state.fail_every == 0:
        state.hits["/weather:503"] += 1
        return web.Response(
            status=503, text="weather station overloaded, try again", headers={"Retry-After": "1"}
        )
    ts = _now_iso()
    rows: list[dict[str, object]] = []
    for city, temp in state.temperatures.items():
        temp = round(temp + state.rng.uniform(-0.3, 0.3), 1)
        state.temperatures[city] = temp
        rows.append({"city": city, "temperature_c": temp, "observed": ts})
    return web.Response(body=_json_lines(rows), content_type="application/x-ndjson")


async def _metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.hits["/metrics"] += 1
    lines = ["# TYPE demo_requests_total counter"]
    lines += [
        f'demo_requests_total{{path="{path}"}} {count}'
        for path, count in sorted(state.hits.items())
    ]
    return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")


async def _receive_hook(request: web.Request) -> web.Response:
    """A webhook receiver (for a ``webhook`` sink): keeps each JSON body it is sent."""
    state = request.app[STATE]
    state.hits["/hooks"] += 1
    try:
        state.hooks.append(orjson.loads(await request.read()))
    except orjson.JSONDecodeError:
        return web.json_response({"error": "the body is not JSON"}, status=400)
    return web.json_response({"received": state.hits["/hooks"]})


async def _hooks(request: web.Request) -> web.Response:
    return web.Response(
        body=orjson.dumps(list(request.app[STATE].hooks)), content_type="application/json"
    )


def make_app(
    *, seed: int | None = None, news_every: int = 4, fail_every: int = 3
) -> web.Application:
    """Build the demo app. ``seed`` makes the price walk reproducible.

    ``news_every``: requests per headline; ``fail_every``: every n-th ``/weather`` request
    fails with 503 (0 = never).
    """
    app = web.Application()
    app[STATE] = DemoState(seed=seed, news_every=news_every, fail_every=fail_every)
    app.router.add_get("/", _index)
    app.router.add_get("/prices", _prices)
    app.router.add_get("/news", _news)
    app.router.add_get("/weather", _weather)
    app.router.add_get("/metrics", _metrics)
    app.router.add_post("/hooks", _receive_hook)
    app.router.add_get("/hooks", _hooks)
    add_stream_routes(app)
    add_api_routes(app)
    add_oauth_routes(app)
    add_incident_routes(app, seed=seed)
    return app


class DemoServer:
    """The demo API on its own thread and event loop, on ``host:port``.

    :meth:`start` blocks until the server listens and returns the port it got. If ``port`` is
    taken and ``fallback`` is true, it listens on a free port instead (``port`` then differs
    from the one asked for); otherwise the ``OSError`` is raised. :meth:`stop` shuts it down
    and joins the thread. Usable as a context manager.
    """

    def __init__(
        self,
        port: int = DEFAULT_PORT,
        *,
        host: str = DEFAULT_HOST,
        fallback: bool = True,
        seed: int | None = None,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.port = port
        self.fallback = fallback
        self.app = make_app(seed=seed)
        self._loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def _listen(self) -> int:
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        self._runner = runner
        try:
            await web.TCPSite(runner, self.host, self.requested_port).start()
        except OSError as e:
            if not (self.fallback and e.errno == errno.EADDRINUSE and self.requested_port):
                await runner.cleanup()
                raise
            await web.TCPSite(runner, self.host, 0).start()
        address = runner.addresses[0]
        return int(address[1])

    def start(self) -> int:
        if self._thread is not None:
            return self.port
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="arroyo-lite-demo-api", daemon=True
        )
        self._thread.start()
        # Bind through the loop thread and wait, so a bind error reaches the caller (and this
        # works even when the caller runs an event loop of its own).
        try:
            self.port = asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(30)
        except BaseException:
            self._halt()
            raise
        return self.port

    def stop(self) -> None:
        if self._thread is None:
            return
        runner = self._runner

        async def shutdown() -> None:
            if runner is not None:
                await runner.cleanup()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(timeout=10)
        self._halt()

    def _halt(self) -> None:
        if self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None
        self._loop.close()

    def __enter__(self) -> DemoServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> None:
    """``python -m arroyo_lite.demo.api [--port P] [--seed N]``: serve until Ctrl-C.

    Prints ``demo API on http://127.0.0.1:PORT`` (the port it got, also with ``--port 0``)
    once it listens. A taken port is an error here (no fallback).
    """
    # The module docstring is reST with hand-made line breaks: printed as written (argparse's
    # default formatter would run the endpoint list together into one paragraph).
    parser = argparse.ArgumentParser(
        prog="python -m arroyo_lite.demo.api",
        description=(__doc__ or "").replace("``", "").replace(":class:`DemoServer`", "DemoServer"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="0 = any free port (default %(default)s)"
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="(default %(default)s)")
    parser.add_argument(
        "--seed", type=int, default=None, help="seed of the random walks (default: random)"
    )
    args = parser.parse_args(argv)
    server = DemoServer(args.port, host=args.host, fallback=False, seed=args.seed)
    try:
        server.start()
    except OSError as e:
        parser.exit(1, f"error: cannot listen on {args.host}:{args.port}: {e.strerror or e}\n")
    stop = threading.Event()
    try:
        # Printed inside the try: a Ctrl-C right after the line must still stop cleanly.
        print(f"demo API on {server.url} (Ctrl-C to stop)", flush=True)
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
