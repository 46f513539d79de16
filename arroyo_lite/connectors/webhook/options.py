"""The options of a ``webhook`` table, declared once: Arroyo's ``WebhookTable``
(``endpoint``, ``headers``) plus arroyo-lite's extensions."""

from __future__ import annotations

from dataclasses import dataclass

from arroyo_lite.connectors.option_spec import OptionKind, OptionSet, option

STRING, INTEGER = OptionKind.STRING, OptionKind.INTEGER

#: Arroyo's ``MAX_INFLIGHT``: requests a webhook sink has open at once.
MAX_INFLIGHT = 50


@dataclass(frozen=True, slots=True)
class WebhookOptions:
    """``headers`` holds ``(name, value_template)`` pairs; values keep their ``{{ VAR }}``
    references until the operator starts (no secret is stored in a config)."""

    endpoint: str = option(
        STRING,
        "The endpoint that should receive the webhook",
        required=True,
        format="var-str",
        examples=("https://yourdomain.com/api/v1/webhooks",),
    )
    headers: tuple[tuple[str, str], ...] = option(
        STRING,
        "Optional, comma separated list of headers to send with the webhook; {{ VAR }} is "
        "read from the environment.",
        default_factory=tuple,
        format="var-str",
        examples=("Authentication: Basic my-auth-secret,Content-Type: application/json",),
    )
    # Extensions beyond Arroyo (marked so in `arroyo-lite connectors` and the README).
    max_inflight: int = option(
        INTEGER,
        f"Requests in flight at once (Arroyo: fixed {MAX_INFLIGHT}).",
        default=MAX_INFLIGHT,
        exclusive_minimum=0,
        extension=True,
    )
    timeout_ms: int = option(
        INTEGER,
        "Timeout of one request, in milliseconds (Arroyo: fixed 5 s).",
        default=5_000,
        exclusive_minimum=0,
        extension=True,
    )
    max_backoff_ms: int = option(
        INTEGER,
        "Cap of the exponential backoff between retries of a failed request, in "
        "milliseconds (Arroyo: fixed 5 s).",
        default=5_000,
        exclusive_minimum=0,
        extension=True,
    )


OPTIONS = OptionSet(
    WebhookOptions,
    title="WebhookTable",
    description="Options of a webhook sink: the keys of Arroyo's table.json plus arroyo-lite "
    "extensions (marked x-extension).",
)
