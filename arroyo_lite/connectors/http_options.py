"""HTTP options shared by the HTTP connectors (``polling_http``, ``webhook``, ``sse``,
``websocket``): Arroyo's comma-separated ``headers`` (split, names and values checked,
``{{ VAR }}`` present) and an http(s) ``endpoint``. Problems are reported through the
:class:`OptionReader`, positioned at the option's value; secret values never appear in a
message. :func:`check_headers` is the one header check: a connector with more syntax in its
values (``polling_http``'s per-poll ``[[ name ]]``) passes it as ``check_value``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from arroyo_lite.connectors.option_spec import OptionKind, option
from arroyo_lite.connectors.options import OptionReader, OptionValue
from arroyo_lite.secrets import VAR_PATTERN, MissingVariableError, substitute, variables

#: RFC 7230 ``token``: what an HTTP header name may contain.
TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
HEADERS_FORMAT_ERROR = (
    "Invalid format for headers; should be a comma-separated list of colon-separated key "
    "value pairs"
)


def headers_option(
    sent_with: str, example: str = "Authorization: Bearer {{ API_TOKEN }}"
) -> Any:
    """The ``headers`` option (Arroyo: ``string``, ``format: var-str``), sent with
    ``sent_with``; :func:`check_headers` splits it into ``(name, value)`` pairs."""
    return option(
        OptionKind.STRING,
        f"Comma-separated 'Name: value' pairs sent with {sent_with}; {{{{ VAR }}}} is read "
        "from the environment.",
        default_factory=tuple,
        format="var-str",
        examples=(example,),
    )


def split_headers(text: str) -> tuple[tuple[str, str], ...] | None:
    """Arroyo's ``string_to_map(s, ':')``, but splitting each pair on its *first* ``:``.

    Returns ``None`` when a piece has no ``:`` (Arroyo's headers format error); an all-blank
    string is no headers. Values keep their ``{{ VAR }}`` references.
    """
    if not text.strip():
        return ()
    pairs = []
    for piece in text.split(","):
        name, sep, value = piece.strip().partition(":")
        if not sep:
            return None
        pairs.append((name.strip(), value.strip()))
    return tuple(pairs)


def url_problem(endpoint: str, schemes: tuple[str, ...]) -> str | None:
    """Why ``endpoint`` cannot be connected to with one of ``schemes`` (``None`` when it is
    a usable URL): the one URL check of the HTTP and push connectors."""
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


def check_endpoint(endpoint: str) -> str | None:
    """Why ``endpoint`` cannot be requested (``None`` when it is a usable http(s) URL)."""
    problem = url_problem(endpoint, ("http", "https"))
    if problem is None and VAR_PATTERN.search(endpoint):
        # {{KEY}} (no spaces) is a valid URL, and would be sent literally on every request.
        return "{{ VAR }} is not substituted in the endpoint"
    return problem


def missing_variables(
    text: str, option: OptionValue | None, options: OptionReader, key: str
) -> list[str]:
    """The ``{{ VAR }}`` names in ``text`` the environment lacks, each reported (Arroyo's
    ``Environment variable NAME not found``) at ``option`` as a bad value of ``key``."""
    return report_missing_variables(variables(text), option, options, key)


def report_missing_variables(
    names: Iterable[str], option: OptionValue | None, options: OptionReader, key: str
) -> list[str]:
    """The ``names`` the environment lacks, each reported as :func:`missing_variables` does
    (for a connector that has found the names in its own syntax)."""
    missing = [name for name in names if name not in options.env]
    for name in missing:
        options.report(
            options.error(
                str(MissingVariableError(name)),
                option,
                hint=f"export {name}=... before running arroyo-lite",
            ),
            key,
        )
    return missing


#: A connector's own check of one header value's syntax: ``(message, hint)`` of the problem.
ValueCheck = Callable[[str], "tuple[str, str | None] | None"]


def check_headers(
    text: str | None,
    option: OptionValue | None,
    options: OptionReader,
    *,
    check_value: ValueCheck | None = None,
) -> tuple[tuple[str, str], ...]:
    """Split and check ``headers``; every problem is reported (all at its value).

    Checked: Arroyo's format (``Name: value`` pairs), each name an HTTP token, each
    ``{{ VAR }}`` set, each value (after substitution, secrets never shown) free of control
    characters, and, with ``check_value``, the connector's own syntax of a value
    (``invalid value for 'headers' (Name): ...``; such a value is not checked further).
    """
    if text is None:
        return ()
    missing = missing_variables(text, option, options, "headers")
    pairs = split_headers(text)
    if pairs is None:
        options.report(
            options.error(
                HEADERS_FORMAT_ERROR, option, hint="write 'Name: value,Other-Name: value'"
            ),
            "headers",
        )
        return ()
    for name, value in pairs:
        if not TOKEN.fullmatch(name):
            options.report(
                options.error(
                    f"invalid header name '{name}'",
                    option,
                    hint="{{ VAR }} is substituted in header values only"
                    if "{{" in name
                    else "header names are letters, digits and !#$%&'*+-.^_`|~",
                ),
                "headers",
            )
        if check_value is not None and (problem := check_value(value)) is not None:
            message, hint = problem
            options.report(
                options.error(f"invalid value for 'headers' ({name}): {message}", option, hint),
                "headers",
            )
            continue
        if any(v in missing for v in variables(value)):
            continue  # its value is unknown (reported above)
        # Substituted only to check it; the config keeps the template.
        real, _secrets = substitute(value, options.env)
        # HTTP allows visible characters, spaces and tabs in a value (as the http crate's
        # HeaderValue, which makes Arroyo panic at run time on anything else).
        bad = [ch for ch in real if (ord(ch) < 32 and ch != "\t") or ord(ch) == 127]
        if bad:
            from_env = variables(value)
            shown = f"from {', '.join(from_env)}" if from_env else repr(value)
            what = "a line break" if set(bad) & {"\r", "\n"} else "a control character"
            options.report(
                options.error(
                    f"invalid header value for '{name}' ({shown}): contains {what}",
                    option,
                    hint="header values cannot contain control characters",
                ),
                "headers",
            )
    return pairs
