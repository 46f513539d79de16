"""The interactive SQL shell over live tables (``arroyo-lite repl``), on prompt_toolkit.

:class:`Repl` owns what one line of input does: SQL statements go to the
:class:`~arroyo_lite.Session` (DDL starts new sources at once; bare SELECTs run as snapshot
queries and print as aligned tables) and backslash meta commands (``\\tables``, ``\\d``,
``\\status``, ``\\watch``, ``\\help``, ``\\q``) are handled here. Errors are printed, never raised:
the shell goes on. :meth:`Repl.interact` is the terminal loop (multi-line input ending in ``;``,
persistent history, completion of keywords, tables and columns); :meth:`Repl.run_script` reads
statements from a non-terminal stdin.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, TypeVar

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from arroyo_lite.errors import ArroyoLiteError, SourcePosition
from arroyo_lite.sql.statements import CreateTable, CreateView, Insert, Query, SetOption, Statement
from arroyo_lite.terminal import render
from arroyo_lite.terminal.signals import sigint_blocked, sigint_ignored
from arroyo_lite.terminal.watch import relocate, run_queries

if TYPE_CHECKING:
    from arroyo_lite.session import Session

_T = TypeVar("_T")

#: Environment variable that overrides where the history is kept (tests use it).
HISTORY_ENV = "ARROYO_LITE_HISTORY"
#: Rows a snapshot query prints before it says how many were left out.
MAX_ROWS = 1000

_KEYWORDS = """
SELECT FROM WHERE GROUP BY ORDER HAVING LIMIT OFFSET AS AND OR NOT NULL IS IN LIKE
ILIKE BETWEEN CASE WHEN THEN ELSE END DISTINCT JOIN LEFT RIGHT INNER OUTER FULL CROSS
ON USING UNION ALL EXCEPT INTERSECT WITH CREATE TABLE VIEW TEMPORARY INSERT INTO VALUES
SET CONNECTOR FORMAT ASC DESC OVER PARTITION WINDOW COUNT SUM AVG MIN MAX CAST TRUE
FALSE TEXT VARCHAR BIGINT INT INTEGER DOUBLE FLOAT BOOLEAN TIMESTAMP JSON GENERATED
ALWAYS STORED WATERMARK METADATA UNNEST EXTRACT_JSON EXTRACT_JSON_STRING JSON_GET
JSON_GET_STR JSON_GET_INT JSON_GET_FLOAT JSON_GET_BOOL ROW_TIME TUMBLE HOP INTERVAL
"""
#: Completed at the prompt (with tables and columns).
SQL_KEYWORDS = tuple(_KEYWORDS.split())

HELP = """\
Statements end with ';' and may span lines. CREATE TABLE ... WITH (...) starts
the table's source at once; a SELECT prints a snapshot of the rows so far.

  \\tables (\\dt, \\d)    tables and views: kind, connector, state and rows
  \\d TABLE             columns of TABLE: Arrow type and nullability
  \\status              per source: state, polls, failures, rows, last error
  \\watch [S] QUERY     run QUERY continuously until Ctrl-C (or for S seconds):
                       new rows once each, or an aggregate's updated result
  \\help                this text
  \\q                   quit (also Ctrl-D)

