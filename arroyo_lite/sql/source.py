"""SQL source text: offsets to positions, and splitting a file into statements.

A file is tokenized once with the :class:`~arroyo_lite.sql.dialect.Arroyo` tokenizer and cut at
its semicolon tokens, which is safe with ``;`` inside strings and comments. Every token keeps
its offset in the whole file, so positions computed from tokens and from sqlglot node metadata
are file positions, not statement positions.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass

from sqlglot.errors import TokenError
from sqlglot.tokenizer_core import Token, TokenType

from arroyo_lite.errors import SourcePosition, SqlError
from arroyo_lite.sql.dialect import Arroyo


class SourceText:
    """The text of one file (or string) with a fast offset -> ``SourcePosition`` mapping."""

    def __init__(self, text: str, file: str = "<string>") -> None:
        self.text = text
        self.file = file
        # (str.find in C, not a Python loop over every character of the file.)
        self._line_starts = [0]
        i = text.find("\n")
        while i >= 0:
            self._line_starts.append(i + 1)
            i = text.find("\n", i + 1)

    def position(self, offset: int, token: str | None = None) -> SourcePosition:
        """1-based line and column of character ``offset`` (clamped to the text)."""
        offset = max(0, min(offset, len(self.text)))
        line = bisect.bisect_right(self._line_starts, offset) - 1
        return SourcePosition(
            self.file, line + 1, offset - self._line_starts[line] + 1, token
        )

    def offset(self, position: SourcePosition) -> int:
        """The character offset of ``position`` (the inverse of :meth:`position`)."""
        line = max(1, min(position.line, len(self._line_starts)))
        return self._line_starts[line - 1] + position.col - 1

    def at_token(self, token: Token) -> SourcePosition:
        return self.position(token.start, self.text[token.start : token.end + 1])


@dataclass(frozen=True, slots=True)
class RawStatement:
    """One statement's tokens (without the ``;``) and its original text."""

    tokens: list[Token]
    text: str
    start: int


def tokenize(source: SourceText) -> list[Token]:
    """All tokens of the text; a tokenizer failure becomes a positioned :class:`SqlError`."""
    try:
        tokens: list[Token] = Arroyo().tokenize(source.text)
    except TokenError as e:
        offset, what = _unterminated(source.text)
        raise SqlError(
            f"could not tokenize SQL: {what}",
            position=source.position(offset, source.text[offset : offset + 2].strip() or None),
            hint="close every string, quoted identifier and /* comment */",
        ) from e
    return tokens


def split_statements(source: SourceText) -> list[RawStatement]:
    """Cut the text into statements at semicolon tokens; empty statements are skipped."""
    statements: list[RawStatement] = []
    current: list[Token] = []
    for token in [*tokenize(source), None]:
        if token is None or token.token_type == TokenType.SEMICOLON:
            if current:
                start, end = current[0].start, current[-1].end + 1
                statements.append(RawStatement(current, source.text[start:end], start))
            current = []
        else:
            current.append(token)
    return statements


def _unterminated(text: str) -> tuple[int, str]:
    """Find the string, quoted identifier or block comment that never ends (best effort)."""
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "-" and text.startswith("--", i):
            nl = text.find("\n", i)
            i = n if nl < 0 else nl + 1
        elif ch == "/" and text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                return i, "unterminated /* comment"
            i = end + 2
        elif ch in "'\"`":
            j = i + 1
            while True:
                j = text.find(ch, j)
                if j < 0:
                    kind = "string" if ch == "'" else "quoted identifier"
                    return i, f"unterminated {kind} starting here"
                if text.startswith(ch * 2, j):
                    j += 2
                    continue
                break
            i = j + 1
        else:
            i += 1
    return 0, "invalid character sequence"
