"""The running ``sse`` source: one long GET, parsed as an event stream, reconnected forever.

:class:`SseOperator` connects with ``Accept: text/event-stream`` (plus the table's headers and,
once known, ``Last-Event-ID``), feeds the body to :class:`~.parser.EventStreamParser` as it
arrives, keeps the events whose type is in ``events`` (all when unset), and queues each kept
event's data as one message for the table's format (:mod:`arroyo_lite.connectors.streaming.
batcher`: decoded in batches, flushed every 50 ms or when full, with backpressure).

State: the last event ID is ``context.state['last_event_id']`` (UTF-8), written once the rows
before it are emitted, so with ``--state-dir`` a restarted table resumes the stream after the
last event it saved, as Arroyo resumes from its checkpointed ``last_id``.

Reconnects follow :mod:`arroyo_lite.connectors.streaming.reconnect`: after a stream that
delivered events ends, wait ``retry:`` (or ``reconnect_delay_ms``); after failed attempts,
back off exponentially up to ``max_backoff_ms``, honouring ``Retry-After``. A ``204 No
Content`` answer tells the client to stop (WHATWG): the table finishes. Only a
:class:`~arroyo_lite.errors.FatalSourceError` (bad data under ``bad_data = 'fail'``, an unset
``{{ VAR }}``) stops the table with an error.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiohttp

from arroyo_lite._version import __version__
from arroyo_lite.config import TableConfig
from arroyo_lite.connectors.base import Emit, SourceContext, SourceOperator, SourceState
from arroyo_lite.connectors.polling_http.backoff import parse_retry_after
from arroyo_lite.connectors.sse.options import SseOptions
from arroyo_lite.connectors.sse.parser import EventStreamParser
from arroyo_lite.connectors.streaming.batcher import MessageBatcher
from arroyo_lite.connectors.streaming.options import resolve_headers
from arroyo_lite.connectors.streaming.reconnect import Reconnects
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.secrets import MissingVariableError, Secrets

logger = logging.getLogger("arroyo_lite.sse")

#: Key of the last event ID in ``SourceContext.state``.
STATE_KEY = "last_event_id"
#: Seconds to wait for the TCP (and TLS) connection to be made.
CONNECT_TIMEOUT = 10.0
USER_AGENT = f"arroyo-lite/{__version__}"


@dataclass(frozen=True, slots=True)
class SseRequest:
    """The resolved request of a table: real header values (never print them unmasked)."""

    url: str
    headers: tuple[tuple[str, str], ...]
    secrets: Secrets

    def send_headers(self, last_event_id: str) -> dict[str, str]:
        """Headers of one connection attempt (``Last-Event-ID`` when one is known)."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        headers["User-Agent"] = USER_AGENT
        headers.update(self.headers)
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        return headers

    def masked_headers(self) -> list[tuple[str, str]]:
        return [(name, self.secrets.mask(value)) for name, value in self.headers]


def build_request(options: SseOptions, env: dict[str, str] | None) -> SseRequest:
    """The request for ``options``; :class:`FatalSourceError` for an unset ``{{ VAR }}``."""
    try:
        headers, secrets = resolve_headers(options.headers, env or {})
    except MissingVariableError as e:
        raise FatalSourceError(str(e), hint=f"export {e.name}=... before running") from e
    return SseRequest(options.endpoint, tuple(headers), secrets)


def open_stream(
    session: aiohttp.ClientSession, request: SseRequest, last_event_id: str
) -> aiohttp.client._RequestContextManager:  # (aiohttp's own type name)
    """Start the GET of one connection (use as ``async with``)."""
    return session.get(
        request.url,
        headers=request.send_headers(last_event_id),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT),
    )


