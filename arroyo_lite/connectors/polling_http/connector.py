"""The ``polling_http`` connector: WITH options -> :class:`PollingHttpOptions`.

The options are declared once, in :mod:`.options` (Arroyo's ``from_options`` order, then our
extensions); this module pulls them, checks the typed values against the schema derived from
that declaration, and adds the checks a schema cannot express. Beyond Arroyo, problems Arroyo
only finds when the operator starts (a bad URL, a bad header, a non-positive interval, a
missing ``{{ VAR }}``) are errors here. Every problem is reported (not just the first), without
cascades: a bad value counts as absent for the checks that follow. Header values are checked
after substitution, but secret values never appear in a message.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arroyo_lite.config import Format, TableConfig
from arroyo_lite.connectors.base import Connector, SourceContext, SourceOperator
from arroyo_lite.connectors.http_options import check_endpoint, check_headers
from arroyo_lite.connectors.options import MissingOptionError
from arroyo_lite.connectors.polling_http.options import OPTIONS, PollingHttpOptions
from arroyo_lite.errors import SqlError
from arroyo_lite.formats.decoders import DECODABLE_NAMES
from arroyo_lite.formats.records import RecordPath, RecordPathError
from arroyo_lite.secrets import (
    Secrets,
    redact_url,
    url_password,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from arroyo_lite.connectors.options import OptionReader, OptionValue
    from arroyo_lite.connectors.probing import ProbeResult, ProbeSkipped


class PollingHttpConnector(Connector):
    name = "polling_http"
    description = "Poll an HTTP server to produce events"
    source = True
    sink = False

    option_set = OPTIONS

    def parse_options(self, options: OptionReader, table: TableConfig) -> PollingHttpOptions:
        """Pull and check every option, reporting each problem through ``options.report``
        (a collecting reader gathers them all; a strict one raises the first)."""
        pulled = OPTIONS.pull(options)
        bad = OPTIONS.check(pulled, options)
        endpoint = pulled.values["endpoint"]
        problem = None if endpoint is None else check_endpoint(endpoint)
        if problem is not None and "endpoint" not in bad:
            options.report(
                options.error(
                    f"invalid endpoint '{redact_url(endpoint)}': {problem}",
                    pulled.where.get("endpoint"),
                    hint="{{ VAR }} is substituted in headers only (as in Arroyo); "
                    "write the URL itself"
                    if "{{" in endpoint
                    else "write a full URL such as 'https://api.example.com/v1/items'",
                ),
                "endpoint",
            )
        headers = self._headers(pulled.values["headers"], pulled.where.get("headers"), options)
        if table.format is None and not options.is_invalid("format"):
            first, *rest = DECODABLE_NAMES
            others = ", ".join(f"'{name}'" for name in rest)
            # (A bad format value is reported already; a misspelled key is reported as
            # unknown with a did-you-mean, and this error is then dropped.)
            options.report(
                MissingOptionError(
                    "'format' must be set for polling HTTP connection",
                    key="format",
                    position=options.clause_position,
                    hint=f"add format = '{first}' (or {others}) to the WITH clause",
                )
            )
        self._check_records(pulled.values["records.path"], pulled.where, table, options)
        self._check_modes(pulled.values, pulled.where, table, options)
        options_object: PollingHttpOptions = OPTIONS.build(pulled, headers=headers)
        return options_object

    @staticmethod
    def _check_records(
        text: str | None,
        where: Mapping[str, OptionValue],
        table: TableConfig,
        options: OptionReader,
    ) -> None:
        """``records.path`` parses, and the format can hold records (structured JSON)."""
        if text is None:
            return
        option = where.get("records.path")
        try:
            RecordPath.parse(text)
        except RecordPathError as e:
            options.report(options.error(str(e), option, hint=e.hint), "records.path")
            return
        fmt = table.format
        if fmt is None:
            return  # 'format must be set' is reported
        if fmt.format is not Format.JSON or fmt.unstructured:
            what = "json.unstructured" if fmt.format is Format.JSON else f"'{fmt.format.value}'"
            options.report(
                options.error(
                    f"'records.path' needs format = 'json' with declared columns, not {what}",
                    option,
                    hint="declare the records' fields as columns and use format = 'json'",
                ),
                "records.path",
            )
        elif table.framing is not None:
            options.report(
                options.error(
                    "'records.path' selects records in a whole body: remove 'framing'",
                    option,
                    hint="a body with a record path is one JSON document",
                ),
                "records.path",
            )

    @staticmethod
    def _check_modes(
        values: Mapping[str, Any],
        where: Mapping[str, OptionValue],
        table: TableConfig,
        options: OptionReader,
    ) -> None:
        """The emit behaviour's needs: a PRIMARY KEY for 'dedup', 'changed' for its option."""
        behavior = values["emit_behavior"] or "all"
        keys = [c.name for c in table.columns if c.primary_key]
        if behavior == "dedup" and not keys:
            options.report(
                options.error(
                    f"emit_behavior = '{behavior}' needs a PRIMARY KEY column",
                    where.get("emit_behavior"),
                    hint="mark the column that identifies a record: id TEXT PRIMARY KEY",
                ),
                "emit_behavior",
            )
        for column in table.columns:
            if column.primary_key and column.metadata_key is not None:
                options.report(
                    SqlError(
                        f"PRIMARY KEY column '{column.name}' cannot be a METADATA column",
                        position=column.position,
                        hint="a key comes from the records themselves",
                    )
                )
        compare = where.get("changed.compare")
        bad_behavior = options.is_invalid("emit_behavior")
        if compare is not None and behavior != "changed" and not bad_behavior:
            options.report(
                options.error(
                    "'changed.compare' applies only with emit_behavior = 'changed'",
                    compare,
                    hint="set emit_behavior = 'changed', or remove 'changed.compare'",
                ),
                "changed.compare",
            )

    _headers = staticmethod(check_headers)

    def secrets(self, config: TableConfig, env: Mapping[str, str]) -> Secrets:
        """The ``{{ VAR }}`` values of ``headers``, and the password of the endpoint's
        userinfo (``http://user:pass@host/``)."""
        endpoint = str(getattr(config.connector_options, "endpoint", "") or "")
        return super().secrets(config, env) | Secrets.of([url_password(endpoint) or ""])

    def metadata_fields(self) -> Mapping[str, str]:
        """HTTP metadata (arroyo-lite extensions: Arroyo's polling_http has none)."""
        from arroyo_lite.connectors.polling_http.metadata import FIELDS

        return FIELDS

    async def probe(
        self,
        config: TableConfig,
        env: Mapping[str, str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (the request's timeout)
        max_rows: int = 10,
    ) -> ProbeResult | ProbeSkipped:
        """The request the source would send, once, decoded (:mod:`.probe`)."""
        # Imported lazily, as the operator: validating SQL must not pull in aiohttp.
        from arroyo_lite.connectors.polling_http.probe import probe

        return await probe(config, env, timeout=timeout, max_rows=max_rows)

    def make_operator(self, config: TableConfig, context: SourceContext) -> SourceOperator:
        # Imported lazily: validating SQL must not pull in aiohttp and the runtime.
        from arroyo_lite.connectors.polling_http.operator import PollingHttpOperator

        return PollingHttpOperator(config, context)
