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

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from arroyo_lite.config import Format, TableConfig
from arroyo_lite.connectors.base import Connector, SourceContext, SourceOperator
from arroyo_lite.connectors.http_options import (
    check_endpoint,
    check_headers,
    report_missing_variables,
)
from arroyo_lite.connectors.options import require_format
from arroyo_lite.connectors.polling_http.options import OPTIONS, PollingHttpOptions
from arroyo_lite.connectors.polling_http.templates import (
    SAMPLE_VALUES,
    EnvRef,
    Template,
    TemplateError,
    parse,
)
from arroyo_lite.errors import SqlError
from arroyo_lite.formats.decoders import DECODABLE_NAMES
from arroyo_lite.formats.json_path import JsonPath, JsonPathError, value_path
from arroyo_lite.formats.records import RecordPath
from arroyo_lite.secrets import (
    VAR_PATTERN,
    Secrets,
    redact_url,
    url_password,
    variables,
)

if TYPE_CHECKING:

    from arroyo_lite.connectors.option_spec import Pulled
    from arroyo_lite.connectors.options import OptionReader, OptionValue
    from arroyo_lite.connectors.probing import ProbeResult, ProbeSkipped

_NAMES_CURSOR = re.compile(r"\[\[\s*cursor\s*(\||]])")
ENDPOINT_VAR_HINT = (
    "{{ VAR }} is not substituted in the endpoint (as in Arroyo: a URL ends up in logs); "
    "put the secret in headers, a 'query.<name>' option or an 'auth.*' option"
)
#: Which ``pagination.type`` reads each sub-option.
PAGINATION_SUB_OPTIONS = {
    "pagination.next_url_path": ("json_link",),
    "pagination.cursor_path": ("cursor",),
    "pagination.cursor_param": ("cursor",),
    "pagination.has_more_path": ("cursor", "offset", "page_number"),
    "pagination.limit": ("offset",),
    "pagination.offset_param": ("offset",),
    "pagination.limit_param": ("offset",),
    "pagination.page_param": ("page_number",),
    "pagination.start_page": ("page_number",),
    "pagination.total_path": ("offset", "page_number"),
    "pagination.records_path": ("offset", "page_number"),
}
#: The auth options whose values may carry ``{{ VAR }}`` secrets.
AUTH_SECRET_KEYS = (
    "auth.username", "auth.password", "auth.token", "auth.api_key.value", "auth.token_url",
    "auth.client_id", "auth.client_secret",
)  # fmt: skip
#: What each ``auth.type`` needs.
AUTH_REQUIRED = {
    "basic": ("auth.username", "auth.password"),
    "bearer": ("auth.token",),
    "api_key": ("auth.api_key.value",),
    "oauth2_client_credentials": ("auth.token_url", "auth.client_id", "auth.client_secret"),
}
AUTH_NEEDS_TYPE = (*AUTH_SECRET_KEYS, "auth.scope", "auth.api_key.name", "auth.api_key.location")
def _shape(endpoint: str, env: Mapping[str, str]) -> str | None:
    """The endpoint as one poll would send it (per-poll values as sample values), to check
    the URL's shape; ``None`` when it cannot be parsed (an unknown value, reported on its
    own)."""
    try:
        template = parse(endpoint)
    except TemplateError:
        return None
    # {{ VAR }} stays as written: it is not substituted in the endpoint (check_endpoint says so).
    return "".join(
        part if isinstance(part, str)
        else "{{ " + part.name + " }}" if isinstance(part, EnvRef)
        else SAMPLE_VALUES.text(part)
        for part in template.parts
    )  # fmt: skip


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
        if pulled.values["body"] is not None and "body" not in bad:
            self._template(pulled.values["body"], pulled.where.get("body"), options, "body")
        if pulled.values["endpoint"] is not None and "endpoint" not in bad:
            try:
                parse(pulled.values["endpoint"])
            except TemplateError as e:
                message = f"invalid value for 'endpoint': {e.message}"
                options.report(options.error(message, pulled.where.get("endpoint"), e.hint))
        for name, text in pulled.values["query"] or ():
            key = f"query.{name}"
            self._template(text, pulled.where.get(key), options, key)
        self._cursor(pulled, options)
        self._pagination(pulled, options)
        self._auth(pulled, options)
        endpoint = pulled.values["endpoint"]
        shape = None if endpoint is None else _shape(endpoint, options.env)
        problem = None if shape is None else check_endpoint(shape)
        if problem is not None and "endpoint" not in bad and not options.is_invalid("endpoint"):
            options.report(
                options.error(
                    f"invalid endpoint '{redact_url(endpoint)}': {problem}",
                    pulled.where.get("endpoint"),
                    hint=ENDPOINT_VAR_HINT
                    if VAR_PATTERN.search(endpoint)
                    else "write a full URL such as 'https://api.example.com/v1/items'",
                ),
                "endpoint",
            )
        headers = self._headers(pulled.values["headers"], pulled.where.get("headers"), options)
        first, *rest = DECODABLE_NAMES
        others = ", ".join(f"'{name}'" for name in rest)
        require_format(
            options, table, "'format' must be set for polling HTTP connection",
            hint=f"add format = '{first}' (or {others}) to the WITH clause",
        )  # fmt: skip
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
        if not _path_is_valid("records.path", text, RecordPath.parse, where, options):
            return
        option = where.get("records.path")
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
        """The emit behaviour's needs: a PRIMARY KEY for 'dedup' and 'snapshot', 'changed'
        for its option."""
        behavior = values["emit_behavior"] or "all"
        keys = [c.name for c in table.columns if c.primary_key]
        if behavior in ("dedup", "snapshot") and not keys:
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
        ttl = where.get("dedup.ttl")
        if ttl is not None and behavior != "dedup" and not options.is_invalid("emit_behavior"):
            options.report(
                options.error(
                    "'dedup.ttl' applies only with emit_behavior = 'dedup'",
                    ttl,
                    hint="set emit_behavior = 'dedup', or remove 'dedup.ttl'",
                ),
                "dedup.ttl",
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

    @staticmethod
    def _template(
        text: str, option: OptionValue | None, options: OptionReader, key: str
    ) -> Template | None:
        """Parse one templated value; report an unknown ``[[ value ]]`` or unset ``{{ VAR }}``."""
        try:
            template = parse(text)
        except TemplateError as e:
            message = f"invalid value for '{key}': {e.message}"
            options.report(options.error(message, option, e.hint), key)
            return None
        report_missing_variables(template.variables, option, options, key)
        return template

    @staticmethod
    def _cursor(pulled: Pulled, options: OptionReader) -> None:
        """``cursor.path`` must be a path; ``[[ cursor ]]`` needs exactly one source."""
        path, header = pulled.values["cursor.path"], pulled.values["cursor.header"]
        if path is not None:
            _path_is_valid("cursor.path", path, value_path, pulled.where, options)
        if path is not None and header is not None:
            options.report(
                options.error(
                    "set one of 'cursor.path' and 'cursor.header', not both",
                    pulled.where.get("cursor.header"),
                ),
                "cursor.header",
            )
        texts = {key: pulled.values[key] for key in ("endpoint", "body")}
        headers = options.consumed("headers")
        texts["headers"] = headers.text if headers is not None else None
        texts.update((f"query.{name}", text) for name, text in pulled.values["query"] or ())
        named = [key for key, text in texts.items() if text and _NAMES_CURSOR.search(text)]
        if named and path is None and header is None:
            options.report(
                options.error(
                    "[[ cursor ]] is used but no cursor is read from the responses",
                    pulled.where.get(named[0]),
                    hint="add 'cursor.path' = '$.next_cursor' (a path into the JSON body) or "
                    "'cursor.header' = 'X-Next-Cursor'",
                ),
            )

    @staticmethod
    def _pagination(pulled: Pulled, options: OptionReader) -> None:
        """Every path compiles; a sub-option of another kind (or of none) is an error."""
        kind = pulled.values["pagination.type"]
        for key, kinds in PAGINATION_SUB_OPTIONS.items():
            where = pulled.where.get(key)
            if where is None:
                continue
            if key.endswith("_path") and pulled.values[key] is not None:
                _path_is_valid(key, pulled.values[key], value_path, pulled.where, options)
            if kind not in kinds and not options.is_invalid("pagination.type") and not (
                options.is_invalid(key)
            ):
                shown = " or ".join(f"'{k}'" for k in kinds)
                options.report(
                    options.error(
                        f"'{key}' is only read with 'pagination.type' = {shown}",
                        where,
                        hint="set 'pagination.type', or remove the option",
                    ),
                    key,
                )

    def _auth(self, pulled: Pulled, options: OptionReader) -> None:
        """``auth.type`` needs its credentials; each credential's variables must be set."""
        kind = pulled.values["auth.type"]
        for key in AUTH_SECRET_KEYS:
            if pulled.values[key] is not None:
                self._template(pulled.values[key], pulled.where.get(key), options, key)
        if kind is None:
            for key in AUTH_NEEDS_TYPE:
                if key in pulled.where and not options.is_invalid(key):
                    options.report(
                        options.error(
                            f"'{key}' is only read with 'auth.type' set",
                            pulled.where[key],
                            hint="add 'auth.type' = '...' (basic, bearer, api_key or "
                            "oauth2_client_credentials), or remove the option",
                        ),
                        key,
                    )
            return
        for key in AUTH_REQUIRED.get(kind, ()):
            if pulled.values[key] is None and not options.is_invalid(key):
                options.report(
                    options.missing(key, f"add '{key}' = '{{{{ VAR }}}}' to the WITH clause")
                )

    def secrets(self, config: TableConfig, env: Mapping[str, str]) -> Secrets:
        """The values of every ``{{ VAR }}`` in the endpoint, query, headers, body and auth
        options, and the password of the endpoint's userinfo (``http://user:pass@host/``)."""
        options = config.connector_options
        if not isinstance(options, PollingHttpOptions):
            return super().secrets(config, env)
        texts = [options.endpoint, options.body or ""]
        texts += [getattr(options, key.replace(".", "_")) or "" for key in AUTH_SECRET_KEYS]
        texts += [value for _, value in options.headers + options.query]
        names = {name for text in texts for name in variables(text)}
        found = Secrets.of(env[n] for n in sorted(names) if n in env)
        return found | Secrets.of([url_password(options.endpoint) or ""])

    @staticmethod
    def _headers(
        text: str | None, option: OptionValue | None, options: OptionReader
    ) -> tuple[tuple[str, str], ...]:
        """Split and check ``headers`` (:func:`~arroyo_lite.connectors.http_options.
        check_headers`), values also checked as per-poll templates (``[[ name ]]``)."""
        return check_headers(text, option, options, check_value=_template_problem)

    def updating(self, config: TableConfig) -> bool:
        """``emit_behavior = 'snapshot'`` tables are updating tables (:mod:`.snapshot`), as
        ``debezium_json`` ones are."""
        return self.restores_rows(config) or super().updating(config)

    def restores_rows(self, config: TableConfig) -> bool:
        """A ``snapshot`` source's state holds its current rows, re-emitted on start."""
        options = config.connector_options
        return getattr(options, "emit_behavior", None) == "snapshot"

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


def _template_problem(value: str) -> tuple[str, str | None] | None:
    """Why a header value is not a valid per-poll template (``None``: it is one)."""
    try:
        parse(value)
    except TemplateError as e:
        return e.message, e.hint
    return None


def _path_is_valid(
    key: str,
    text: str,
    parse: Callable[[str], JsonPath | RecordPath],
    where: Mapping[str, OptionValue],
    options: OptionReader,
) -> bool:
    """Parse the path option ``key`` by its use's rule; a bad one is reported (the one wording
    of every path option: ``invalid value for 'key': what is wrong``, at the option)."""
    try:
        parse(text)
    except JsonPathError as e:
        options.report(
            options.error(f"invalid value for '{key}': {e}", where.get(key), hint=e.hint), key
        )
        return False
    return True
