"""The options of an ``sse`` table, declared once (``TableConfig.connector_options``).

Arroyo's keys in Arroyo's ``from_options`` order (``endpoint``, ``headers``, ``events``), then
arroyo-lite's extensions. The pulls, the JSON Schema, the defaults and the ``arroyo-lite
connectors`` listing derive from :data:`OPTIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from arroyo_lite.connectors.http_options import headers_option
from arroyo_lite.connectors.option_spec import OptionKind, OptionSet, option
from arroyo_lite.connectors.streaming.options import (
    endpoint_option,
    max_backoff_option,
    read_timeout_option,
    reconnect_delay_option,
)


def split_events(text: str) -> tuple[str, ...]:
    """The event types of an ``events`` value: comma-separated, trimmed (an extension: Arroyo
    does not trim), empty names dropped."""
    return tuple(name.strip() for name in text.split(",") if name.strip())


def _names_a_type(text: str) -> tuple[str, str | None] | None:
    # Beyond Arroyo: a list naming no type would be a filter that matches nothing.
    if split_events(text):
        return None
    return (
        f"invalid value for 'events': '{text}' (no event type named)",
        "name the event types to keep, e.g. events = 'update,delete', or remove 'events' "
        "to keep them all",
    )


@dataclass(frozen=True, slots=True)
class SseOptions:
    """Arroyo's ``SseTable`` plus our documented extensions.

    ``headers`` holds ``(name, value_template)`` pairs; ``{{ VAR }}`` references are
    substituted when the operator connects, so no secret is stored in a config. ``events`` is
    empty for "every event type".
    """

    endpoint: str = endpoint_option(
        "The event stream to connect to (http or https).", "https://example.com:8080/sse"
    )
    headers: tuple[tuple[str, str], ...] = headers_option("the request")
    events: tuple[str, ...] = option(
        OptionKind.STRING,
        "Comma-separated event types to keep (the 'event:' field; 'message' when absent); "
        "default: every event.",
        default_factory=tuple,
        examples=("update,delete",),
        check=_names_a_type,
    )
    # Extensions beyond Arroyo (marked so in `arroyo-lite connectors` and the README).
    reconnect_delay_ms: int = reconnect_delay_option(
        "Wait before reconnecting after the stream ends; a 'retry:' field from the server "
        "replaces it (Arroyo: the client library's 1 s)."
    )
    max_backoff_ms: int = max_backoff_option()
    read_timeout_ms: int = read_timeout_option()


OPTIONS = OptionSet(
    SseOptions,
    title="SSETable",
    description="Options of an sse table (Server-Sent Events): the keys of Arroyo's "
    "table.json plus arroyo-lite extensions (marked x-extension).",
)
