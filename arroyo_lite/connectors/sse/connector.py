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
from arroyo_lite.connectors.base import SourceContext, SourceOperator
from arroyo_lite.connectors.http_options import check_headers
from arroyo_lite.connectors.sse.options import OPTIONS, SseOptions, split_events
from arroyo_lite.connectors.streaming.connector import PushConnector
from arroyo_lite.connectors.streaming.options import (
    check_endpoint,
    require_push_format,
)

if TYPE_CHECKING:
    from arroyo_lite.connectors.options import OptionReader


class SseConnector(PushConnector):
    name = "sse"
    description = "Connect to a SSE/EventSource server"
    source = True
    sink = False
    option_set = OPTIONS

    def parse_options(self, options: OptionReader, table: TableConfig) -> SseOptions:
        """Pull and check every option; each problem goes through ``options.report``."""
        pulled = OPTIONS.pull(options)
        bad = OPTIONS.check(pulled, options)
        check_endpoint(pulled, bad, options, "SSE", ("http", "https"),
                       "https://stream.example.com/v2/events")  # fmt: skip
        headers = check_headers(pulled.values["headers"], pulled.where.get("headers"), options)
        events = pulled.values["events"]
        require_push_format(options, table, "SSE")
        sse: SseOptions = OPTIONS.build(
            pulled, headers=headers, events=split_events(events) if events else ()
        )
        return sse

    def make_operator(self, config: TableConfig, context: SourceContext) -> SourceOperator:
        # Imported lazily: validating SQL must not pull in aiohttp and the runtime.
        from arroyo_lite.connectors.sse.operator import SseOperator

        return SseOperator(config, context)
