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
from arroyo_lite.connectors.base import SourceContext, SourceOperator
from arroyo_lite.connectors.http_options import check_headers
from arroyo_lite.connectors.streaming.connector import PushConnector
from arroyo_lite.connectors.streaming.options import (
    check_endpoint,
    require_push_format,
)
from arroyo_lite.connectors.websocket.options import OPTIONS, WebsocketOptions

if TYPE_CHECKING:
    from arroyo_lite.connectors.options import OptionReader

SUBSCRIPTION_PREFIX = "subscription_messages."


class WebsocketConnector(PushConnector):
    name = "websocket"
    description = "Connect to a Websocket server"
    source = True
    sink = False
    option_set = OPTIONS

    def parse_options(self, options: OptionReader, table: TableConfig) -> WebsocketOptions:
        """Pull and check every option; each problem goes through ``options.report``."""
        first = options.get(SUBSCRIPTION_PREFIX + "0")
        if "subscription_message" in options and first is not None:
            options.report(
                options.error(
                    "Cannot specify both 'subscription_message' and 'subscription_messages.0'",
                    first,
                    hint="move the message of 'subscription_message' to "
                    "'subscription_messages.0' and number the others after it",
                )
            )
        pulled = OPTIONS.pull(options)
        bad = OPTIONS.check(pulled, options)
        check_endpoint(pulled, bad, options, "websocket", ("ws", "wss"),
                       "wss://stream.example.com/feed")  # fmt: skip
        headers = check_headers(pulled.values["headers"], pulled.where.get("headers"), options)
        require_push_format(options, table, "WebSocket")
        single = pulled.values["subscription_message"]
        messages = ([single] if single is not None else []) + list(
            pulled.values["subscription_messages"] or ()
        )
        websocket: WebsocketOptions = OPTIONS.build(
            pulled, headers=headers, subscription_message=None,
            subscription_messages=tuple(messages),
        )  # fmt: skip
        return websocket

    def make_operator(self, config: TableConfig, context: SourceContext) -> SourceOperator:
        # Imported lazily: validating SQL must not pull in aiohttp and the runtime.
        from arroyo_lite.connectors.websocket.operator import WebsocketOperator

        return WebsocketOperator(config, context)
