"""The options of a ``polling_http`` table, declared once (``TableConfig.connector_options``).

Each field is one WITH option (:func:`~arroyo_lite.connectors.option_spec.option`): Arroyo's
keys in Arroyo's ``from_options`` order, then arroyo-lite's extensions. The pulls, the JSON
Schema, the defaults and the ``arroyo-lite connectors`` listing derive from :data:`OPTIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from arroyo_lite.connectors.option_spec import OptionKind, OptionSet, option

STRING, INTEGER = OptionKind.STRING, OptionKind.INTEGER
#: Values of ``emit_behavior``: Arroyo's two, then arroyo-lite's.
EMIT_BEHAVIORS = ("all", "changed", "dedup")


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
    headers: tuple[tuple[str, str], ...] = option(
        STRING,
        "Comma-separated 'Name: value' pairs sent with every request; {{ VAR }} is read from "
        "the environment.",
        default_factory=tuple,
        format="var-str",
        examples=("Authorization: Bearer {{ API_TOKEN }},Accept: application/json",),
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
        "new or its content changed since that key was last emitted.",
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
    max_backoff_ms: int = option(
        INTEGER,
        "Cap of the exponential backoff after transient failures, in milliseconds (Arroyo "
        "does not back off).",
        default=60_000,
        exclusive_minimum=0,
        extension=True,
    )


OPTIONS = OptionSet(
    PollingHttpOptions,
    title="PollingHTTPTable",
    description="Options of a polling_http table: the keys of Arroyo's table.json plus "
    "arroyo-lite extensions (marked x-extension).",
)
