"""The ``websocket`` connector: WITH options -> :class:`WebsocketOptions`.

Arroyo's ``from_options``: ``endpoint``, ``headers``, the deprecated ``subscription_message``,
then ``subscription_messages.0``, ``.1``, ... up to the first missing index (a later index
after a gap is left over, hence an unknown option). Arroyo's words: ``required option
'endpoint' not set``, ``'format' must be set for WebSocket connection``, ``Cannot specify both
'subscription_message' and 'subscription_messages.0'``, its headers format error, and (found
here, where Arroyo only finds it when the source starts) ``invalid websocket URL '...': ...``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from arroyo_lite.config import TableConfig
from arroyo_lite.connectors.base import Connector, SourceContext, SourceOperator
from arroyo_lite.connectors.schema_check import check_options
from arroyo_lite.connectors.streaming.options import (
    DEFAULT_MAX_BACKOFF_MS,
    DEFAULT_RECONNECT_DELAY_MS,
    check_headers,
    require_format,
    url_problem,
)
from arroyo_lite.connectors.websocket.options import WebsocketOptions

if TYPE_CHECKING:
    from collections.abc import Mapping

    from arroyo_lite.connectors.options import OptionReader
    from arroyo_lite.connectors.probing import ProbeResult, ProbeSkipped

_KEYS = ("endpoint", "headers", "subscription_message", "reconnect_delay_ms", "max_backoff_ms")
SUBSCRIPTION_PREFIX = "subscription_messages."


class WebsocketConnector(Connector):
    name = "websocket"
    description = "Connect to a Websocket server"
    source = True
    sink = False
    schema_resource = ("arroyo_lite.connectors.websocket", "table.json")

    def parse_options(self, options: OptionReader, table: TableConfig) -> WebsocketOptions:
        """Pull and check every option; each problem goes through ``options.report``."""
        where = {k: o for k in _KEYS if (o := options.get(k)) is not None}
        endpoint = options.pull_opt_str("endpoint")
        headers_text = options.pull_opt_str("headers")
        single = options.pull_opt_str("subscription_message")
        messages: list[str] = []
        if single is not None:
            messages.append(single)
            first = options.get(SUBSCRIPTION_PREFIX + "0")
            if first is not None:
                options.report(
                    options.error(
                        "Cannot specify both 'subscription_message' and 'subscription_messages.0'",
                        first,
                        hint="move the message of 'subscription_message' to "
                        "'subscription_messages.0' and number the others after it",
                    )
                )
        index = 0
        while (key := f"{SUBSCRIPTION_PREFIX}{index}") in options:
            text = options.pull_opt_str(key)
            if text is not None:
                messages.append(text)
            index += 1
        options.know(*(f"{SUBSCRIPTION_PREFIX}{i}" for i in range(index + 1)))
        reconnect = options.pull_opt_i64("reconnect_delay_ms")
        max_backoff = options.pull_opt_i64("max_backoff_ms")
        values = {
            "endpoint": endpoint,
            "headers": headers_text,
            "subscription_message": single,
            "reconnect_delay_ms": reconnect,
            "max_backoff_ms": max_backoff,
        }
        bad = check_options(self.options_schema(), values, where, options)
        problem = None if endpoint is None else url_problem(endpoint, ("ws", "wss"))
        if problem is not None and "endpoint" not in bad:
            hint = "write a full URL such as 'wss://stream.example.com/feed'"
            if endpoint is not None and endpoint.startswith(("http://", "https://")):
                scheme = "wss" if endpoint.startswith("https") else "ws"
                hint = f"WebSocket URLs start with ws:// or wss://; did you mean '{scheme}:'?"
            options.report(
                options.error(
                    f"invalid websocket URL '{endpoint}': {problem}", where.get("endpoint"), hint
                ),
                "endpoint",
            )
        headers = check_headers(headers_text, where.get("headers"), options)
        require_format(options, table, "WebSocket")
        return WebsocketOptions(
            endpoint=endpoint or "",
            headers=headers,
            subscription_messages=tuple(messages),
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
        from arroyo_lite.connectors.websocket.operator import WebsocketOperator

        return WebsocketOperator(config, context)
