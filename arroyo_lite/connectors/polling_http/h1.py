"""A lean HTTP/1.1 keep-alive client for plain polls: asyncio Protocols and httptools' parser.

aiohttp's request cycle costs about 300 us of CPU per small request on the development
machine (``benchmarks/poll_step.py``): request and response objects, header multidicts,
stream readers, timers and several tasks' worth of awaits. A poll of a plain ``GET`` needs
none of that, so :func:`.http.fetch` sends such a request here instead
(:func:`eligible`): the request head is built once per :class:`~.http.HttpRequest`
(:func:`request_head`), written in one call on a pooled keep-alive connection, and the
response is parsed by httptools (llhttp, the parser of Node.js) in the protocol's callbacks;
one future per request, no stream objects.

Contract, as aiohttp's for the same request (so the two paths are interchangeable):

* the same headers go out (``Host``, ``Accept: */*``, the request's own, ``User-Agent`` unless
  set), except that ``Accept-Encoding`` offers only ``gzip, deflate`` (aiohttp adds ``br``
  when brotli is installed); a ``gzip`` or ``deflate`` body is decompressed, any other
  ``Content-Encoding`` is handed back as it came (as aiohttp does without brotli);
* :meth:`Pool.send` returns a :class:`RawResponse` or raises ``TimeoutError`` (the whole exchange,
  connecting included, is bounded by ``timeout_s``), :class:`ConnectFailed` (an ``OSError``
  with the host and port), :class:`Disconnected` (the server closed the connection before a
  complete answer), :class:`BadResponse` (an unparsable answer), :class:`BadBody` (a body
  that does not decompress) or :class:`BodyTooLarge`;
* a body over ``max_body_bytes`` (decompressed) is refused; for a non-2xx answer only the
  first :data:`KEEP_ERROR_BYTES` of the body are kept (for the error excerpt), and one longer
  than ``max_body_bytes`` is not read to its end (the connection is dropped);
* a connection is reused only when the server allows keep-alive and the answer was read in
  full; a request on a reused connection that the server had closed meanwhile (no byte of an
  answer came back) is sent again once on a new connection (``GET`` is idempotent).

:meth:`Pool.begin` is the same exchange without a coroutine, for the polling operator's
callback polls (:mod:`.callback_polls`): on an idle connection it writes the head and calls
back once with the answer or the error that :meth:`Pool.send` would have met; given that
outcome as its ``first``, :meth:`Pool.send` returns or raises it (or, for a reused
connection found closed, sends again on a new connection, as it would itself).

``ARROYO_LITE_HTTP=aiohttp`` turns this path off (every request then goes through aiohttp).
"""

from __future__ import annotations

import asyncio
import os
import zlib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import httptools
from yarl import URL

#: Set to ``aiohttp`` to send every request through aiohttp.
HTTP_ENV = "ARROYO_LITE_HTTP"
#: How much of a non-2xx answer's body is kept (the excerpt reads at most 1 KiB of it).
KEEP_ERROR_BYTES = 4096
#: What aiohttp sends by default (without brotli installed), sent the same here.
DEFAULT_HEADERS = (("Accept", "*/*"), ("Accept-Encoding", "gzip, deflate"))
#: The longest header name or value accepted, and the largest response head (aiohttp's
#: client limits field lines at 8190 bytes too): a header bomb fails the poll, it is not kept.
MAX_FIELD_BYTES = 8190
MAX_HEAD_BYTES = 65536
#: Header names or values holding one of these are left to aiohttp (which refuses them).
_UNSAFE = ("\r", "\n", "\x00")


def enabled() -> bool:
    """Whether the lean path is on (``ARROYO_LITE_HTTP`` is not ``aiohttp``)."""
    return os.environ.get(HTTP_ENV, "").lower() != "aiohttp"


def request_head(
    method: str, url: URL, headers: dict[str, str], body: bytes | None
) -> bytes | None:
    """The request's head, ready to write, or ``None`` when the request is not for this path:
    only a ``GET`` without a body to an ``http://`` URL with a host, with header names and
    values that are plain text (anything else goes through aiohttp, which also reports the
    invalid ones)."""
    if method != "GET" or body is not None or url.scheme != "http" or not url.raw_host:
        return None
    items = list(headers.items())
    for name, value in items:
        if any(c in name or c in value for c in _UNSAFE) or not name.isascii():
            return None
    names = {name.lower() for name, _ in items}
    host = url.raw_host
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    if url.explicit_port and url.port != 80:
        host = f"{host}:{url.port}"
    lines = [f"GET {url.raw_path_qs or '/'} HTTP/1.1"]
    if "host" not in names:
        lines.append(f"Host: {host}")
    lines += [f"{name}: {value}" for name, value in DEFAULT_HEADERS if name.lower() not in names]
    lines += [f"{name}: {value}" for name, value in items]
    try:
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError:
        return None  # aiohttp encodes such values as UTF-8: leave the request to it


