"""A trial connection for an ``sse`` or ``websocket`` table: ``arroyo-lite test``'s engine.

:func:`probe_stream` connects exactly as the source would (same URL, headers, ``Accept``,
subscription messages), waits for the first messages, decodes them with the table's format,
and returns a :class:`~arroyo_lite.connectors.probing.ProbeResult` (secrets masked).

It collects up to ``max_messages`` messages (SSE: events of the wanted types), stopping
:data:`SETTLE` seconds after the first one, and fails with Arroyo's words ``Did not receive
any messages after 30 seconds`` (or the ``timeout`` given) when none arrives. Beyond Arroyo,
whose connection test only reports that a message arrived: the status is checked, the
messages are decoded with the table's schema, and the first rows are shown.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import replace

import aiohttp
import pyarrow as pa

from arroyo_lite.config import TableConfig
from arroyo_lite.connectors.polling_http.probe import mask_rows
from arroyo_lite.connectors.probing import ProbeResult, ProbeStage
from arroyo_lite.connectors.sse.options import SseOptions
from arroyo_lite.connectors.websocket.options import WebsocketOptions
from arroyo_lite.errors import ArroyoLiteError, FatalSourceError
from arroyo_lite.secrets import Secrets

#: Arroyo's connection tests wait this long for a first message (seconds).
DEFAULT_TIMEOUT = 30.0
#: After the first message, wait at most this long for more (seconds).
SETTLE = 1.0
#: Longest message shown in a note (characters).
NOTE_CHARS = 120


class _Collected:
    """What a trial reader found so far (shared with the waiting side)."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.first_at: float | None = None  # perf_counter of the first message
        self.first_at_monotonic: float | None = None
        self.error: str | None = None
        #: status, reason, content_type of the answer, once known.
        self.answer: dict[str, object] = {}

    def got(self, message: bytes) -> None:
        if self.first_at is None:
            self.first_at = time.perf_counter()
            self.first_at_monotonic = time.monotonic()
        self.messages.append(message)


async def probe_stream(
    config: TableConfig,
    env: Mapping[str, str],
    *,
    timeout: float | None = None,  # noqa: ASYNC109 (a wait for a first message, reported)
    max_rows: int = 10,
    max_messages: int | None = None,
) -> ProbeResult:
    """Connect for ``config`` (an sse or websocket source), collect, decode, report.

    Never raises for a network, protocol or decoding problem (they are in the result).
    """
    options = config.connector_options
    wait = DEFAULT_TIMEOUT if timeout is None else timeout
    limit = max(1, max_messages if max_messages is not None else max_rows)
    if isinstance(options, SseOptions):
        from arroyo_lite.connectors.sse.operator import build_request as sse_request

        method, url, templates = "GET", options.endpoint, options.headers
        try:
            request = sse_request(options, dict(env))
        except FatalSourceError as e:
            return _config_error(config, method, url, templates, e.message)
        secrets, headers = request.secrets, tuple(request.masked_headers())
        notes: tuple[str, ...] = ()
    elif isinstance(options, WebsocketOptions):
        from arroyo_lite.connectors.websocket.operator import build_request as ws_request

        method, url, templates = "WEBSOCKET", options.endpoint, options.headers
        try:
            ws = ws_request(options, dict(env))
        except FatalSourceError as e:
            return _config_error(config, method, url, templates, e.message)
        secrets, headers = ws.secrets, tuple(ws.masked_headers())
        notes = tuple(
            f"sent subscription message: {_short(secrets.mask(m))}"
            for m in options.subscription_messages
        )
    else:
        raise ArroyoLiteError(f"table '{config.name}' is not an sse or websocket source")
    result = ProbeResult(
        table=config.name,
        method=method,
        url=url,
        headers=headers,
        body=None,
        stage=ProbeStage.REQUEST,
        notes=notes,
    )
    collected = _Collected()
    started = time.perf_counter()
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        if isinstance(options, SseOptions):
            reader = _read_sse(session, request, options, collected, limit)
        else:
            reader = _read_ws(session, ws, collected, limit)
        task = asyncio.ensure_future(reader)
        status = await _wait(task, collected, wait, limit)
    code, reason, kind = status.get("status"), status.get("reason"), status.get("content_type")
    result = replace(
        result,
        status=code if isinstance(code, int) else None,
        reason=reason if isinstance(reason, str) else None,
        content_type=kind if isinstance(kind, str) else None,
    )
    if collected.first_at is not None:
        result = replace(result, latency_s=collected.first_at - started)
    if not collected.messages:
        error = collected.error or f"Did not receive any messages after {wait:g} seconds"
        return replace(result, error=secrets.mask(error))
    return await _decode(config, result, collected, secrets, max_rows)


