"""Options the push sources share: ``endpoint`` URL checks, ``headers``, reconnect extensions.

``headers`` follows Arroyo's rules exactly as ``polling_http`` does (comma-separated
``Name: value`` pairs, ``{{ VAR }}`` substituted in values at run time), so the checks are
``polling_http``'s: one rule, one wording.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from arroyo_lite.connectors.options import MissingOptionError
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.secrets import MissingVariableError, Secrets, substitute

if TYPE_CHECKING:
    from arroyo_lite.config import TableConfig
    from arroyo_lite.connectors.options import OptionReader, OptionValue

DEFAULT_RECONNECT_DELAY_MS = 1_000
DEFAULT_MAX_BACKOFF_MS = 60_000


def check_headers(
    text: str | None, option: OptionValue | None, reader: OptionReader
) -> tuple[tuple[str, str], ...]:
    """Split and check ``headers`` (problems reported on ``reader``); values stay templates."""
    from arroyo_lite.connectors.polling_http.connector import PollingHttpConnector

    return PollingHttpConnector._headers(text, option, reader)


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


def url_problem(endpoint: str, schemes: tuple[str, ...]) -> str | None:
    """Why ``endpoint`` cannot be connected to (``None`` when it is a usable URL)."""
    try:
        parts = urlsplit(endpoint)
        _ = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError as e:
        return str(e)
    if parts.scheme not in schemes:
        return "the scheme must be " + " or ".join(schemes)
    if not parts.hostname:
        return "the URL has no host"
    if any(ch.isspace() for ch in endpoint):
        return "the URL contains whitespace"
    return None


def require_format(options: OptionReader, table: TableConfig, label: str) -> None:
    """Arroyo's ``'format' must be set for <label> connection`` when ``format`` is absent."""
    if table.format is None and not options.is_invalid("format"):
        options.report(
            MissingOptionError(
                f"'format' must be set for {label} connection",
                key="format",
                position=options.clause_position,
                hint="add format = 'json' (or 'raw_string', 'raw_bytes') to the WITH clause",
            )
        )