class _Ended(Exception):
    """How one connection ended: ``failed`` (no event delivered) and why."""

    def __init__(
        self, message: str, *, failed: bool, retry_after: float | None = None, stop: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.failed = failed
        self.retry_after = retry_after
        self.stop = stop


class SseOperator(SourceOperator):
    """Reads ``config.connector_options.endpoint`` until cancelled (or told to stop by 204).

    Status: ``polls`` counts connection attempts, ``failures`` the attempts and streams that
    ended in an error, ``rows``/``bytes``/``dropped_rows`` as for every source;
    ``extra`` holds ``events`` (events dispatched), ``skipped_events`` (other types),
    ``oversized_events``, ``reconnects``, ``last_event_id`` and ``max_buffered_bytes``.
    """

    def __init__(self, config: TableConfig, context: SourceContext) -> None:
        super().__init__(config, context)
        for key in ("events", "skipped_events", "oversized_events", "reconnects"):
            self.status.extra[key] = 0
        self.status.extra["connected"] = False
        last_id = context.state.get(STATE_KEY, b"").decode("utf-8", "replace")
        self.status.extra["last_event_id"] = last_id or None

    @property
    def options(self) -> SseOptions:
        options = self.config.connector_options
        if not isinstance(options, SseOptions):
            raise FatalSourceError(f"table '{self.config.name}' has no sse options")
        return options

    async def run(self, emit: Emit) -> None:
        """Connect, read, reconnect; returns only after a 204 answer or by cancellation."""
        try:
            options = self.options
            request = build_request(options, dict(self.context.env))
            self._secrets = request.secrets
            batcher = MessageBatcher(
                self.config, self.context, self.status, emit, secrets=request.secrets
            )
            async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
                await batcher.drive(self._loop(session, request, options, batcher))
        except asyncio.CancelledError:
            self.status.state = SourceState.STOPPED
            self.status.next_poll_at_ns = None
            raise
        except FatalSourceError as e:
            self.status.state = SourceState.FAILED
            self.status.last_error = e.message
            self.status.last_error_at_ns = self.context.clock.time_ns()
            raise

    async def _loop(
        self,
        session: aiohttp.ClientSession,
        request: SseRequest,
        options: SseOptions,
        batcher: MessageBatcher,
    ) -> None:
        clock = self.context.clock
        status = self.status
        extra = status.extra
        self._retry_ms: int | None = None
        reconnects = Reconnects(options.reconnect_delay_ms / 1000, options.max_backoff_ms / 1000)
        while True:
            status.polls += 1
            status.last_poll_at_ns = clock.time_ns()
            status.next_poll_at_ns = None
            try:
                await self._read(session, request, options, batcher, reconnects)
                ended = _Ended("the SSE server closed the stream", failed=False)
            except _Ended as e:
                ended = e
            # (FatalSourceError from decoding, and cancellation, propagate.)
            if ended.stop:
                status.state = SourceState.FINISHED
                return
            if self._retry_ms is not None:
                reconnects.base_s = self._retry_ms / 1000
            delay = reconnects.delay(failed=ended.failed, retry_after=ended.retry_after)
            if ended.failed:
                status.failures += 1
                status.consecutive_failures += 1
                status.last_error = request.secrets.mask(ended.message)
                status.last_error_at_ns = clock.time_ns()
                status.state = SourceState.BACKOFF
            extra["reconnects"] += 1
            extra["connected"] = False
            first = status.consecutive_failures <= 1
            logger.log(
                logging.WARNING
                if ended.failed and first
                else logging.INFO
                if not ended.failed
                else logging.DEBUG,
                "source %s: %s; reconnecting in %.1fs",
                self.config.name,
                request.secrets.mask(ended.message),
                delay,
            )
            status.next_poll_at_ns = clock.time_ns() + int(delay * 1e9)
            await clock.sleep(delay)

    async def _read(
        self,
        session: aiohttp.ClientSession,
        request: SseRequest,
        options: SseOptions,
        batcher: MessageBatcher,
        reconnects: Reconnects,
    ) -> None:
        """One connection, read to its end. Raises :class:`_Ended` for anything but EOF."""
        status = self.status
        extra = status.extra
        clock = self.context.clock
        wanted = frozenset(options.events)
        last_id = extra.get("last_event_id") or ""
        delivered = opened = False
        try:
            async with open_stream(session, request, last_id) as response:
                status.last_status_code = response.status
                if response.status == 204:
                    raise _Ended("the SSE server answered 204 No Content", failed=False, stop=True)
                if not 200 <= response.status < 300:
                    retry_after = None
                    if response.status in (429, 503):
                        retry_after = parse_retry_after(
                            response.headers.get("Retry-After"), clock.time_ns() / 1e9
                        )
                    raise _Ended(
                        f"SSE server '{request.url}' responded with {response.status}",
                        failed=True,
                        retry_after=retry_after,
                    )
                opened = True
                status.state = SourceState.RUNNING
                extra["connected"] = True
                parser = EventStreamParser(last_id)
                oversized = 0
                async for chunk in response.content.iter_any():
                    status.bytes += len(chunk)
                    batcher.received_at_ns = clock.time_ns()
                    events = parser.feed(chunk)
                    if parser.retry_ms is not None:
                        self._retry_ms = parser.retry_ms
                    if parser.oversized != oversized:
                        extra["oversized_events"] += parser.oversized - oversized
                        status.dropped_rows += parser.oversized - oversized
                        oversized = parser.oversized
                    if events:
                        if not delivered:
                            delivered = True
                            reconnects.connected()
                            status.consecutive_failures = 0
                        extra["events"] += len(events)
                        if wanted:
                            data = [e.data for e in events if e.event in wanted]
                            extra["skipped_events"] += len(events) - len(data)
                        else:
                            data = [e.data for e in events]
                        if batcher.extend(data, sum(map(len, data))):
                            await batcher.hand_off()
                    if parser.last_event_id != last_id:
                        last_id = parser.last_event_id
                        extra["last_event_id"] = last_id or None
                        batcher.note_state(STATE_KEY, last_id.encode("utf-8"))
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            what = "reading from" if opened else "connecting to"
            detail = str(e) or type(e).__name__
            raise _Ended(
                f"error {what} SSE server '{request.url}': {detail}", failed=not delivered
            ) from e
        if not delivered:
            raise _Ended("the SSE server closed the stream before sending an event", failed=True)