class ConnectFailed(OSError):
    """The connection could not be opened (``os_error`` says why)."""

    def __init__(self, host: str, port: int, os_error: OSError) -> None:
        super().__init__(os_error.errno, os_error.strerror or str(os_error))
        self.host = host
        self.port = port
        self.os_error = os_error


class Disconnected(Exception):
    """The server closed the connection before the answer was complete."""


class BadResponse(Exception):
    """The answer is not valid HTTP/1.1."""


class BadBody(Exception):
    """The body cannot be decompressed as its ``Content-Encoding`` says."""


class BodyTooLarge(Exception):
    """The body is longer than allowed; ``declared`` is the Content-Length when that told."""

    def __init__(self, status: int, limit: int, declared: int | None) -> None:
        super().__init__(status, limit, declared)
        self.status = status
        self.limit = limit
        self.declared = declared


class _Enough(Exception):
    """Stops the parser: the answer was given already (the connection is then closed)."""


class _Stale(Exception):
    """A reused connection was closed before any byte of the answer came: send again."""


@dataclass(slots=True)
class RawResponse:
    """A complete answer: status, reason, headers as sent (decoded), body (decompressed).
    Not frozen (a frozen dataclass sets each field through ``object.__setattr__``): made once
    per answer and handed over, never changed."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive connection; one request at a time (the pool hands it out)."""

    def __init__(self, pool: Pool, key: tuple[str, int]) -> None:
        self.pool = pool
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.used = False  # has answered a request already (so may be stale)
        self.waiter: asyncio.Future[RawResponse] | Callback | None = None
        #: True while llhttp runs (its callbacks may end the exchange), and the callback
        #: exchange that ended meanwhile, run once llhttp returned (see Callback).
        self.feeding = False
        self.ended: Callback | None = None
        self._reset(0)

    def _reset(self, limit: int) -> None:
        self.limit = limit
        self.got_bytes = False
        self.reason = ""
        self.headers: list[tuple[str, str]] = []
        #: Names and values as llhttp hands them over, decoded together once the head ends.
        self.raw_headers: list[bytes] = []
        self.chunks: list[bytes] = []
        self.size = 0
        self.keep_error = False
        self.headers_done = False
        self.complete = False
        self.head_bytes = 0
        self.encoding: str | None = None
        self.keep_alive = False
        self.delimited = False  # Content-Length or chunked: not ended by closing

    # --- asyncio.Protocol ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # (uvloop's transports are not asyncio.Transport subclasses, but have its methods.)
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        if self.waiter is None or self.waiter.done():
            self.close()  # bytes nobody asked for: the connection is not in a known state
            return
        self.got_bytes = True
        self.feeding = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as e:
            self._fail(e.__cause__ or e.__context__ or BadResponse(str(e)))
        except httptools.HttpParserError as e:
            self._fail(BadResponse(str(e) or type(e).__name__))
        else:
            if not self.headers_done:
                # Still in the head: every byte so far belongs to it (llhttp buffers a header).
                self.head_bytes += len(data)
                if self.head_bytes > MAX_HEAD_BYTES:
                    self._fail(BadResponse(f"response head longer than {MAX_HEAD_BYTES} bytes"))
        self.feeding = False
        ended = self.ended
        if ended is not None:
            self.ended = None
            ended.run()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.pool.forget(self)
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        if self.headers_done and not self.delimited:
            self.on_message_complete()  # a body that ends with the connection
        elif not self.got_bytes and self.used:
            waiter.set_exception(_Stale())
        else:
            waiter.set_exception(Disconnected("Server disconnected"))

    # --- httptools callbacks ------------------------------------------------------------

    def on_status(self, status: bytes) -> None:
        self.reason += status.decode("latin-1")

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) > MAX_FIELD_BYTES or len(value) > MAX_FIELD_BYTES:
            raise BadResponse(f"Got more than {MAX_FIELD_BYTES} bytes in a header line")
        self.raw_headers += (name, value)

    def on_headers_complete(self) -> None:
        self.headers_done = True
        if self.raw_headers:
            # One decode for the whole head rather than two per header (a share of a small
            # poll's CPU). NUL can be in neither a name nor a value (llhttp refuses it), and
            # names are tokens (ASCII), so this is each name as latin-1 and each value as
            # UTF-8 with surrogate escapes, decoded on its own.
            fields = iter(
                b"\x00".join(self.raw_headers).decode("utf-8", "surrogateescape").split("\x00")
            )
            self.headers = list(zip(fields, fields, strict=True))
        status = self.parser.get_status_code()
        self.keep_error = not 200 <= status < 300
        length = encoded = None
        for name, value in self.headers:
            lower = name.lower()
            if lower == "content-length":
                length = value
            elif lower == "content-encoding":
                encoded = value
                self.encoding = value.strip().lower()
            elif lower == "transfer-encoding" and "chunked" in value.lower():
                self.delimited = True
        if length is not None:
            self.delimited = True
            declared = int(length) if length.strip().isdigit() else None
            if not self.keep_error and encoded is None and declared and declared > self.limit:
                raise BodyTooLarge(status, self.limit, declared)
        if status in (204, 304) or 100 <= status < 200:
            self.delimited = True

    def on_body(self, body: bytes) -> None:
        if self.keep_error:
            if self.size < KEEP_ERROR_BYTES:
                self.chunks.append(body[: KEEP_ERROR_BYTES - self.size])
            self.size += len(body)
            if self.size > self.limit:
                # An error answer longer than any body we accept: answer with its start now
                # and drop the connection rather than read the rest.
                self.on_message_complete()
                self.complete = False
                raise _Enough()
            return
        self.size += len(body)
        if self.size > self.limit and not self.encoding:
            raise BodyTooLarge(self.parser.get_status_code(), self.limit, None)
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        waiter = self.waiter
        self.complete = True
        # Asked here: once the callback returns, llhttp has moved on and says False.
        self.keep_alive = self.parser.should_keep_alive()
        if waiter is None or waiter.done():
            return
        body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        encoding = self.encoding
        if encoding in ("gzip", "deflate") and body and not self.keep_error:
            try:
                body = _decompress(body, encoding, self.limit, self.parser.get_status_code())
            except zlib.error:
                waiter.set_exception(BadBody(f"Can not decode content-encoding: {encoding}"))
                return
            except BodyTooLarge as e:
                waiter.set_exception(e)
                return
        waiter.set_result(
            RawResponse(self.parser.get_status_code(), self.reason, self.headers, body)
        )

    # --- helpers ------------------------------------------------------------------------

    def _fail(self, error: BaseException) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(error)
        self.close()

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def _expire(self) -> None:
        self._fail(TimeoutError())

    async def exchange(
        self, head: bytes, limit: int, seconds: float, loop: asyncio.AbstractEventLoop
    ) -> RawResponse:
        """Write ``head``, read the answer; ``TimeoutError`` after ``seconds``. ``loop`` is
        the running loop (the pool's)."""
        assert self.transport is not None
        self._reset(limit)
        waiter: asyncio.Future[RawResponse] = loop.create_future()
        self.waiter = waiter
        # A timer handle rather than asyncio.timeout(): the same bound, less work per poll.
        timer = loop.call_later(seconds, self._expire)
        self.transport.write(head)
        try:
            response = await waiter
        except BaseException:
            self.close()
            raise
        finally:
            timer.cancel()
            self.waiter = None
        self.used = True
        if not self.complete or not self.keep_alive:
            self.close()
        return response

    def begin(
        self,
        head: bytes,
        limit: int,
        seconds: float,
        loop: asyncio.AbstractEventLoop,
        on_done: Callable[[RawResponse | BaseException], None],
    ) -> Callback:
        """:meth:`exchange` without a coroutine: write ``head`` now and call ``on_done`` once
        with the answer or the error (``TimeoutError`` after ``seconds``), unless cancelled."""
        assert self.transport is not None
        self._reset(limit)
        callback = Callback(self, on_done)
        self.waiter = callback
        callback.timer = loop.call_later(seconds, self._expire)
        self.transport.write(head)
        return callback


