"""Serve an aiohttp app on 127.0.0.1:0 from a background thread (for synchronous tests).

A :class:`~arroyo_lite.Session` runs its own event loop thread, so tests of the Python API
are plain synchronous functions; the HTTP server they poll needs a loop of its own too.
``with serve(make_app()) as server: server.url("/array")``. ``server.call(fn)`` runs ``fn``
on the server's loop (to change the app's state safely).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from aiohttp import web

T = TypeVar("T")


class ThreadedServer:
    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="test-http-server", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(self._stop())
        self.loop.close()

    async def _start(self) -> None:
        self._runner = web.AppRunner(self.app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def start(self) -> ThreadedServer:
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("test server did not start")
        return self

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def call(self, fn: Callable[[], T]) -> T:
        async def run() -> T:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(30)


@contextmanager
def serve(app: web.Application) -> Iterator[ThreadedServer]:
    server = ThreadedServer(app).start()
    try:
        yield server
    finally:
        server.stop()


def wait_for(condition: Callable[[], Any], *, within: float = 30.0, every: float = 0.02) -> Any:
    """Poll ``condition`` until it returns something truthy (returned), at most ``within``
    seconds (generous: the bound is for hung tests, not a speed requirement)."""
    deadline = time.monotonic() + within
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {within} s")
        time.sleep(every)
