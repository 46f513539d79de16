"""The validated options of a ``websocket`` table (``TableConfig.connector_options``)."""

from __future__ import annotations

from dataclasses import dataclass

from arroyo_lite.connectors.streaming.options import (
    DEFAULT_MAX_BACKOFF_MS,
    DEFAULT_RECONNECT_DELAY_MS,
)


@dataclass(frozen=True, slots=True)
class WebsocketOptions:
    """Arroyo's ``WebsocketTable`` plus our documented extensions.

    ``subscription_messages`` already includes the deprecated ``subscription_message`` (first,
    as Arroyo's ``make_operator`` puts it). Header values keep their ``{{ VAR }}`` references.
    """

    endpoint: str
    headers: tuple[tuple[str, str], ...] = ()
    subscription_messages: tuple[str, ...] = ()
    # Extensions beyond Arroyo (marked so in `arroyo-lite connectors` and the README).
    reconnect_delay_ms: int = DEFAULT_RECONNECT_DELAY_MS
    max_backoff_ms: int = DEFAULT_MAX_BACKOFF_MS
