"""The options of a ``polling_http`` table, declared once (``TableConfig.connector_options``).

Each field is one WITH option (:func:`~arroyo_lite.connectors.option_spec.option`): Arroyo's
keys in Arroyo's ``from_options`` order, then arroyo-lite's extensions. The pulls, the JSON
Schema, the defaults and the ``arroyo-lite connectors`` listing derive from :data:`OPTIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from arroyo_lite.connectors.http_options import headers_option
from arroyo_lite.connectors.option_spec import OptionKind, OptionSet, option

STRING, INTEGER, BOOLEAN = OptionKind.STRING, OptionKind.INTEGER, OptionKind.BOOLEAN
NUMBER = OptionKind.NUMBER
DURATION = OptionKind.DURATION
#: Values of ``emit_behavior``: Arroyo's two, then arroyo-lite's.
EMIT_BEHAVIORS = ("all", "changed", "dedup", "snapshot")
#: ``pagination.type`` values (dlt ``rest_api``'s paginator names).
PAGINATION_KINDS = ("header_link", "json_link", "cursor", "offset", "page_number")
#: ``auth.type`` values.
AUTH_KINDS = ("basic", "bearer", "api_key", "oauth2_client_credentials")


@dataclass(frozen=True, slots=True)
class PollingHttpOptions:
    """Arroyo's ``PollingHTTPTable`` plus our documented extensions.

    ``headers`` holds ``(name, value_template)`` pairs split on the first ``:`` of each
    comma-separated piece. Values still contain their ``{{ VAR }}`` references: the operator
    substitutes them from its environment when it starts, so no secret is stored in a config.
    """

    endpoint: str = option(
        STRING, "URL to request on every poll (http or https).", required=True, format="uri"
    )
    headers: tuple[tuple[str, str], ...] = headers_option(
        "every request", "Authorization: Bearer {{ API_TOKEN }},Accept: application/json"
    )
    method: str = option(
        STRING, "HTTP method (upper case).", default="GET", enum=("GET", "POST", "PUT", "PATCH")
    )
    body: str | None = option(
        STRING, "Request body, sent verbatim (no Content-Type is added).", default=None
    )
    poll_interval_ms: int = option(
        INTEGER,
        "Milliseconds between the starts of two polls. arroyo-lite rejects values <= 0.",
        default=1_000,
        exclusive_minimum=0,
    )
    emit_behavior: str = option(
        STRING,
        "'all' emits every response; 'changed' skips a body identical to the last one emitted; "
        "arroyo-lite adds 'dedup': with a PRIMARY KEY, a row is emitted only when its key is "
        "new or its content changed since that key was last emitted; and 'snapshot': each "
        "poll is the whole collection, the table (an updating table) holds the latest row per "
        "PRIMARY KEY, a key missing from a poll is deleted, and queries see the changes.",
        default="all",
        enum=EMIT_BEHAVIORS,
        extension_values=EMIT_BEHAVIORS[2:],
    )
    # Extensions beyond Arroyo (marked so in `arroyo-lite connectors` and the README).
    timeout_ms: int = option(
        INTEGER,
        "Timeout of a whole request, in milliseconds (Arroyo: fixed 5 s).",
        default=5_000,
        exclusive_minimum=0,
        extension=True,
    )
    max_body_bytes: int = option(
        INTEGER,
        "Largest response body accepted, in bytes (Arroyo: fixed 5 MiB).",
        default=5 * 1024 * 1024,
        exclusive_minimum=0,
        extension=True,
    )
    records_path: str | None = option(
        STRING,
        "Where the records are in each JSON body, as a JSONPath such as '$.data' or "
        "'$.features[*]': one row per element of the array there (or the object there); a path "
        "that selects nothing is an empty poll.",
        key="records.path",
        default=None,
        extension=True,
        examples=("$.features[*]",),
    )
    changed_compare: str = option(
        STRING,
        "What emit_behavior = 'changed' compares: 'body' (the bytes, as Arroyo) or 'rows' (the "
        "decoded rows, so a change in an undeclared field such as a request id is no change).",
        key="changed.compare",
        default="body",
        enum=("body", "rows"),
        extension=True,
    )
    dedup_max_keys: int = option(
        INTEGER,
        "emit_behavior = 'dedup': most keys remembered (the least recently seen are forgotten "
        "first; a forgotten key that comes back is emitted again). About 24 bytes per key.",
        key="dedup.max_keys",
        default=1_000_000,
        exclusive_minimum=0,
        extension=True,
    )
    dedup_ttl: float | None = option(
        DURATION,
        "emit_behavior = 'dedup': forget a key not seen for this long (an interval such as "
        "interval '7' day or '12 hours'; a key that comes back after it is emitted again). "
        "Default: no time bound (dedup.max_keys still bounds the keys).",
        key="dedup.ttl",
        default=None,
        exclusive_minimum=0,
        extension=True,
        examples=("interval '7' day",),
    )
    max_backoff_ms: int = option(
        INTEGER,
        "Cap of the exponential backoff after transient failures, in milliseconds (Arroyo "
        "does not back off).",
        default=60_000,
        exclusive_minimum=0,
        extension=True,
    )
    conditional_requests: bool = option(
        BOOLEAN,
        "Send If-None-Match / If-Modified-Since from the last answer's ETag / Last-Modified; "
        "a 304 is an unchanged poll.",
        default=True,
        extension=True,
    )
    query: tuple[tuple[str, str], ...] = option(
        STRING,
        "query.<name> = 'value': a query parameter, URL-encoded and merged with the "
        "endpoint's own query; {{ VAR }} and [[ now ]]-style per-poll values allowed.",
        family=True,
        default_factory=tuple,
        format="var-str",
        examples=("'query.since' = '[[ last_success | rfc3339 ]]'",),
        extension=True,
    )
    cursor_path: str | None = option(
        STRING,
        "Where [[ cursor ]] comes from: a path into the last successful JSON body "
        "('$.meta.next_since', 'items[-1].id').",
        key="cursor.path",
        extension=True,
    )
    cursor_header: str | None = option(
        STRING,
        "Where [[ cursor ]] comes from: a header of the last successful response.",
        key="cursor.header",
        extension=True,
    )
    cursor_initial: str | None = option(
        STRING,
        "The value of [[ cursor ]] before any response gave one (default: empty).",
        key="cursor.initial",
        extension=True,
    )
    pagination_type: str | None = option(
        STRING,
        "Follow the pages of each poll: 'header_link' (Link: rel=\"next\"), 'json_link' (a "
        "next URL in the body), 'cursor' (a cursor in the body sent back as a query "
        "parameter), 'offset' (offset/limit), 'page_number'. Default: one request per poll.",
        key="pagination.type",
        enum=PAGINATION_KINDS,
        extension=True,
    )
    pagination_max_pages: int = option(
        INTEGER,
        "Most pages one poll follows; a poll that reaches it stops there and says so.",
        key="pagination.max_pages",
        default=100,
        exclusive_minimum=0,
        extension=True,
    )
    pagination_next_url_path: str | None = option(
        STRING,
        "json_link: the path of the next page's URL in the body ('$.next', 'links.next').",
        key="pagination.next_url_path",
        extension=True,
    )
    pagination_cursor_path: str | None = option(
        STRING,
        "cursor: the path of the next cursor in the body ('$.next_cursor', 'data[-1].id').",
        key="pagination.cursor_path",
        extension=True,
    )
    pagination_cursor_param: str = option(
        STRING,
        "cursor: the query parameter the cursor is sent as.",
        key="pagination.cursor_param",
        default="cursor",
        extension=True,
    )
    pagination_has_more_path: str | None = option(
        STRING,
        "cursor, offset, page_number: a flag in the body; false stops ('has_more').",
        key="pagination.has_more_path",
        extension=True,
    )
    pagination_limit: int = option(
        INTEGER,
        "offset: records per page (a shorter page is the last).",
        key="pagination.limit",
        default=100,
        exclusive_minimum=0,
        extension=True,
    )
    pagination_offset_param: str = option(
        STRING,
        "offset: the query parameter of the offset.",
        key="pagination.offset_param",
        default="offset",
        extension=True,
    )
    pagination_limit_param: str = option(
        STRING,
        "offset: the query parameter of the limit.",
        key="pagination.limit_param",
        default="limit",
        extension=True,
    )
    pagination_page_param: str = option(
        STRING,
        "page_number: the query parameter of the page number.",
        key="pagination.page_param",
        default="page",
        extension=True,
    )
    pagination_start_page: int = option(
        INTEGER,
        "page_number: the first page's number.",
        key="pagination.start_page",
        default=1,
        minimum=0,
        extension=True,
    )
    pagination_total_path: str | None = option(
        STRING,
        "offset: the path of the total number of records; page_number: of pages.",
        key="pagination.total_path",
        extension=True,
    )
    pagination_records_path: str | None = option(
        STRING,
        "offset, page_number: the path of the page's list of records, to stop on an empty "
        "(or, for offset, short) page (default: the body is the list).",
        key="pagination.records_path",
        extension=True,
    )
    auth_type: str | None = option(
        STRING,
        "Credentials sent with every request: 'basic' (auth.username/auth.password), "
        "'bearer' (auth.token), 'api_key' (auth.api_key.*), 'oauth2_client_credentials' "
        "(auth.token_url, auth.client_id, auth.client_secret, auth.scope).",
        key="auth.type",
        enum=AUTH_KINDS,
        extension=True,
    )
    auth_username: str | None = option(
        STRING, "basic: the user name ({{ VAR }} allowed).", key="auth.username",
        format="var-str", extension=True,
    )  # fmt: skip
    auth_password: str | None = option(
        STRING, "basic: the password; use {{ VAR }}.", key="auth.password",
        format="var-str", extension=True,
    )  # fmt: skip
    auth_token: str | None = option(
        STRING, "bearer: the token; use {{ VAR }}.", key="auth.token",
        format="var-str", extension=True,
    )  # fmt: skip
    auth_api_key_name: str = option(
        STRING, "api_key: the header or query parameter name.", key="auth.api_key.name",
        default="X-Api-Key", extension=True,
    )  # fmt: skip
    auth_api_key_value: str | None = option(
        STRING, "api_key: the key; use {{ VAR }}.", key="auth.api_key.value",
        format="var-str", extension=True,
    )  # fmt: skip
    auth_api_key_location: str = option(
        STRING, "api_key: sent as a 'header' or a 'query' parameter.",
        key="auth.api_key.location", default="header", enum=("header", "query"),
        extension=True,
    )  # fmt: skip
    auth_token_url: str | None = option(
        STRING, "oauth2_client_credentials: the token endpoint (RFC 6749 section 4.4).",
        key="auth.token_url", format="var-str", extension=True,
    )  # fmt: skip
    auth_client_id: str | None = option(
        STRING, "oauth2_client_credentials: the client id ({{ VAR }} allowed).",
        key="auth.client_id", format="var-str", extension=True,
    )  # fmt: skip
    auth_client_secret: str | None = option(
        STRING, "oauth2_client_credentials: the client secret; use {{ VAR }}.",
        key="auth.client_secret", format="var-str", extension=True,
    )  # fmt: skip
    auth_scope: str | None = option(
        STRING, "oauth2_client_credentials: the scope requested (space-separated).",
        key="auth.scope", extension=True,
    )  # fmt: skip
    auth_client_auth: str = option(
        STRING, "oauth2_client_credentials: how the client authenticates to the token "
        "endpoint: 'basic' (HTTP Basic, RFC 6749 2.3.1) or 'body' (form parameters).",
        key="auth.client_auth", default="basic", enum=("basic", "body"), extension=True,
    )  # fmt: skip

    rate_limit_requests_per_second: float | None = option(
        NUMBER,
        "Most requests per second sent to the endpoint's host (scheme, host and port), "
        "shared by every table of the session that sets it for that host (the lowest value "
        "applies); pages and retries count. Server rate-limit headers are honoured anyway.",
        key="rate_limit.requests_per_second",
        exclusive_minimum=0,
        extension=True,
        examples=("0.5",),
    )


OPTIONS = OptionSet(
    PollingHttpOptions,
    title="PollingHTTPTable",
    description="Options of a polling_http table: the keys of Arroyo's table.json plus "
    "arroyo-lite extensions (marked x-extension).",
)
