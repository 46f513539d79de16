"""The one way arroyo-lite shows an error to a person: gcc-style, with the source excerpt.

:func:`render_error` is what ``validate``, ``run``, ``test`` and the REPL print for any
:class:`~arroyo_lite.errors.ArroyoLiteError`::

    queries.sql:7:18: error: invalid value for 'method': 'get'
        7 |   method = 'get',
          |            ^~~~~
      hint: expected GET, POST, PUT or PATCH

A :class:`~arroyo_lite.errors.ValidationErrors` shows each of its errors so. The excerpt needs
the SQL text the positions point into; without it (or for a position elsewhere) the error shows
without one. It lives in the terminal layer, not in :mod:`arroyo_lite.errors`, because only the
terminal front ends print; the library's errors keep their one-line ``format()``.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from arroyo_lite.errors import ArroyoLiteError, SourcePosition, ValidationErrors
from arroyo_lite.secrets import redact_url_in_place

#: The widest source line an excerpt shows whole; a longer one is cut around the token.
EXCERPT_WIDTH = 160


def source_lines(text: str) -> list[str]:
    """``text``'s lines as positions count them: split on ``\\n`` only (``str.splitlines``
    also splits on form feeds, ``\\u2028`` and lone ``\\r``, which would shift the excerpt)."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def read_source(path: str | Path) -> str | None:
    """The text of the SQL file at ``path`` as the compiler reads it, or ``None`` if unreadable."""
    try:
        return Path(path).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None


def excerpt(position: SourcePosition | None, lines: list[str]) -> list[str]:
    """The line at ``position`` with its token underlined (``^~~~``), as gcc shows it.

    Empty when there is no position or the line is not available. Secrets come from the
    environment, not the SQL text, with one exception: a password written in a URL's userinfo
    (``http://user:pass@host``) is shown as ``*``s. A line wider than :data:`EXCERPT_WIDTH` is
    cut to a window around the token, the cuts marked with ``…``.
    """
    if position is None or not 1 <= position.line <= len(lines):
        return []
    text = redact_url_in_place(lines[position.line - 1])
    start = min(position.col - 1, len(text))
    width = len((position.token or " ").splitlines()[0]) or 1
    width = max(1, min(width, len(text) - start))
    text, start, width = _window(text, start, width)
    # Keep tabs so the marker lines up under the token in a terminal.
    pad = "".join(ch if ch == "\t" else " " for ch in text[:start])
    gutter = f"{position.line:>5} | "
    return [gutter + text, " " * (len(gutter) - 2) + "| " + pad + "^" + "~" * (width - 1)]


def _window(text: str, start: int, width: int) -> tuple[str, int, int]:
    """``text`` cut to at most about :data:`EXCERPT_WIDTH` characters around the token at
    ``start`` (``width`` long, itself cut if longer), with the new start and width."""
    if len(text) <= EXCERPT_WIDTH:
        return text, start, width
    width = min(width, EXCERPT_WIDTH // 2)
    left = max(0, start - EXCERPT_WIDTH // 4)
    right = min(len(text), left + EXCERPT_WIDTH)
    left = max(0, right - EXCERPT_WIDTH)
    head = "…" if left > 0 else ""
    tail = "…" if right < len(text) else ""
    return head + text[left:right] + tail, start - left + len(head), width


def render_error(
    error: ArroyoLiteError, source: str | None = None, *, file: str | None = None
) -> str:
    """``error`` for a terminal: ``FILE:LINE:COL: error: MESSAGE``, the excerpt, the hint.

    ``source`` is the SQL text of ``file`` (the name positions carry); an error positioned in
    that file (or anywhere, if ``file`` is not given) gets the excerpt of its line. An error
    without a position is prefixed with ``file:`` so it still names the file. A
    :class:`ValidationErrors` renders each of its errors, one after another.
    """
    errors = list(error) if isinstance(error, ValidationErrors) and len(error) else [error]
    return render_problems([(one.format(), one.position) for one in errors], source, file=file)


def render_problems(
    problems: Iterable[tuple[str, SourcePosition | None]],
    source: str | None = None,
    *,
    file: str | None = None,
) -> str:
    """:func:`render_error` for problems that are not exceptions (``validate --arroyo``'s
    findings, a cluster's diagnostics): ``(formatted text, position)`` pairs, the text as
    ``format()`` gives it (first line, then hint lines)."""
    lines = source_lines(source) if source is not None else []
    out: list[str] = []
    for text, position in problems:
        prefix = f"{file}: " if position is None and file else ""
        first, *rest = (prefix + text).split("\n")
        out.append(first)
        if position is not None and (file is None or position.file == file):
            out.extend(excerpt(position, lines))
        out.extend(rest)
    return "\n".join(out)
