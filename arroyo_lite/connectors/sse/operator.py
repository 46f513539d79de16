"""The running ``sse`` source: one long GET, parsed as an event stream, reconnected forever.

:class:`SseOperator` connects with ``Accept: text/event-stream`` (plus the table's headers and,
once known, ``Last-Event-ID``), feeds the body to :class:`~.parser.EventStreamParser` as it
arrives, keeps the events whose type is in ``events`` (all when unset), and queues each kept
event's data as one message for the table's format (:mod:`arroyo_lite.connectors.streaming.
batcher`: decoded in batches, flushed every 50 ms or when full, with backpressure).

State: the last event ID is ``context.state['last_event_id']`` (UTF-8), written once the rows
before it are emitted, so with ``--state-dir`` a restarted table resumes the stream after the
last event it saved, as Arroyo resumes from its checkpointed ``last_id``.

A stream that stays silent for ``read_timeout_ms`` (no event, no ``:`` comment: the server
is up but has stopped sending) is dropped and reconnected like a dropped one.

Reconnects follow :mod:`arroyo_lite.connectors.streaming.reconnect`: after a stream that
delivered events ends, wait ``retry:`` (or ``reconnect_delay_ms``); after failed attempts,
back off exponentially up to ``max_backoff_ms``, honouring ``Retry-After``. A ``204 No
Content`` answer tells the client to stop (WHATWG): the table finishes. Only a
:class:`~arroyo_lite.errors.FatalSourceError` (bad data under ``bad_data = 'fail'``, an unset
``{{ VAR }}``) stops the table with an error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aiohttp

from arroyo_lite._version import __version__
from arroyo_lite.config import TableConfig
from arroyo_lite.connectors.base import SourceContext, SourceState
from arroyo_lite.connectors.polling_http.backoff import parse_retry_after
from arroyo_lite.connectors.sse.options import SseOptions
from arroyo_lite.connectors.sse.parser import EventStreamParser
from arroyo_lite.connectors.streaming.batcher import MessageBatcher
from arroyo_lite.connectors.streaming.operator import ConnectionEnded, PushOperator
from arroyo_lite.connectors.streaming.options import resolve_headers
from arroyo_lite.connectors.streaming.reconnect import Reconnects
from arroyo_lite.secrets import Secrets

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
    headers, secrets = resolve_headers(options.headers, env or {})
    return SseRequest(options.endpoint, headers, secrets)


def open_stream(
    session: aiohttp.ClientSession,
    request: SseRequest,
    last_event_id: str,
    read_timeout: float | None = None,
) -> aiohttp.client._RequestContextManager:  # (aiohttp's own type name)
    """Start the GET of one connection (use as ``async with``). ``read_timeout``: seconds
    without a byte (response head or body) before the read fails with
    :class:`aiohttp.ServerTimeoutError`."""
    return session.get(
        request.url,
        headers=request.send_headers(last_event_id),
        timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=CONNECT_TIMEOUT, sock_read=read_timeout
        ),
    )


class SseOperator(PushOperator):
    """Reads ``config.connector_options.endpoint`` until cancelled (or told to stop by 204).

    Status: ``polls`` counts connection attempts, ``failures`` the attempts and streams that
    ended in an error, ``rows``/``bytes``/``dropped_rows`` as for every source;
    ``extra`` holds ``events`` (events dispatched), ``skipped_events`` (other types),
    ``oversized_events``, ``reconnects``, ``connected``, ``last_event_id`` and
    ``max_buffered_bytes``.
    """

    options_type = SseOptions
    closed_message = "the SSE server closed the stream"
    logger = logger

    def __init__(self, config: TableConfig, context: SourceContext) -> None:
        super().__init__(config, context)
        for key in ("events", "skipped_events", "oversized_events"):
            self.status.extra[key] = 0
        last_id = context.state.get(STATE_KEY, b"").decode("utf-8", "replace")
        self.status.extra["last_event_id"] = last_id or None
        self._retry_ms: int | None = None

    def build_request(self) -> SseRequest:
        return build_request(self.options, dict(self.context.env))

    def base_delay(self) -> float | None:
        return None if self._retry_ms is None else self._retry_ms / 1000

    async def read(
        self,
        session: aiohttp.ClientSession,
        request: SseRequest,
        batcher: MessageBatcher,
        reconnects: Reconnects,
    ) -> None:
        """One connection, read to its end. Raises :class:`ConnectionEnded` for anything but
        EOF after an event."""
        options: SseOptions = self.options
        status = self.status
        extra = status.extra
        clock = self.context.clock
        wanted = frozenset(options.events)
        last_id = extra.get("last_event_id") or ""
        delivered = opened = False
        read_timeout = options.read_timeout_ms / 1000 or None
        try:
            async with open_stream(session, request, last_id, read_timeout) as response:
                status.last_status_code = response.status
                if response.status == 204:
                    raise ConnectionEnded(
                        "the SSE server answered 204 No Content", failed=False, stop=True
                    )
                if not 200 <= response.status < 300:
                    retry_after = None
                    if response.status in (429, 503):
                        retry_after = parse_retry_after(
                            response.headers.get("Retry-After"), clock.time_ns() / 1e9
                        )
                    raise ConnectionEnded(
                        f"SSE server '{request.url}' responded with {response.status}",
                        failed=True,
                        retry_after=retry_after,
                    )
                opened = True
                self.report(SourceState.RUNNING)
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
        except aiohttp.ServerTimeoutError as e:
            # Up, but silent: no event and no ':' keep-alive comment for read_timeout_ms.
            raise ConnectionEnded(
                f"SSE server '{request.url}' sent nothing for {options.read_timeout_ms} ms "
                "(read_timeout_ms)",
                failed=not delivered,
            ) from e
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            what = "reading from" if opened else "connecting to"
            detail = str(e) or type(e).__name__
            raise ConnectionEnded(
                f"error {what} SSE server '{request.url}': {detail}", failed=not delivered
            ) from e
        if not delivered:
            raise ConnectionEnded(
                "the SSE server closed the stream before sending an event", failed=True
            )
