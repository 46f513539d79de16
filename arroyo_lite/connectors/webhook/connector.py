"""The ``webhook`` connector: WITH options -> :class:`WebhookOptions`, and its test request.

As Arroyo, a webhook is a sink only, ``endpoint`` is required and may hold ``{{ VAR }}``
(substituted from the environment, masked as a secret), ``headers`` is Arroyo's
comma-separated list, and ``format`` must be set. Beyond Arroyo, problems it finds only when
the operator starts (a bad URL after substitution, a bad header, a missing variable) are
errors at validation, each positioned at its value.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from arroyo_lite.config import TableConfig
from arroyo_lite.connectors.base import Connector, SinkOperator, SourceContext
from arroyo_lite.connectors.http_options import (
    check_endpoint,
    check_headers,
    missing_variables,
)
from arroyo_lite.connectors.options import require_format
from arroyo_lite.connectors.webhook.options import OPTIONS, WebhookOptions
from arroyo_lite.secrets import (
    MissingVariableError,
    Secrets,
    redact_url,
    substitute,
    url_password,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from arroyo_lite.connectors.options import OptionReader
    from arroyo_lite.connectors.probing import ProbeResult, ProbeSkipped

#: The body of ``arroyo-lite test``'s request (Arroyo's test message).
TEST_MESSAGE = b'{"message":"this is a test message from the Arroyo Webhook Sink"}'


class WebhookConnector(Connector):
    name = "webhook"
    description = "Sink results via Webhooks"
    source = False
    sink = True
    option_set = OPTIONS

    def parse_options(self, options: OptionReader, table: TableConfig) -> WebhookOptions:
        pulled = OPTIONS.pull(options)
        bad = OPTIONS.check(pulled, options)
        endpoint, where = pulled.values["endpoint"], pulled.where.get("endpoint")
        if endpoint is not None and "endpoint" not in bad:
            missing = missing_variables(endpoint, where, options, "endpoint")
            real = substitute(endpoint, options.env)[0] if not missing else None
            problem = None if real is None else check_endpoint(real)
            if problem is not None:
                shown = redact_url(endpoint) if real == endpoint else "(after substitution)"
                options.report(
                    options.error(
                        f"invalid endpoint '{shown}': {problem}",
                        where,
                        hint="write a full URL such as 'https://yourdomain.com/api/v1/webhooks'",
                    ),
                    "endpoint",
                )
        headers = check_headers(pulled.values["headers"], pulled.where.get("headers"), options)
        require_format(
            options, table, "'format' must be set for webhook connection",
            hint="add format = 'json' to the WITH clause",
        )  # fmt: skip
        result: WebhookOptions = OPTIONS.build(pulled, headers=headers)
        return result

    def secrets(self, config: TableConfig, env: Mapping[str, str]) -> Secrets:
        """The ``{{ VAR }}`` values of ``endpoint`` and ``headers``, and the password of the
        endpoint's userinfo (``https://user:pass@host/``)."""
        endpoint = str(getattr(config.connector_options, "endpoint", "") or "")
        with contextlib.suppress(MissingVariableError):
            endpoint = substitute(endpoint, env)[0]
        return super().secrets(config, env) | Secrets.of([url_password(endpoint) or ""])

    async def probe(
        self,
        config: TableConfig,
        env: Mapping[str, str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the request's timeout)
        max_rows: int = 10,
    ) -> ProbeResult | ProbeSkipped:
        """POST Arroyo's test message to the endpoint once and show the answer."""
        from arroyo_lite.connectors.webhook.operator import probe

        return await probe(config, env, TEST_MESSAGE, timeout=timeout)

    def make_sink(self, config: TableConfig, context: SourceContext) -> SinkOperator:
        # Imported lazily: validating SQL must not pull in aiohttp.
        from arroyo_lite.connectors.webhook.operator import WebhookSink

        return WebhookSink(config, context)
