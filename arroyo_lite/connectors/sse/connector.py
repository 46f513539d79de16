"""The ``sse`` connector: WITH options -> :class:`SseOptions`.

Arroyo's ``from_options`` order (``endpoint``, ``headers``, ``events``), then our extensions
(``reconnect_delay_ms``, ``max_backoff_ms``), then the typed values against ``table.json``.
Arroyo's words: ``required option 'endpoint' not set``, ``'format' must be set for SSE
connection``, its headers format error, and (found here, where Arroyo only finds it when the
source starts) ``invalid SSE URL '...': ...``. Beyond Arroyo: event names are trimmed, and an
``events`` list with no name in it is an error instead of a filter that matches nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arroyo_lite.config import TableConfig
from arroyo_lite.connectors.base import Connector, SourceContext, SourceOperator
from arroyo_lite.connectors.schema_check import check_options
from arroyo_lite.connectors.sse.options import SseOptions
from arroyo_lite.connectors.streaming.options import (
    DEFAULT_MAX_BACKOFF_MS,
    DEFAULT_RECONNECT_DELAY_MS,
    check_headers,
    require_format,
    url_problem,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from arroyo_lite.connectors.options import OptionReader
    from arroyo_lite.connectors.probing import ProbeResult, ProbeSkipped

_KEYS = ("endpoint", "headers", "events", "reconnect_delay_ms", "max_backoff_ms")


class SseConnector(Connector):
    name = "sse"
    description = "Connect to a SSE/EventSource server"
    source = True
    sink = False
    schema_resource = ("arroyo_lite.connectors.sse", "table.json")

    def parse_options(self, options: OptionReader, table: TableConfig) -> SseOptions:
        """Pull and check every option; each problem goes through ``options.report``."""
        where = {k: o for k in _KEYS if (o := options.get(k)) is not None}
        endpoint = options.pull_opt_str("endpoint")
        headers_text = options.pull_opt_str("headers")
        events_text = options.pull_opt_str("events")
        reconnect = options.pull_opt_i64("reconnect_delay_ms")
        max_backoff = options.pull_opt_i64("max_backoff_ms")
        values = {
            "endpoint": endpoint,
            "headers": headers_text,
            "events": events_text,
            "reconnect_delay_ms": reconnect,
            "max_backoff_ms": max_backoff,
        }
        bad = check_options(self.options_schema(), values, where, options)
        problem = None if endpoint is None else url_problem(endpoint, ("http", "https"))
        if problem is not None and "endpoint" not in bad:
            options.report(
                options.error(
                    f"invalid SSE URL '{endpoint}': {problem}",
                    where.get("endpoint"),
                    hint="write a full URL such as 'https://stream.example.com/v2/events'",
                ),
                "endpoint",
            )
        headers = check_headers(headers_text, where.get("headers"), options)
        events: tuple[str, ...] = ()
        if events_text is not None:
            events = tuple(e.strip() for e in events_text.split(",") if e.strip())
            if not events:
                options.report(
                    options.error(
                        f"invalid value for 'events': '{events_text}' (no event type named)",
                        where.get("events"),
                        hint="name the event types to keep, e.g. events = 'update,delete', "
                        "or remove 'events' to keep them all",
                    ),
                    "events",
                )
        require_format(options, table, "SSE")
        return SseOptions(
            endpoint=endpoint or "",
            headers=headers,
            events=events,
            reconnect_delay_ms=DEFAULT_RECONNECT_DELAY_MS if reconnect is None else reconnect,
            max_backoff_ms=DEFAULT_MAX_BACKOFF_MS if max_backoff is None else max_backoff,
        )

    async def probe(
        self,
        config: TableConfig,
        env: Mapping[str, str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the wait for a first message)
        max_rows: int = 10,
    ) -> ProbeResult | ProbeSkipped:
        """Connect as the source would and decode the first messages (:mod:`..streaming.probe`)."""
        from arroyo_lite.connectors.streaming.probe import probe_stream

        return await probe_stream(config, env, timeout=timeout, max_rows=max_rows)

    def make_operator(self, config: TableConfig, context: SourceContext) -> SourceOperator:
        # Imported lazily: validating SQL must not pull in aiohttp and the runtime.
        from arroyo_lite.connectors.sse.operator import SseOperator

        return SseOperator(config, context)
