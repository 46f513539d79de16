"""The running ``websocket`` source: connect, subscribe, read messages, reconnect forever.

:class:`WebsocketOperator` opens the socket with the table's headers (aiohttp's client), sends
every subscription message in order as a text frame, then queues each text or binary message as
one message for the table's format (:mod:`arroyo_lite.connectors.streaming.batcher`: decoded
in batches every 50 ms or when full, with backpressure: aiohttp stops reading the socket while
its queue is full). Pings are answered with pongs (aiohttp's ``autoping``), as Arroyo does;
beyond Arroyo, the source pings every ``heartbeat_interval_ms`` and reconnects when a pong
does not come within half of it (a server that is up but no longer answers).

As in Arroyo, a close frame or a read error ends the connection; arroyo-lite then reconnects
(:mod:`arroyo_lite.connectors.streaming.reconnect`) and sends the subscription messages again.
A message that does not decode follows ``bad_data``: dropped and counted, or (``fail``) the
table stops with the decoder's error. The source keeps no state (Arroyo's is empty too).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import aiohttp

from arroyo_lite._version import __version__
from arroyo_lite.config import TableConfig
from arroyo_lite.connectors.base import SourceContext, SourceState
from arroyo_lite.connectors.streaming.batcher import MessageBatcher
from arroyo_lite.connectors.streaming.operator import ConnectionEnded, PushOperator
from arroyo_lite.connectors.streaming.options import resolve_headers
from arroyo_lite.connectors.streaming.reconnect import Reconnects
from arroyo_lite.connectors.websocket.options import WebsocketOptions
from arroyo_lite.secrets import Secrets

logger = logging.getLogger("arroyo_lite.websocket")

#: Seconds allowed for the TCP connection and the opening handshake.
CONNECT_TIMEOUT = 10.0
#: Largest message accepted (tungstenite's default, which Arroyo uses); larger ones end the
#: connection with an error.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
USER_AGENT = f"arroyo-lite/{__version__}"


@dataclass(frozen=True, slots=True)
class WebsocketRequest:
    """The resolved handshake of a table: real header values (never print them unmasked)."""

    url: str
    headers: tuple[tuple[str, str], ...]
    subscription_messages: tuple[str, ...]
    secrets: Secrets

    def send_headers(self) -> dict[str, str]:
        headers = {"User-Agent": USER_AGENT}
        headers.update(self.headers)
        return headers

    def masked_headers(self) -> list[tuple[str, str]]:
        return [(name, self.secrets.mask(value)) for name, value in self.headers]


def build_request(options: WebsocketOptions, env: dict[str, str] | None) -> WebsocketRequest:
    """The handshake for ``options``; :class:`FatalSourceError` for an unset ``{{ VAR }}``."""
    headers, secrets = resolve_headers(options.headers, env or {})
    return WebsocketRequest(options.endpoint, headers, options.subscription_messages, secrets)


async def connect(
    session: aiohttp.ClientSession, request: WebsocketRequest, heartbeat: float | None = None
) -> aiohttp.ClientWebSocketResponse:
    """Open the socket (handshake done); pongs are sent automatically. With ``heartbeat``
    (seconds), aiohttp pings that often and ends the connection (an ``ERROR`` message) when
    a pong does not come within half of it. Close it when done."""
    return await session.ws_connect(
        request.url,
        headers=request.send_headers(),
        autoping=True,
        heartbeat=heartbeat,
        max_msg_size=MAX_MESSAGE_BYTES,
        timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=CONNECT_TIMEOUT),
    )


def payload(message: aiohttp.WSMessage) -> bytes | None:
    """The bytes of a text or binary message; ``None`` for control messages."""
    if message.type is aiohttp.WSMsgType.TEXT:
        return str(message.data).encode("utf-8")
    if message.type is aiohttp.WSMsgType.BINARY:
        return bytes(message.data)
    return None


class WebsocketOperator(PushOperator):
    """Reads ``config.connector_options.endpoint`` until cancelled.

    Status: ``polls`` counts connection attempts, ``failures`` the attempts and connections
    that ended in an error; ``extra`` holds ``messages`` (text and binary messages received),
    ``reconnects``, ``connected`` and ``max_buffered_bytes``.
    """

    options_type = WebsocketOptions
    closed_message = "websocket server closed the connection"
    logger = logger

    def __init__(self, config: TableConfig, context: SourceContext) -> None:
        super().__init__(config, context)
        self.status.extra["messages"] = 0

    def build_request(self) -> WebsocketRequest:
        return build_request(self.options, dict(self.context.env))

    async def read(
        self,
        session: aiohttp.ClientSession,
        request: WebsocketRequest,
        batcher: MessageBatcher,
        reconnects: Reconnects,
    ) -> None:
        """One connection, read until the server closes it; :class:`ConnectionEnded` on errors."""
        status = self.status
        extra = status.extra
        clock = self.context.clock
        delivered = opened = False
        try:
            heartbeat = self.options.heartbeat_interval_ms / 1000 or None
            async with asyncio.timeout(CONNECT_TIMEOUT):
                ws = await connect(session, request, heartbeat)
        except aiohttp.WSServerHandshakeError as e:
            status.last_status_code = e.status
            raise ConnectionEnded(
                f"failed to connect to websocket '{request.url}': server responded with {e.status}",
                failed=True,
            ) from e
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            detail = str(e) or type(e).__name__
            raise ConnectionEnded(
                f"failed to connect to websocket '{request.url}': {detail}", failed=True
            ) from e
        try:
            opened = True
            status.last_status_code = 101
            for text in request.subscription_messages:
                try:
                    await ws.send_str(text)
                except (aiohttp.ClientError, OSError, ConnectionError) as e:
                    raise ConnectionEnded(
                        f"failed to send subscription message: {e}", failed=True
                    ) from e
            self.report(SourceState.RUNNING)
            extra["connected"] = True
            while True:
                message = await ws.receive()
                data = payload(message)
                if data is None:
                    if message.type is aiohttp.WSMsgType.ERROR:
                        if isinstance(message.data, aiohttp.ServerTimeoutError):
                            raise ConnectionEnded(
                                f"websocket server did not answer a ping within "
                                f"{self.options.heartbeat_interval_ms / 2:g} ms "
                                "(heartbeat_interval_ms)",
                                failed=not delivered,
                            )
                        raise ConnectionEnded(
                            f"error reading from websocket: {message.data}", failed=not delivered
                        )
                    if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING,
                                        aiohttp.WSMsgType.CLOSED):  # fmt: skip
                        break
                    continue  # (pings are answered by aiohttp; pongs need nothing)
                if not delivered:
                    delivered = True
                    reconnects.connected()
                    status.consecutive_failures = 0
                extra["messages"] += 1
                status.bytes += len(data)
                batcher.received_at_ns = clock.time_ns()
                if batcher.add(data):
                    await batcher.hand_off()
        except (aiohttp.ClientError, OSError) as e:
            raise ConnectionEnded(f"error reading from websocket: {e}", failed=not delivered) from e
        finally:
            await ws.close()
        if not opened or not delivered:
            raise ConnectionEnded(
                "websocket server closed the connection before sending a message", failed=True
            )