async def _wait(
    task: asyncio.Future[dict[str, object]], collected: _Collected, wait: float, limit: int
) -> dict[str, object]:
    """Run the reader until it has ``limit`` messages, :data:`SETTLE` s after the first one,
    ``wait`` s without any, or it ends; return what it learned of the answer."""
    deadline = time.monotonic() + wait
    while not task.done():
        now = time.monotonic()
        if collected.first_at_monotonic is not None:
            deadline = min(deadline, collected.first_at_monotonic + SETTLE)
        if now >= deadline or len(collected.messages) >= limit:
            break
        await asyncio.wait([task], timeout=min(0.05, max(0.0, deadline - now)))
    if not task.done():
        task.cancel()
    try:
        return await task
    except asyncio.CancelledError:
        return collected.answer


async def _read_sse(
    session: aiohttp.ClientSession,
    request: object,
    options: SseOptions,
    collected: _Collected,
    limit: int,
) -> dict[str, object]:
    from arroyo_lite.connectors.sse.operator import SseRequest, open_stream
    from arroyo_lite.connectors.sse.parser import EventStreamParser

    assert isinstance(request, SseRequest)
    answer = collected.answer
    wanted = frozenset(options.events)
    try:
        async with open_stream(session, request, "") as response:
            answer.update(status=response.status, reason=response.reason,
                          content_type=response.headers.get("Content-Type"))  # fmt: skip
            if not 200 <= response.status < 300 or response.status == 204:
                body = (await response.content.read(200)).decode("utf-8", "replace")
                collected.error = f"SSE server '{request.url}' responded with {response.status}" + (
                    f": {body.strip()}" if body.strip() else ""
                )
                return answer
            parser = EventStreamParser()
            async for chunk in response.content.iter_any():
                for event in parser.feed(chunk):
                    if len(collected.messages) < limit and (not wanted or event.event in wanted):
                        collected.got(event.data)
                if len(collected.messages) >= limit:
                    break
            else:
                if not collected.messages:
                    collected.error = "Server closed connection"  # Arroyo's words
    except (aiohttp.ClientError, OSError, TimeoutError) as e:
        collected.error = f"error connecting to SSE server '{request.url}': {e or type(e).__name__}"
    return answer


async def _read_ws(
    session: aiohttp.ClientSession, request: object, collected: _Collected, limit: int
) -> dict[str, object]:
    from arroyo_lite.connectors.websocket.operator import WebsocketRequest, connect, payload

    assert isinstance(request, WebsocketRequest)
    answer = collected.answer
    try:
        ws = await connect(session, request)
    except aiohttp.WSServerHandshakeError as e:
        answer.update(status=e.status, reason=e.message)
        collected.error = f"Failed to connect to websocket server: server responded with {e.status}"
        return answer
    except (aiohttp.ClientError, OSError, TimeoutError) as e:
        collected.error = f"Failed to connect to websocket server: {e or type(e).__name__}"
        return answer
    answer.update(status=101, reason="Switching Protocols")
    try:
        for text in request.subscription_messages:
            await ws.send_str(text)
        while len(collected.messages) < limit:
            message = await ws.receive()
            data = payload(message)
            if data is not None:
                collected.got(data)
            elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED,
                                  aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.ERROR):  # fmt: skip
                if not collected.messages:
                    collected.error = "Websocket disconnected before sending message"
                break
    except (aiohttp.ClientError, OSError) as e:
        collected.error = f"Received error from websocket: {e}"
    finally:
        await ws.close()
    return answer


async def _decode(
    config: TableConfig,
    result: ProbeResult,
    collected: _Collected,
    secrets: Secrets,
    max_rows: int,
) -> ProbeResult:
    from arroyo_lite.formats.messages import MessageDecoder

    messages = collected.messages
    size = sum(map(len, messages))
    notes = result.notes + (f"received {len(messages)} message(s), {size:,} bytes",)
    result = replace(result, stage=ProbeStage.DECODE, size=size, notes=notes)
    try:
        decoder = MessageDecoder(config)
        decoded = await asyncio.to_thread(decoder.decode, messages, time.time_ns())
    except ArroyoLiteError as e:
        first = _short(secrets.mask(messages[0].decode("utf-8", "replace")))
        return replace(result, error=secrets.mask(e.message), notes=notes + (f"first: {first}",))
    rows = None
    if decoded.batch is not None:
        rows = mask_rows(pa.Table.from_batches([decoded.batch]).slice(0, max_rows), secrets)
    return replace(
        result,
        stage=ProbeStage.DONE,
        rows=rows,
        total_rows=decoded.rows,
        dropped=decoded.dropped,
        warnings=tuple(secrets.mask(w) for w in decoded.errors),
    )


def _config_error(
    config: TableConfig, method: str, url: str, headers: tuple[tuple[str, str], ...], error: str
) -> ProbeResult:
    return ProbeResult(
        table=config.name, method=method, url=url, headers=headers, body=None,
        stage=ProbeStage.CONFIG, error=error,
    )  # fmt: skip


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= NOTE_CHARS else text[: NOTE_CHARS - 3] + "..."
