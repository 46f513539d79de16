"""The options of a ``polling_http`` table, declared once (``TableConfig.connector_options``).

Each field is one WITH option (:func:`~arroyo_lite.connectors.option_spec.option`): Arroyo's
keys in Arroyo's ``from_options`` order, then arroyo-lite's extensions. The pulls, the JSON
Schema, the defaults and the ``arroyo-lite connectors`` listing derive from :data:`OPTIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from arroyo_lite.connectors.http_options import headers_option
from arroyo_lite.connectors.option_spec import OptionKind, OptionSet, option, option_group

STRING, INTEGER, BOOLEAN = OptionKind.STRING, OptionKind.INTEGER, OptionKind.BOOLEAN
NUMBER = OptionKind.NUMBER
DURATION = OptionKind.DURATION
#: Values of ``emit_behavior``: Arroyo's two, then arroyo-lite's.
EMIT_BEHAVIORS = ("all", "changed", "dedup", "snapshot")
#: ``pagination.type`` values (dlt ``rest_api``'s paginator names).
PAGINATION_KINDS = ("header_link", "json_link", "cursor", "offset", "page_number")
#: ``auth.type`` values.
AUTH_KINDS = ("basic", "bearer", "api_key", "oauth2_client_credentials")

# The key families whose every member is an arroyo-lite extension: a field named
# pagination_limit is the option 'pagination.limit' (see option_group).
_cursor = option_group("cursor", extension=True)
_dedup = option_group("dedup", extension=True)
_pagination = option_group("pagination", extension=True)
_auth = option_group("auth", extension=True)
_api_key = option_group("auth.api_key", extension=True)


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
    dedup_max_keys: int = _dedup(
        INTEGER,
        "emit_behavior = 'dedup': most keys remembered (the least recently seen are forgotten "
        "first; a forgotten key that comes back is emitted again). About 24 bytes per key.",
        default=1_000_000,
        exclusive_minimum=0,
    )
    dedup_ttl: float | None = _dedup(
        DURATION,
        "emit_behavior = 'dedup': forget a key not seen for this long (an interval such as "
        "interval '7' day or '12 hours'; a key that comes back after it is emitted again). "
        "Default: no time bound (dedup.max_keys still bounds the keys).",
        default=None,
        exclusive_minimum=0,
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
    cursor_path: str | None = _cursor(
        STRING,
        "Where [[ cursor ]] comes from: a path into the last successful JSON body "
        "('$.meta.next_since', 'items[-1].id').",
    )
    cursor_header: str | None = _cursor(
        STRING,
        "Where [[ cursor ]] comes from: a header of the last successful response.",
    )
    cursor_initial: str | None = _cursor(
        STRING,
        "The value of [[ cursor ]] before any response gave one (default: empty).",
    )
    pagination_type: str | None = _pagination(
        STRING,
        "Follow the pages of each poll: 'header_link' (Link: rel=\"next\"), 'json_link' (a "
        "next URL in the body), 'cursor' (a cursor in the body sent back as a query "
        "parameter), 'offset' (offset/limit), 'page_number'. Default: one request per poll.",
        enum=PAGINATION_KINDS,
    )
    pagination_max_pages: int = _pagination(
        INTEGER,
        "Most pages one poll follows; a poll that reaches it stops there and says so.",
        default=100,
        exclusive_minimum=0,
    )
    pagination_next_url_path: str | None = _pagination(
        STRING,
        "json_link: the path of the next page's URL in the body ('$.next', 'links.next').",
    )
    pagination_cursor_path: str | None = _pagination(
        STRING,
        "cursor: the path of the next cursor in the body ('$.next_cursor', 'data[-1].id').",
    )
    pagination_cursor_param: str = _pagination(
        STRING,
        "cursor: the query parameter the cursor is sent as.",
        default="cursor",
    )
    pagination_has_more_path: str | None = _pagination(
        STRING,
        "cursor, offset, page_number: a flag in the body; false stops ('has_more').",
    )
    pagination_limit: int = _pagination(
        INTEGER,
        "offset: records per page (a shorter page is the last).",
        default=100,
        exclusive_minimum=0,
    )
    pagination_offset_param: str = _pagination(
        STRING,
        "offset: the query parameter of the offset.",
        default="offset",
    )
    pagination_limit_param: str = _pagination(
        STRING,
        "offset: the query parameter of the limit.",
        default="limit",
    )
    pagination_page_param: str = _pagination(
        STRING,
        "page_number: the query parameter of the page number.",
        default="page",
    )
    pagination_start_page: int = _pagination(
        INTEGER,
        "page_number: the first page's number.",
        default=1,
        minimum=0,
    )
    pagination_total_path: str | None = _pagination(
        STRING,
        "offset: the path of the total number of records; page_number: of pages.",
    )
    pagination_records_path: str | None = _pagination(
        STRING,
        "offset, page_number: the path of the page's list of records, to stop on an empty "
        "(or, for offset, short) page (default: the body is the list).",
    )
    auth_type: str | None = _auth(
        STRING,
        "Credentials sent with every request: 'basic' (auth.username/auth.password), "
        "'bearer' (auth.token), 'api_key' (auth.api_key.*), 'oauth2_client_credentials' "
        "(auth.token_url, auth.client_id, auth.client_secret, auth.scope).",
        enum=AUTH_KINDS,
    )
    auth_username: str | None = _auth(
        STRING, "basic: the user name ({{ VAR }} allowed).", format="var-str"
    )
    auth_password: str | None = _auth(
        STRING, "basic: the password; use {{ VAR }}.", format="var-str"
    )
    auth_token: str | None = _auth(STRING, "bearer: the token; use {{ VAR }}.", format="var-str")
    auth_api_key_name: str = _api_key(
        STRING, "api_key: the header or query parameter name.", default="X-Api-Key"
    )
    auth_api_key_value: str | None = _api_key(
        STRING, "api_key: the key; use {{ VAR }}.", format="var-str"
    )
    auth_api_key_location: str = _api_key(
        STRING, "api_key: sent as a 'header' or a 'query' parameter.", default="header",
        enum=("header", "query"),
    )  # fmt: skip
    auth_token_url: str | None = _auth(
        STRING, "oauth2_client_credentials: the token endpoint (RFC 6749 section 4.4).",
        format="var-str",
    )  # fmt: skip
    auth_client_id: str | None = _auth(
        STRING, "oauth2_client_credentials: the client id ({{ VAR }} allowed).",
        format="var-str",
    )  # fmt: skip
    auth_client_secret: str | None = _auth(
        STRING, "oauth2_client_credentials: the client secret; use {{ VAR }}.",
        format="var-str",
    )  # fmt: skip
    auth_scope: str | None = _auth(
        STRING, "oauth2_client_credentials: the scope requested (space-separated)."
    )
    auth_client_auth: str = _auth(
        STRING, "oauth2_client_credentials: how the client authenticates to the token "
        "endpoint: 'basic' (HTTP Basic, RFC 6749 2.3.1) or 'body' (form parameters).",
        default="basic", enum=("basic", "body"),
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