Ctrl-C cancels the running query or \\watch, not the session. History is kept in
$ARROYO_LITE_HISTORY, else $XDG_STATE_HOME/arroyo-lite/history,
else ~/.arroyo_lite_history (repl --history FILE overrides)."""

META_COMMANDS = ("\\tables", "\\d", "\\status", "\\watch", "\\help", "\\q")


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


def is_complete(text: str) -> bool:
    """Whether ``text`` is ready to run: a meta command, or SQL whose last token is ``;``.

    A ``;`` inside a string or comment does not count (the SQL tokenizer decides); an
    unterminated string or comment means more lines are coming.
    """
    stripped = text.strip()
    if not stripped or stripped.startswith("\\"):
        return True
    try:
        tokens = _tokenize(stripped)
    except Exception:
        return False  # unterminated string or comment: keep reading
    if not tokens:
        return True  # only comments
    return bool(tokens[-1].token_type.name == "SEMICOLON")


@dataclass
class _Outcome:
    ok: bool = True
    quit: bool = False


class Repl:
    """One REPL over one session. Output goes to ``console``, errors to ``err``.

    :meth:`handle` runs one complete input (SQL or a meta command) and returns whether to
    go on; nothing it does raises except ``KeyboardInterrupt`` outside a running query.
    """

    def __init__(
        self,
        session: Session,
        *,
        console: Console | None = None,
        err: Console | None = None,
        out: IO[bytes] | None = None,
    ) -> None:
        import sys

        self.session = session
        self.console = console or Console(emoji=False, highlight=False)
        self.err = err or Console(stderr=True, emoji=False, highlight=False, soft_wrap=True)
        self.out = out or sys.stdout.buffer
        self.errors = 0
        self._inputs = 0

    # -- input dispatch ---------------------------------------------------------------------

    def handle(self, text: str, *, file: str | None = None, line: int = 1) -> bool:
        """Run one input; return False when the user asked to quit.

        Error positions name ``file`` (default ``<repl>``, ``<repl:N>`` for the N-th input)
        with ``line`` as the input's first line.
        """
        stripped = text.strip()
        if not stripped:
            return True
        self._inputs += 1
        if stripped.startswith("\\"):
            outcome = self._meta(stripped)
        else:
            label = file or ("<repl>" if self._inputs <= 1 else f"<repl:{self._inputs}>")
            # Leading newlines shift every position the front end reports to the real line.
            outcome = self._sql("\n" * (line - 1) + text, label)
        if not outcome.ok:
            self.errors += 1
        return not outcome.quit

    def _error(self, message: str) -> _Outcome:
        self.err.print(message, style="red", markup=False, highlight=False)
        return _Outcome(ok=False)

    def _sql(self, text: str, label: str) -> _Outcome:
        try:
            program = self._interruptible(lambda: self.session.execute(text, file=label))
        except ArroyoLiteError as e:
            return self._error(e.format())
        except KeyboardInterrupt:
            return self._error("cancelled")
        ok = True
        for statement in program.statements:
            if isinstance(statement, Query):
                ok = self._query(statement) and ok
            else:
                self._confirm(statement)
        return _Outcome(ok=ok)

    def _interruptible(self, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` on a worker thread so Ctrl-C reaches us while DuckDB works.

        On Ctrl-C the session's query is interrupted (``Session.interrupt`` if it has one),
        the worker is waited for, and ``KeyboardInterrupt`` propagates: one caller at a time
        uses the session, as its contract asks.
        """
        box: dict[str, Any] = {}
        done = threading.Event()

        def target() -> None:
            try:
                box["value"] = fn()
            except BaseException as e:  # handed to the calling thread below
                box["error"] = e
            finally:
                done.set()

        worker = threading.Thread(target=target, name="repl-query", daemon=True)
        try:
            # SIGINT is held back while the thread starts: a Ctrl-C inside Thread.start() would
            # leave a thread that runs the query with nobody waiting to interrupt it. The
            # worker inherits the mask, so the signal always lands here, on the main thread.
            with sigint_blocked():
                worker.start()
            while not done.wait(0.1):
                pass
        except KeyboardInterrupt:
            self._stop_worker(done)
            raise
        if "error" in box:
            raise box["error"]
        value: _T = box["value"]
        return value

    def _stop_worker(self, done: threading.Event) -> None:
        """Interrupt the session until the worker is done (bounded).

        Repeated, because a Ctrl-C can come before DuckDB has started the query, when there is
        nothing to interrupt yet.
        """
        interrupt = getattr(self.session, "interrupt", None)
        deadline = time.monotonic() + 30
        while not done.is_set() and time.monotonic() < deadline:
            if callable(interrupt):
                with contextlib.suppress(Exception):
                    interrupt()
            done.wait(0.1)

    def _query(self, statement: Query) -> bool:
        try:
            result = self._interruptible(lambda: self.session.query(statement.query))
        except ArroyoLiteError as e:
            self._error(relocate(e, statement).format())
            return False
        except KeyboardInterrupt:
            self._error("query cancelled")
            return False
        self.console.print(render.rich_table(result, max_rows=MAX_ROWS))
        return True

    def _confirm(self, statement: Statement) -> None:
        if isinstance(statement, CreateTable):
            table = statement.table
            if table.connector:
                what = f"CREATE TABLE {table.name}: source started ({table.connector})"
            else:
                what = f"CREATE TABLE {table.name}"
        elif isinstance(statement, CreateView):
            what = f"CREATE VIEW {statement.name}"
        elif isinstance(statement, Insert):
            what = f"INSERT INTO {statement.target}"
        elif isinstance(statement, SetOption):
            what = f"SET {statement.name}"
        else:
            what = "OK"
        self.console.print(what, style="green", markup=False, highlight=False)

    # -- meta commands ----------------------------------------------------------------------

    def _meta(self, text: str) -> _Outcome:
        command, _, arg = text.partition(" ")
        command = command.rstrip(";")
        arg = arg.strip()
        if command in ("\\q", "\\quit", "\\exit"):
            return _Outcome(quit=True)
        if command in ("\\help", "\\h", "\\?"):
            self.console.print(HELP, markup=False, highlight=False)
            return _Outcome()
        if command in ("\\tables", "\\dt") or (command == "\\d" and not arg):
            self.console.print(self._tables_table())
            return _Outcome()
        if command == "\\d":
            return self._describe(arg.rstrip(";").strip())
        if command == "\\status":
            now = time.time_ns()
            self.console.print(render.status_table(self.session.status(), now_ns=now))
            return _Outcome()
        if command == "\\watch":
            return self._watch(arg)
        known = difflib.get_close_matches(command, META_COMMANDS, n=1)
        hint = f" (did you mean {known[0]}?)" if known else ""
        return self._error(f"error: unknown command {command}{hint}; \\help lists the commands")

    def _tables_table(self) -> Table:
        statuses = {s.table: s for s in self.session.status()}
        out = Table(box=box.SIMPLE_HEAD, show_edge=False)
        for name in ("name", "kind", "connector", "state"):
            out.add_column(name)
        out.add_column("rows", justify="right")
        for name in self.session.tables():
            s = statuses.get(name)
            config = self.session.config(name)
            kind = "view" if config is None else str(config.kind)
            if s is None:
                out.add_row(Text(name), kind, "-", "-", "-")
            else:
                out.add_row(Text(name), kind, Text(s.connector), str(s.state), str(s.rows))
        return out

    def _describe(self, name: str) -> _Outcome:
        tables = list(self.session.tables())
        match = next((t for t in tables if t == name), None)
        match = match or next((t for t in tables if t.lower() == name.lower()), None)
        try:
            if match is not None:
                schema = self.session.schema(match)
            else:
                # Not a table of the session, but maybe something DuckDB can read (the
                # arroyo_status table): its columns are those of an empty SELECT.
                quoted = '"' + name.replace('"', '""') + '"'
                schema = self.session.query(f"SELECT * FROM {quoted} LIMIT 0").schema
                match = name
        except ArroyoLiteError as e:
            if match is not None:
                return self._error(e.format())
            close = difflib.get_close_matches(name, tables, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            return self._error(f"error: no table or view named '{name}'{hint}")
        self.console.print(render.schema_table(match, schema))
        return _Outcome()

    def _watch(self, arg: str) -> _Outcome:
        duration: float | None = None
        first, _, rest = arg.partition(" ")
        if re.fullmatch(r"\d+(\.\d+)?", first):
            duration, arg = float(first), rest.strip()
        query = arg.strip().rstrip(";").strip()
        if not query:
            return self._error("error: \\watch needs a query, e.g. \\watch SELECT * FROM t")
        statement = Query(text=query, position=SourcePosition("<watch>", 1, 1), query=query)
        self.err.print(
            "watching" + (f" for {duration:g}s" if duration else " (Ctrl-C to stop)"),
            style="dim",
            markup=False,
        )
        code = run_queries(
            self.session,
            [statement],
            fmt="table",
            duration=duration,
            out=self.out,
            err_stream=self.err.file,
            progress=False,
        )
        return _Outcome(ok=code == 0)

    # -- loops ------------------------------------------------------------------------------

    def run_script(self, lines: Iterable[str]) -> int:
        """Run statements read from ``lines`` (stdin that is not a terminal).

        Statements may span lines and end with ``;``; a line starting with ``\\`` (outside a
        statement) is a meta command. Returns 0 if every input succeeded, else 1.
        """
        for line, text in numbered_inputs(lines):
            if not self.handle(text, file="<stdin>", line=line):
                break
        return 1 if self.errors else 0

    def interact(self, history: Path | None = None) -> int:
        """The terminal loop: prompt, run, repeat, until ``\\q`` or Ctrl-D. Returns 0."""
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory, History, InMemoryHistory
        from prompt_toolkit.patch_stdout import patch_stdout

        hist: History
        try:
            path = history or history_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch(exist_ok=True)
            hist = FileHistory(str(path))
        except OSError:
            hist = InMemoryHistory()
        prompt: PromptSession[str] = PromptSession(
            "arroyo> ",
            multiline=True,
            key_bindings=_bindings(),
            completer=SessionCompleter(self.session),
            complete_while_typing=False,
            history=hist,
            prompt_continuation=lambda width, line, wrap: "...> ".rjust(width),
        )
        self.console.print(
            "arroyo-lite SQL shell: statements end with ';'. \\help for commands, \\q to quit.",
            markup=False,
            highlight=False,
        )
        while True:
            # One try around the whole step: a Ctrl-C between two statements, outside both
            # the prompt and a query, must not end the session either.
            try:
                try:
                    # patch_stdout: output from other threads (a source's log line) is
                    # printed above the prompt rather than through the line being typed.
                    with sigint_ignored(), patch_stdout(raw=True):
                        text = prompt.prompt(handle_sigint=False)
                except KeyboardInterrupt:
                    continue  # Ctrl-C at the prompt clears the line
                if not self.handle(text):
                    break
            except EOFError:
                break
            except KeyboardInterrupt:
                self.err.print("cancelled", style="red")
        return 0


def split_script(lines: Iterable[str]) -> Iterator[str]:
    """Group input lines into complete inputs: meta-command lines and ``;``-ended SQL."""
    for _, text in numbered_inputs(lines):
        yield text


def numbered_inputs(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """:func:`split_script` with the 1-based line number where each input starts."""
    buffer: list[str] = []
    start = 0
    for number, line in enumerate(lines, start=1):
        if not buffer and line.strip().startswith("\\"):
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


def _bindings() -> Any:
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
        if stripped.startswith("\\") and " " not in stripped:
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
