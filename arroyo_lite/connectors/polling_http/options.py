"""The options of a ``polling_http`` table, declared once (``TableConfig.connector_options``).

Each field is one WITH option (:func:`~arroyo_lite.connectors.option_spec.option`): Arroyo's
keys in Arroyo's ``from_options`` order, then arroyo-lite's extensions. The pulls, the JSON
Schema, the defaults and the ``arroyo-lite connectors`` listing derive from :data:`OPTIONS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from arroyo_lite.connectors.option_spec import OptionKind, OptionSet, option

STRING, INTEGER = OptionKind.STRING, OptionKind.INTEGER


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
        "'all' emits every response; 'changed' skips a body identical to the last one emitted.",
        default="all",
        enum=("all", "changed"),
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