class Callback:
    """The waiter of a callback exchange (:meth:`_Connection.begin`): what the future is to
    :meth:`_Connection.exchange` (the connection sets its result or exception the same way),
    then what ``exchange`` does once its await returns, then ``on_done``.

    An answer completed inside llhttp's callbacks is handed over once llhttp has returned
    (:meth:`_Connection.data_received`), as a future's callbacks run after the parser too:
    ``on_done`` may then send on this connection again."""

    __slots__ = ("connection", "on_done", "timer", "outcome", "finished")

    def __init__(
        self, connection: _Connection, on_done: Callable[[RawResponse | BaseException], None]
    ) -> None:
        self.connection = connection
        self.on_done = on_done
        self.timer: asyncio.TimerHandle | None = None
        self.outcome: RawResponse | BaseException | None = None
        self.finished = False

    def done(self) -> bool:
        return self.finished

    def set_result(self, response: RawResponse) -> None:
        self._end(response)

    def set_exception(self, error: BaseException) -> None:
        self._end(error)

    def _end(self, outcome: RawResponse | BaseException) -> None:
        self.finished = True
        self.outcome = outcome
        connection = self.connection
        if connection.feeding:
            connection.ended = self
        else:
            self.run()

    def run(self) -> None:
        """End the exchange (the connection kept or closed, as ``exchange`` does), then
        call ``on_done`` with its outcome."""
        connection, outcome = self.connection, self.outcome
        assert outcome is not None
        if self.timer is not None:
            self.timer.cancel()
        connection.waiter = None
        if isinstance(outcome, BaseException):
            connection.close()
        else:
            connection.used = True
            if not connection.complete or not connection.keep_alive:
                connection.close()
            connection.pool.release(connection)
        self.on_done(outcome)

    def cancel(self) -> None:
        """Abandon the exchange (the connection is closed, ``on_done`` never called)."""
        if self.finished:
            return
        self.finished = True
        if self.timer is not None:
            self.timer.cancel()
        connection = self.connection
        connection.waiter = None
        connection.ended = None
        connection.close()


