"""The one JSON path grammar of arroyo-lite: where a value sits in a JSON body.

Used by ``records.path`` (which part of a body holds the records, see
:mod:`arroyo_lite.formats.records`) and by every path option of ``polling_http``
(``cursor.path``, ``pagination.*_path``: a cursor, a next URL, a stop flag). Grammar::

    path   := ['$'] [name] step*        -- 'data.items' means '$.data.items' (dlt's spelling)
    step   := '.' name | '[' quoted ']' | '[' integer ']' | '[' '*' ']'
    name   := one or more characters other than  . [ ] ' " * and whitespace
    quoted := 'text' or "text" (backslash escapes the quote); spaces inside brackets are ignored

So ``$.meta.next``, ``paging.cursors.after``, ``items[-1].id`` (negative indices count from
the end), ``$['odd key']``, ``$.features[*]``. Which steps a use accepts is that use's rule,
checked by :meth:`JsonPath.require`: records take member names with an optional final ``[*]``;
a cursor or flag path names one value (no ``[*]``) and at least one step.

Errors are :class:`JsonPathError`: ``str()`` says what is wrong and where, ``hint`` how to
write it; the caller adds the option's name and position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

import orjson

_NAME = re.compile(r"""([^.\[\]'"*\s]+)""")
_DOT_NAME = re.compile(r"""\.([^.\[\]'"*\s]+)""")
_QUOTED = re.compile(r"""\[\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")\s*\]""")
_INDEX = re.compile(r"\[\s*(-?\d+)\s*\]")
_ALL_PATTERN = re.compile(r"\[\s*\*\s*\]")
_ESCAPE = re.compile(r"\\(.)")

VALUE_HINT: Final = "write a path such as '$.meta.next_cursor' or 'items[-1].id'"
RECORDS_HINT: Final = (
    "write member names from the root: '$.data', '$.result.items[*]' or $['odd key']"
)


class Wildcard:
    """The ``[*]`` step: every element of the array there."""

    def __repr__(self) -> str:
        return "[*]"


ALL: Final = Wildcard()

Step = str | int | Wildcard


class JsonPathError(ValueError):
    """A path that cannot be parsed or does not suit its use; ``hint`` says how to fix it."""

    def __init__(self, message: str, hint: str = VALUE_HINT) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True, slots=True)
class JsonPath:
    """A parsed path: ``text`` as written, ``steps`` from the root (member names, indices,
    :data:`ALL`)."""

    text: str
    steps: tuple[Step, ...]

    def require(
        self, *, wildcard: str, index: bool, empty: bool, hint: str = VALUE_HINT
    ) -> JsonPath:
        """Check the steps a use accepts; returns ``self``, raises :class:`JsonPathError`.

        ``wildcard``: ``"never"`` or ``"last"`` (a final ``[*]`` only); ``index``: whether
        ``[n]`` steps are allowed; ``empty``: whether ``$`` alone (the body itself) is.
        """
        if not self.steps and not empty:
            raise JsonPathError(f"the path '{self.text}' names no value", hint)
        for at, step in enumerate(self.steps):
            if isinstance(step, Wildcard) and (wildcard == "never" or at != len(self.steps) - 1):
                where = "is only allowed at the end" if wildcard == "last" else "is not allowed"
                raise JsonPathError(f"[*] {where} in the path '{self.text}'", hint)
            if isinstance(step, int) and not index:
                raise JsonPathError(
                    f"an index such as [{step}] is not allowed here in the path '{self.text}'",
                    hint,
                )
        return self

    @property
    def keys(self) -> tuple[str, ...]:
        """The member names along the path (for paths of member names only)."""
        return tuple(step for step in self.steps if isinstance(step, str))

    def find(self, document: Any) -> Any:
        """The value at this path in ``document``, or ``None`` when any step is missing
        (a final ``[*]`` selects the array itself)."""
        value = document
        for step in self.steps:
            if isinstance(step, str):
                if not isinstance(value, dict):
                    return None
                value = value.get(step)
            elif isinstance(step, int):
                if not isinstance(value, list) or not -len(value) <= step < len(value):
                    return None
                value = value[step]
            elif not isinstance(value, list):
                return None
        return value

    def find_in(self, body: bytes) -> Any:
        """:meth:`find` in a JSON body (``None`` when the body is not JSON)."""
        try:
            return self.find(orjson.loads(body))
        except orjson.JSONDecodeError:
            return None


def parse_path(text: str, hint: str = VALUE_HINT) -> JsonPath:
    """Parse ``text`` by the grammar above; raises :class:`JsonPathError` (with ``hint``)."""
    source = text.strip()
    if not source:
        raise JsonPathError(f"the path '{text}' is empty", hint)
    pos = 1 if source.startswith("$") else 0
    steps: list[Step] = []
    first = _NAME.match(source, pos)
    if first is not None:
        steps.append(first.group(1))
        pos = first.end()
    while pos < len(source):
        if match := _DOT_NAME.match(source, pos):
            steps.append(match.group(1))
        elif match := _QUOTED.match(source, pos):
            quoted = match.group(1) if match.group(1) is not None else match.group(2)
            steps.append(_ESCAPE.sub(r"\1", quoted))
        elif match := _INDEX.match(source, pos):
            steps.append(int(match.group(1)))
        elif match := _ALL_PATTERN.match(source, pos):
            steps.append(ALL)
        else:
            raise JsonPathError(f"cannot read the path '{text}' at '{source[pos:]}'", hint)
        pos = match.end()
    return JsonPath(text, tuple(steps))


def value_path(text: str) -> JsonPath:
    """A path that names one value (a cursor, a next URL, a flag, a total)."""
    return parse_path(text).require(wildcard="never", index=True, empty=False)


def as_text(value: Any) -> str | None:
    """A found value as request text: strings as they are, numbers and booleans as JSON,
    ``None`` for null, missing, objects and lists."""
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()
