"""Options the push sources share: their declarations (``endpoint``, the reconnect
extensions), URL checks, ``headers`` substitution.

``headers`` follows Arroyo's rules exactly as the other HTTP connectors do (comma-separated
``Name: value`` pairs, ``{{ VAR }}`` substituted in values at run time), so its declaration
and its check are :mod:`arroyo_lite.connectors.http_options`'s ``headers_option`` and
``check_headers``: one rule, one wording. (Per-poll
``[[ name ]]`` values are ``polling_http``'s; a push source sends its headers once.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from arroyo_lite.connectors.http_options import url_problem
from arroyo_lite.connectors.option_spec import OptionKind, option
from arroyo_lite.connectors.options import require_format
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.secrets import MissingVariableError, Secrets, substitute

if TYPE_CHECKING:
    from arroyo_lite.config import TableConfig
    from arroyo_lite.connectors.option_spec import Pulled
    from arroyo_lite.connectors.options import OptionReader

DEFAULT_RECONNECT_DELAY_MS = 1_000
DEFAULT_MAX_BACKOFF_MS = 60_000


def endpoint_option(description: str, example: str) -> Any:
    """The required ``endpoint`` (Arroyo: ``string``, ``format: uri``)."""
    return option(OptionKind.STRING, description, required=True, format="uri",
                  examples=(example,))  # fmt: skip


def reconnect_delay_option(description: str) -> Any:
    """The ``reconnect_delay_ms`` extension."""
    return option(OptionKind.INTEGER, description, default=DEFAULT_RECONNECT_DELAY_MS,
                  exclusive_minimum=0, extension=True)  # fmt: skip


DEFAULT_READ_TIMEOUT_MS = 60_000
DEFAULT_HEARTBEAT_INTERVAL_MS = 30_000


def read_timeout_option() -> Any:
    """The sse ``read_timeout_ms`` extension: how long a silent stream is trusted."""
    return option(
        OptionKind.INTEGER,
        "Reconnect when the stream sends no byte (no event, no ':' comment) for this many "
        "milliseconds: a server that is up but has stopped sending; 0 = wait forever.",
        default=DEFAULT_READ_TIMEOUT_MS,
        minimum=0,
        extension=True,
    )


def heartbeat_option() -> Any:
    """The websocket ``heartbeat_interval_ms`` extension: ping/pong liveness."""
    return option(
        OptionKind.INTEGER,
        "Send a ping this often (milliseconds) and reconnect when its pong does not come "
        "within half of it; 0 = no pings.",
        default=DEFAULT_HEARTBEAT_INTERVAL_MS,
        minimum=0,
        extension=True,
    )


def max_backoff_option() -> Any:
    """The ``max_backoff_ms`` extension (the same key and meaning as ``polling_http``'s)."""
    return option(
        OptionKind.INTEGER,
        "Cap of the doubling delay between failed connection attempts, in milliseconds.",
        default=DEFAULT_MAX_BACKOFF_MS,
        exclusive_minimum=0,
        extension=True,
    )


def resolve_headers(
    pairs: tuple[tuple[str, str], ...], env: Mapping[str, str]
) -> tuple[tuple[tuple[str, str], ...], Secrets]:
    """Header values with ``{{ VAR }}`` substituted, and the secrets now in them.

    Raises :class:`~arroyo_lite.errors.FatalSourceError` (``Environment variable NAME not
    found``) for an unset variable: no retry can fix it.
    """
    resolved = []
    secrets = Secrets()
    for name, template in pairs:
        try:
            value, found = substitute(template, env)
        except MissingVariableError as e:
            raise FatalSourceError(str(e), hint=f"export {e.name}=... before running") from e
        resolved.append((name, value))
        secrets |= found
    return tuple(resolved), secrets


def check_endpoint(
    pulled: Pulled,
    bad: list[str],
    reader: OptionReader,
    label: str,
    schemes: tuple[str, ...],
    example: str,
) -> None:
    """Report ``invalid <label> URL '...': <why>`` (Arroyo's words, which it says only when
    the source starts) for an ``endpoint`` that cannot be connected to."""
    endpoint = pulled.values["endpoint"]
    problem = None if endpoint is None else url_problem(endpoint, schemes)
    if problem is None or "endpoint" in bad:
        return
    hint = f"write a full URL such as '{example}'"
    wrong = {"http": "ws", "https": "wss", "ws": "http", "wss": "https"}
    scheme = endpoint.partition("://")[0]
    if scheme in wrong and wrong[scheme] in schemes:
        hint = f"{label} URLs start with {' or '.join(s + '://' for s in schemes)}; did you " \
            f"mean '{wrong[scheme]}:'?"  # fmt: skip
    reader.report(
        reader.error(
            f"invalid {label} URL '{endpoint}': {problem}", pulled.where.get("endpoint"), hint
        ),
        "endpoint",
    )


def require_push_format(options: OptionReader, table: TableConfig, label: str) -> None:
    """Arroyo's ``'format' must be set for <label> connection`` when ``format`` is absent."""
    require_format(
        options, table, f"'format' must be set for {label} connection",
        hint="add format = 'json' (or 'raw_string', 'raw_bytes') to the WITH clause",
    )  # fmt: skip