def _decompress(body: bytes, encoding: str, limit: int, status: int) -> bytes:
    """A gzip or deflate body (zlib-wrapped or raw deflate, as aiohttp accepts), at most
    ``limit`` bytes once decompressed."""
    if encoding == "gzip":
        wbits = 16 + zlib.MAX_WBITS
    else:
        wbits = zlib.MAX_WBITS if body[:1] == b"\x78" else -zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(body, limit + 1)
    if len(out) > limit:
        raise BodyTooLarge(status, limit, None)
    return out


class Pool:
    """Idle keep-alive connections per (host, port), for one event loop."""

    def __init__(self) -> None:
        self._idle: dict[tuple[str, int], deque[_Connection]] = {}
        self._open: set[_Connection] = set()
        #: The loop of the first request (asking for the running loop costs a system call
        #: in CPython 3.11: it checks the process id).
        self._loop: asyncio.AbstractEventLoop | None = None

    def forget(self, connection: _Connection) -> None:
        self._open.discard(connection)

    async def _connect(self, key: tuple[str, int]) -> _Connection:
        loop = asyncio.get_running_loop()
        host, port = key
        try:
            _, protocol = await loop.create_connection(lambda: _Connection(self, key), host, port)
        except OSError as e:
            raise ConnectFailed(host, port, e) from e
        self._open.add(protocol)
        return protocol

    async def send(
        self,
        url: URL,
        head: bytes,
        limit: int,
        seconds: float,
        first: RawResponse | BaseException | None = None,
    ) -> RawResponse:
        """Send ``head`` to ``url``'s origin and read the answer (see the module contract),
        all within ``seconds`` (``TimeoutError``).

        ``first``: the outcome of this request sent already by :meth:`begin`, taken as this
        send's own first exchange (returned, raised, or, for a reused connection found
        closed, sent again on a new connection)."""
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        key = (url.raw_host or "", url.port or 80)
        idle = self._idle.get(key)
        if first is not None:
            if isinstance(first, RawResponse):
                return first
            if not isinstance(first, _Stale):
                raise first
            idle = None  # a new connection, once
        while idle:
            connection = idle.pop()
            if connection.closed:
                continue
            try:
                response = await connection.exchange(head, limit, seconds, loop)
            except _Stale:
                break  # the server closed it while idle: a new connection, once
            self.release(connection)
            return response
        async with asyncio.timeout_at(deadline):
            connection = await self._connect(key)
        try:
            left = max(deadline - loop.time(), 0.001)
            response = await connection.exchange(head, limit, left, loop)
        except _Stale:
            raise Disconnected("Server disconnected") from None
        self.release(connection)
        return response

    def begin(
        self,
        key: tuple[str, int],
        head: bytes,
        limit: int,
        seconds: float,
        loop: asyncio.AbstractEventLoop,
        on_done: Callable[[RawResponse | BaseException], None],
    ) -> Callback | None:
        """Send ``head`` on an idle connection to ``key`` (host, port) and call ``on_done``
        with the outcome (:meth:`_Connection.begin`); ``None`` when no connection is idle
        (nothing sent: :meth:`send` connects)."""
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if not connection.closed:
                return connection.begin(head, limit, seconds, loop, on_done)
        return None

    def release(self, connection: _Connection) -> None:
        """Keep a connection whose exchange ended for the next request (unless closed)."""
        if not connection.closed:
            idle = self._idle.get(connection.key)
            if idle is None:
                idle = self._idle[connection.key] = deque()
            idle.append(connection)

    def close(self) -> None:
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()
