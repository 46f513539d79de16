"""The validated options of an ``sse`` table (``TableConfig.connector_options``)."""

from __future__ import annotations

from dataclasses import dataclass

from arroyo_lite.connectors.streaming.options import (
    DEFAULT_MAX_BACKOFF_MS,
    DEFAULT_RECONNECT_DELAY_MS,
)


@dataclass(frozen=True, slots=True)
class SseOptions:
    """Arroyo's ``SseTable`` plus our documented extensions.

    ``headers`` holds ``(name, value_template)`` pairs; ``{{ VAR }}`` references are
    substituted when the operator connects, so no secret is stored in a config. ``events`` is
    empty for "every event type".
    """

    endpoint: str
    headers: tuple[tuple[str, str], ...] = ()
    events: tuple[str, ...] = ()
    # Extensions beyond Arroyo (marked so in `arroyo-lite connectors` and the README).
    reconnect_delay_ms: int = DEFAULT_RECONNECT_DELAY_MS
    max_backoff_ms: int = DEFAULT_MAX_BACKOFF_MS
