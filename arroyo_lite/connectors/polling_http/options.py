"""The validated options of a ``polling_http`` table (``TableConfig.connector_options``)."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_POLL_INTERVAL_MS = 1_000
DEFAULT_TIMEOUT_MS = 5_000
DEFAULT_MAX_BODY_BYTES = 5 * 1024 * 1024
DEFAULT_MAX_BACKOFF_MS = 60_000


@dataclass(frozen=True, slots=True)
class PollingHttpOptions:
    """Arroyo's ``PollingHTTPTable`` plus our documented extensions.

    ``headers`` holds ``(name, value_template)`` pairs split on the first ``:`` of each
    comma-separated piece. Values still contain their ``{{ VAR }}`` references: the operator
    substitutes them from its environment when it starts, so no secret is stored in a config.
    """

    endpoint: str
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    poll_interval_ms: int = DEFAULT_POLL_INTERVAL_MS
    emit_behavior: str = "all"
    # Extensions beyond Arroyo (marked so in `arroyo-lite connectors` and the README).
    timeout_ms: int = DEFAULT_TIMEOUT_MS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_backoff_ms: int = DEFAULT_MAX_BACKOFF_MS
