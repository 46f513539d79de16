"""The options of a ``websocket`` table, declared once (``TableConfig.connector_options``).

Arroyo's keys in Arroyo's ``from_options`` order (``endpoint``, ``headers``, the deprecated
``subscription_message``, then ``subscription_messages.0``, ``.1``, ...), then arroyo-lite's
extensions. The pulls, the JSON Schema, the defaults and the listing derive from
:data:`OPTIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from arroyo_lite.connectors.http_options import headers_option
from arroyo_lite.connectors.option_spec import OptionKind, OptionSet, option
from arroyo_lite.connectors.streaming.options import (
    endpoint_option,
    heartbeat_option,
    max_backoff_option,
    reconnect_delay_option,
)


@dataclass(frozen=True, slots=True)
class WebsocketOptions:
    """Arroyo's ``WebsocketTable`` plus our documented extensions.

    ``subscription_messages`` already includes the deprecated ``subscription_message`` (first,
    as Arroyo's ``make_operator`` puts it), which therefore stays ``None`` here. Header values
    keep their ``{{ VAR }}`` references.
    """

    endpoint: str = endpoint_option(
        "The WebSocket URL to connect to (ws or wss).", "wss://example.com:8080/ws"
    )
    headers: tuple[tuple[str, str], ...] = headers_option("the handshake")
    subscription_message: str | None = option(
        OptionKind.STRING,
        "[Deprecated] A text message to send after the socket opens; use subscription_messages.0.",
        examples=('{"type":"subscribe","channels":["updates"]}',),
    )
    subscription_messages: tuple[str, ...] = option(
        OptionKind.STRING_LIST,
        "Text messages sent in order after the socket opens (and again after every "
        "reconnect), written 'subscription_messages.0', 'subscription_messages.1', ...",
        default_factory=tuple,
        examples=('{"type":"subscribe","channels":["updates"]}',),
    )
    # Extensions beyond Arroyo (marked so in `arroyo-lite connectors` and the README).
    reconnect_delay_ms: int = reconnect_delay_option(
        "Wait before reconnecting after the socket closes (Arroyo: the engine's restart backoff)."
    )
    max_backoff_ms: int = max_backoff_option()
    heartbeat_interval_ms: int = heartbeat_option()


OPTIONS = OptionSet(
    WebsocketOptions,
    title="WebsocketTable",
    description="Options of a websocket table: the keys of Arroyo's table.json plus "
    "arroyo-lite extensions (marked x-extension).",
)
