"""A small JSON path: where a cursor, a next URL or a stop flag sits in a response body.

Accepts what dlt's ``next_url_path``/``cursor_path`` users write for such values: dotted keys
with an optional ``$.`` start, and list indices (negative from the end): ``$.meta.next``,
``paging.cursors.after``, ``items[-1].id``, ``links[0].href``. Filters and wildcards are out
of scope: these paths name one value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

_STEP = re.compile(r"\.?([^.\[\]]+)|\[(-?\d+)]")


class PathError(ValueError):
    """A path that cannot be parsed (message says where)."""


@dataclass(frozen=True, slots=True)
class JsonPath:
    text: str
    steps: tuple[str | int, ...]

    def find(self, document: Any) -> Any:
        """The value at this path in ``document``, or ``None`` when any step is missing."""
        value = document
        for step in self.steps:
            if isinstance(step, int):
                if not isinstance(value, list) or not -len(value) <= step < len(value):
                    return None
                value = value[step]
            elif isinstance(value, dict):
                value = value.get(step)
            else:
                return None
        return value

    def find_in(self, body: bytes) -> Any:
        """:meth:`find` in a JSON body (``None`` when the body is not JSON)."""
        try:
            return self.find(orjson.loads(body))
        except orjson.JSONDecodeError:
            return None


def compile_path(text: str) -> JsonPath:
    """Parse ``text``; raises :class:`PathError`."""
    rest = text.strip()
    if rest.startswith("$"):
        rest = rest[1:]
    steps: list[str | int] = []
    at = 0
    while at < len(rest):
        match = _STEP.match(rest, at)
        if match is None or match.end() == at:
            raise PathError(f"cannot read the path '{text}' at '{rest[at:]}'")
        steps.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        at = match.end()
    if not steps:
        raise PathError(f"the path '{text}' names no value")
    return JsonPath(text, tuple(steps))


def as_text(value: Any) -> str | None:
    """A found value as request text: strings as they are, numbers and booleans as JSON,
    ``None`` for null, missing, objects and lists."""
    if value is None or isinstance(value, dict | list):
        return None
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()
