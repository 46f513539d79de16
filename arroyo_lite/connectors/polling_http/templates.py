"""Per-poll values in a table's endpoint, query parameters, headers and body: ``[[ name ]]``.

A value the request needs *per poll* is written ``[[ name ]]`` or ``[[ name | format ]]``,
a syntax of its own so that it can never be mistaken for ``{{ VAR }}`` (an environment
variable, a secret): a misspelt ``[[ nwo ]]`` is a validation error with a did-you-mean,
never an empty variable. The names (:data:`VALUES`):

* ``now``: the start time of this poll;
* ``last_success``: the start time of the last successful poll (before the first one: one
  poll interval before ``now``), kept in the source state;
* ``cursor``: the value taken from the previous successful response (``cursor.path`` into
  its JSON body, or ``cursor.header``), kept in the source state (``cursor.initial`` before
  the first one).

Formats (:data:`FORMATS`) apply to the times: ``rfc3339`` (the default,
``2026-12-01T21:30:00Z``), ``epoch`` (seconds), ``epoch_ms``.

:func:`parse` splits a text into literal pieces, ``{{ VAR }}`` references and per-poll
references once; :meth:`Template.render` joins them for one poll. Environment values are
inserted as they are (a ``[[`` inside a secret stays literal) and reported as secrets.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from arroyo_lite.errors import did_you_mean
from arroyo_lite.secrets import MissingVariableError, Secrets

#: The per-poll values a template can name, with what they mean (for errors and docs).
VALUES = {
    "now": "the start time of this poll",
    "last_success": "the start time of the last successful poll",
    "cursor": "the value taken from the previous response (cursor.path or cursor.header)",
}
#: Time formats: name -> how a time in nanoseconds is written.
FORMATS: dict[str, Callable[[int], str]] = {
    "rfc3339": lambda ns: dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.UTC)
    .isoformat()
    .replace("+00:00", "Z"),
    "epoch": lambda ns: str(ns // 1_000_000_000),
    "epoch_ms": lambda ns: str(ns // 1_000_000),
}
TIME_VALUES = frozenset({"now", "last_success"})

# ``[[`` opens a per-poll value only when a name follows: a JSON body's nested arrays
# (``[[1, 2]]``, ``[["a"]]``, ``[[true]]``: JSON's only bare words are its literals) are text.
_NAME_FOLLOWS = r"\[\[(?=\s*(?!(?:true|false|null)\b)[A-Za-z_])"
_TOKEN = re.compile(r"\{\{\s*(\w+)\s*}}|" + _NAME_FOLLOWS + r"([^\[\]]*)]]")
_UNCLOSED = re.compile(_NAME_FOLLOWS)


class TemplateError(ValueError):
    """A ``[[ ... ]]`` that names no known value or format; ``hint`` suggests the fix."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True, slots=True)
class EnvRef:
    name: str


@dataclass(frozen=True, slots=True)
class PollRef:
    name: str
    format: str | None


@dataclass(frozen=True, slots=True)
class PollValues:
    """The per-poll values of one poll (times in wall-clock nanoseconds)."""

    now_ns: int
    last_success_ns: int
    cursor: str | None = None

    def text(self, ref: PollRef) -> str:
        if ref.name == "cursor":
            return self.cursor or ""
        ns = self.now_ns if ref.name == "now" else self.last_success_ns
        return FORMATS[ref.format or "rfc3339"](ns)


#: Values to render a template with when only its shape matters (validation).
SAMPLE_VALUES = PollValues(now_ns=0, last_success_ns=0, cursor="0")

Part = str | EnvRef | PollRef


@dataclass(frozen=True, slots=True)
class Template:
    """A text split into literal, ``{{ VAR }}`` and ``[[ value ]]`` parts."""

    parts: tuple[Part, ...]

    @property
    def per_poll(self) -> bool:
        """Whether the text changes from poll to poll."""
        return any(isinstance(p, PollRef) for p in self.parts)

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parts if isinstance(p, EnvRef))

    def render(
        self,
        env: Mapping[str, str],
        values: PollValues | None,
        quote: Callable[[str], str] = str,
    ) -> tuple[str, Secrets]:
        """The text for one poll, and the secrets inserted. ``quote`` is applied to each
        per-poll value (``values=None`` renders them empty: to show a template's shape).
        Raises :class:`MissingVariableError` for an unset variable."""
        out: list[str] = []
        inserted: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, EnvRef):
                if part.name not in env:
                    raise MissingVariableError(part.name)
                inserted.append(env[part.name])
                out.append(env[part.name])
            else:
                out.append(quote(values.text(part)) if values is not None else "")
        return "".join(out), Secrets.of(inserted)


def parse(text: str) -> Template:
    """Split ``text``; raises :class:`TemplateError` for an unknown value or format, a format
    on the cursor, or an unclosed ``[[``."""
    parts: list[Part] = []
    at = 0
    for match in _TOKEN.finditer(text):
        if match.start() > at:
            parts.append(text[at : match.start()])
        if match.group(1) is not None:
            parts.append(EnvRef(match.group(1)))
        else:
            parts.append(_poll_ref(match.group(2)))
        at = match.end()
    rest = text[at:]
    if _UNCLOSED.search(rest):
        raise TemplateError(
            f"unclosed '[[' in '{text}'", hint="write a per-poll value as [[ now ]]"
        )
    if rest:
        parts.append(rest)
    return Template(tuple(parts))


def _poll_ref(inner: str) -> PollRef:
    name, _, fmt = (piece.strip() for piece in inner.partition("|"))
    if name not in VALUES:
        known = ", ".join(VALUES)
        close = did_you_mean(name, list(VALUES))
        raise TemplateError(
            f"unknown per-poll value '[[ {name} ]]'",
            hint=(f"{close} " if close else "") + f"known values: {known}",
        )
    if not fmt:
        return PollRef(name, None)
    if name not in TIME_VALUES:
        raise TemplateError(
            f"'[[ {name} | {fmt} ]]': only times take a format (now, last_success)",
            hint=f"write [[ {name} ]]",
        )
    if fmt not in FORMATS:
        close = did_you_mean(fmt, list(FORMATS))
        raise TemplateError(
            f"unknown time format '{fmt}' in '[[ {inner.strip()} ]]'",
            hint=(f"{close} " if close else "") + f"formats: {', '.join(FORMATS)}",
        )
    return PollRef(name, fmt)
