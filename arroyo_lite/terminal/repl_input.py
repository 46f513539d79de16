"""What the REPL reads: when typed text is a complete input, how a script splits into inputs,
the prompt's key bindings and tab completion, and where the history is kept."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arroyo_lite.sql.transpile import ARROYO_FUNCTIONS
from arroyo_lite.terminal.repl_meta import META_COMMANDS

if TYPE_CHECKING:
    from arroyo_lite.session import Session

#: Environment variable that overrides where the history is kept (tests use it).
HISTORY_ENV = "ARROYO_LITE_HISTORY"

_KEYWORDS = """
SELECT FROM WHERE GROUP BY ORDER HAVING LIMIT OFFSET AS AND OR NOT NULL IS IN LIKE
ILIKE BETWEEN CASE WHEN THEN ELSE END DISTINCT JOIN LEFT RIGHT INNER OUTER FULL CROSS
ON USING UNION ALL EXCEPT INTERSECT WITH CREATE TABLE VIEW TEMPORARY INSERT INTO VALUES
SET CONNECTOR FORMAT ASC DESC OVER PARTITION WINDOW COUNT SUM AVG MIN MAX CAST TRUE
FALSE TEXT VARCHAR BIGINT INT INTEGER DOUBLE FLOAT BOOLEAN TIMESTAMP JSON GENERATED
ALWAYS STORED WATERMARK METADATA UNNEST INTERVAL
"""
#: Completed at the prompt (with tables and columns): SQL keywords and the Arroyo functions
#: arroyo-lite translates (declared once, in :mod:`arroyo_lite.sql.transpile`).
SQL_KEYWORDS = tuple(_KEYWORDS.split()) + tuple(sorted(f.upper() for f in ARROYO_FUNCTIONS))


def history_path(env: dict[str, str] | None = None) -> Path:
    """Where the REPL keeps its history (see :data:`HISTORY_ENV`)."""
    env = dict(os.environ) if env is None else env
    if env.get(HISTORY_ENV):
        return Path(env[HISTORY_ENV])
    if env.get("XDG_STATE_HOME"):
        return Path(env["XDG_STATE_HOME"]) / "arroyo-lite" / "history"
    return Path.home() / ".arroyo_lite_history"


def _tokenize(text: str) -> list[Any]:
    try:
        from arroyo_lite.sql.dialect import Arroyo

        tokens: list[Any] = Arroyo().tokenize(text)
    except ImportError:
        import sqlglot

        tokens = sqlglot.Dialect.get_or_raise("postgres").tokenize(text)
    return tokens


#: psql's ``QUERY \\watch [args]``: a query ended by ``\\watch`` instead of ``;``.
_WATCH_RE = re.compile(r"\\watch(?:[ \t]+[^\s\\]+)*[ \t]*;?\s*\Z")


def is_meta(line: str) -> bool:
    """Whether ``line`` (the start of an input) is a meta command: ``\\name`` (psql) or
    ``.name`` (the duckdb CLI). Neither can start SQL, so a ``.mode csv`` line never waits
    for a ``;``."""
    stripped = line.lstrip()
    return stripped.startswith("\\") or (stripped[:1] == "." and stripped[1:2].isalpha())


def split_watch(text: str) -> tuple[str, str | None]:
    """``"SELECT 1 \\watch 2"`` -> ``("SELECT 1", "2")``; without a ``\\watch`` at the end,
    ``(text, None)``. The ``\\watch`` must be outside strings and comments."""
    match = _WATCH_RE.search(text)
    if match is None or not _outside_sql_literals(text, match.start()):
        return text, None
    return text[: match.start()], text[match.start() + len("\\watch") :].strip()


def _outside_sql_literals(text: str, offset: int) -> bool:
    # The text before the backslash must tokenize: inside a string it would not end.
    try:
        _tokenize(text[:offset])
    except Exception:
        return False
    return True


def is_complete(text: str) -> bool:
    """Whether ``text`` is ready to run: a meta command, SQL whose last token is ``;``, or
    a query ended by psql's ``\\watch``.

    A ``;`` inside a string or comment does not count (the SQL tokenizer decides); an
    unterminated string or comment means more lines are coming.
    """
    stripped = text.strip()
    if not stripped or is_meta(stripped):
        return True
    if split_watch(stripped)[1] is not None:
        return True
    try:
        tokens = _tokenize(stripped)
    except Exception:
        return False  # unterminated string or comment: keep reading
    if not tokens:
        return True  # only comments
    return bool(tokens[-1].token_type.name == "SEMICOLON")


def split_script(lines: Iterable[str]) -> Iterator[str]:
    """Group input lines into complete inputs: meta-command lines and ``;``-ended SQL."""
    for _, text in numbered_inputs(lines):
        yield text


def numbered_inputs(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """:func:`split_script` with the 1-based line number where each input starts."""
    buffer: list[str] = []
    start = 0
    for number, line in enumerate(lines, start=1):
        if not buffer and is_meta(line):
            yield number, line.strip()
            continue
        if not buffer and not line.strip():
            continue
        if not buffer:
            start = number
        buffer.append(line)
        text = "".join(buffer)
        if is_complete(text):
            yield start, text
            buffer = []
    rest = "".join(buffer)
    if rest.strip():
        yield start, rest


def key_bindings() -> Any:
    """Enter runs a complete input and otherwise starts a new line; Alt-Enter always runs."""
    from prompt_toolkit.key_binding import KeyBindings

    kb = KeyBindings()

    @kb.add("enter")
    def _enter(event: Any) -> None:
        buffer = event.current_buffer
        if is_complete(buffer.text):
            buffer.validate_and_handle()
        else:
            buffer.insert_text("\n")

    @kb.add("escape", "enter")
    def _force(event: Any) -> None:
        event.current_buffer.validate_and_handle()

    return kb


def _completer_base() -> type[Any]:
    from prompt_toolkit.completion import Completer

    return Completer


class SessionCompleter(_completer_base()):  # type: ignore[misc]
    """Completes meta commands, SQL keywords, and the session's current tables and columns.

    Names are read from the session at each completion, so tables created a moment ago
    are offered at once.
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    def _names(self) -> tuple[list[str], list[str]]:
        try:
            tables = list(self.session.tables())
        except Exception:
            return [], []
        columns: dict[str, None] = {}
        for table in tables:
            try:
                for name in self.session.schema(table).names:
                    columns.setdefault(name, None)
            except Exception:
                continue
        return tables, list(columns)

    def get_completions(self, document: Any, complete_event: Any) -> Iterator[Any]:
        from prompt_toolkit.completion import Completion

        line = document.current_line_before_cursor
        stripped = line.lstrip()
        if is_meta(stripped) and " " not in stripped:
            for command in META_COMMANDS:
                if command.startswith(stripped):
                    yield Completion(command, start_position=-len(stripped))
            return
        word = document.get_word_before_cursor(WORD=False)
        if not word or not (word[0].isalnum() or word[0] == "_"):
            return
        tables, columns = self._names()
        lower = word.lower()
        seen: set[str] = set()
        for name, meta in [(t, "table") for t in tables] + [(c, "column") for c in columns]:
            if name.lower().startswith(lower) and name not in seen:
                seen.add(name)
                yield Completion(name, start_position=-len(word), display_meta=meta)
        if stripped.startswith("\\"):
            return  # arguments of meta commands are names, not keywords
        upper = word.isupper() or word[:1].isupper()
        for keyword in SQL_KEYWORDS:
            if keyword.lower().startswith(lower):
                text = keyword if upper else keyword.lower()
                yield Completion(text, start_position=-len(word), display_meta="keyword")
