"""The one exception tree of arroyo-lite, and the positions errors point at.

Every error a user can cause is an :class:`ArroyoLiteError`. The tree::

    ArroyoLiteError
    ├── SqlError                 the SQL text is wrong (parse or plan); carries a position
    │   └── ValidationErrors     several SqlErrors collected over one or more files
    ├── ConnectorError           a connector cannot be found or loaded
    ├── SourceError              a running source failed
    │   ├── TransientSourceError retried with backoff (timeouts, refused connections, 429, 5xx)
    │   └── FatalSourceError     stops the table (bad data with bad_data='fail', bad config)
    ├── QueryError               DuckDB rejected a query; the session goes on
    └── ClusterError             an Arroyo cluster's REST API could not be used (unreachable,
                                 not an Arroyo API, an error answer); one line, safe to show

Foreign exceptions (sqlglot, jsonschema, aiohttp, duckdb) are converted once, at the boundary,
with ``raise ... from e``. Messages never contain secret values: code that knows secrets masks
them (see :mod:`arroyo_lite.secrets`) before it builds the error.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SourcePosition:
    """A point in a SQL source file: 1-based line and column, and the token found there."""

    file: str
    line: int
    col: int
    token: str | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def shift(self, line: int, col: int, token: str | None = None) -> SourcePosition:
        """Where ``line:col`` of a snippet lands in this position's file, the snippet starting
        here (a statement's query, say): its first line starts at this column, the others at
        column 1. The one place positions are moved by a statement's offset.
        """
        col = col + self.col - 1 if line == 1 else col
        return SourcePosition(self.file, self.line + line - 1, max(col, 1), token)

    def after(self, text: str, token: str | None = None) -> SourcePosition:
        """Where a snippet that starts here continues after its first characters ``text``
        (a word found at ``snippet.find(word)``: ``start.after(snippet[:at])``)."""
        return self.shift(text.count("\n") + 1, len(text) - text.rfind("\n"), token)


class ArroyoLiteError(Exception):
    """Root of every error arroyo-lite raises on purpose.

    ``message`` keeps Arroyo's wording where Arroyo has one; ``hint`` suggests a fix
    (a did-you-mean, the accepted values); ``position`` says where in the SQL, if known.
    """

    def __init__(
        self,
        message: str,
        *,
        position: SourcePosition | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.hint = hint

    def format(self) -> str:
        """Render gcc-style: ``FILE:LINE:COL: error: MESSAGE (hint)``; no position, no prefix."""
        text = f"error: {self.message}"
        if self.position is not None:
            text = f"{self.position}: {text}"
        if self.hint:
            text = f"{text}\n  hint: {self.hint}"
        return text

    def __str__(self) -> str:
        return self.format()


class SqlError(ArroyoLiteError):
    """The SQL text is invalid: a parse error, or a table definition Arroyo would reject."""


class ValidationErrors(SqlError):
    """Every problem found while validating one or more files, in source order.

    Iterating yields the individual :class:`SqlError` objects.
    """

    def __init__(self, errors: Iterable[SqlError]) -> None:
        self.errors: tuple[SqlError, ...] = tuple(errors)
        first = self.errors[0] if self.errors else None
        super().__init__(
            "\n".join(e.format() for e in self.errors) or "no errors",
            position=first.position if first else None,
        )

    def __iter__(self) -> Iterator[SqlError]:
        return iter(self.errors)

    def __len__(self) -> int:
        return len(self.errors)

    def format(self) -> str:
        return self.message


class ConnectorError(ArroyoLiteError):
    """A connector is unknown, or a third-party connector failed to load."""


class SourceError(ArroyoLiteError):
    """A running source failed. The message is safe to show (secrets masked)."""


class TransientSourceError(SourceError):
    """A failure worth retrying: the runtime backs off and polls again.

    ``retry_after`` (seconds) is the server's wish from a ``Retry-After`` header, if any.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.retry_after = retry_after


class FatalSourceError(SourceError):
    """A failure that stops the table (other tables keep running)."""


class QueryError(ArroyoLiteError):
    """DuckDB (or the translation to DuckDB) rejected a query."""


class ClusterError(ArroyoLiteError):
    """A call to an Arroyo cluster's REST API failed: the API is unreachable or too slow, the
    server is not an Arroyo API, or it answered with an error (its ``{"error": ...}`` text).

    ``status`` is the HTTP status when the server answered. The message never holds the API
    key or a secret value.
    """

    def __init__(self, message: str, *, status: int | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.status = status


def closest(word: str, choices: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """The choice most like ``word`` (case-insensitive equality first), or ``None``.

    The one did-you-mean rule of arroyo-lite (sqlglot's ``suggest_closest_match``): every call
    site that names an unknown option, table, column, function, format or command uses it.
    """
    options = list(choices)
    folded = word.casefold()
    for choice in options:
        if choice.casefold() == folded and choice != word:
            return choice
    import difflib  # here: every command imports this module, few need a suggestion

    close = difflib.get_close_matches(word, options, n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(word: str, choices: Iterable[str], *, cutoff: float = 0.6) -> str | None:
    """``"did you mean 'X'?"`` for the closest choice (see :func:`closest`), or ``None``."""
    match = closest(word, choices, cutoff=cutoff)
    return f"did you mean '{match}'?" if match is not None else None
