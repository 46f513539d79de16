"""The interactive SQL shell over live tables (``arroyo-lite repl``), on prompt_toolkit.

:class:`Repl` owns what one input does: SQL statements go to the
:class:`~arroyo_lite.Session` (DDL starts new sources at once, ``DROP`` stops them; bare
SELECTs run as snapshot queries and print through
:class:`~arroyo_lite.terminal.repl_output.ReplOutput`; ``COPY`` writes a file) and meta
commands (``\\tables``, ``.mode csv``) go to
:class:`~arroyo_lite.terminal.repl_meta.MetaCommands`, except the three that run other inputs,
which are here: ``\\i FILE``, ``\\e`` and psql's ``QUERY \\watch N``. Errors are printed,
never raised, positioned ``<repl>:LINE:COL`` (LINE within the input): the shell goes on.
:meth:`Repl.interact` is the terminal loop (multi-line input ending in ``;``, persistent
history, completion from :mod:`~arroyo_lite.terminal.repl_input`); :meth:`Repl.run_script`
reads inputs from a non-terminal stdin.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

from rich.console import Console

from arroyo_lite.errors import ArroyoLiteError
from arroyo_lite.sql.statements import (
    Copy,
    CreateTable,
    CreateView,
    Drop,
    Insert,
    Query,
    SetOption,
    Statement,
)
from arroyo_lite.terminal.diagnostics import render_error
from arroyo_lite.terminal.repl_input import (
    SessionCompleter,
    history_path,
    key_bindings,
    numbered_inputs,
    split_watch,
)
from arroyo_lite.terminal.repl_meta import MetaCommands, canonical
from arroyo_lite.terminal.repl_output import MAX_ROWS, Outcome, ReplOutput
from arroyo_lite.terminal.signals import run_interruptibly, sigint_ignored
from arroyo_lite.terminal.watch import relocate

if TYPE_CHECKING:
    import pyarrow as pa

    from arroyo_lite.session import Session

_T = TypeVar("_T")

__all__ = ["MAX_ROWS", "Repl"]

#: psql's default ``\\watch`` interval, in seconds.
WATCH_SECONDS = 2.0


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
        self.session = session
        self.output = ReplOutput(
            console=console or Console(emoji=False, highlight=False),
            err=err or Console(stderr=True, emoji=False, highlight=False, soft_wrap=True),
            out=out or sys.stdout.buffer,
        )
        self.meta = MetaCommands(session, self.output)
        self.errors = 0
        #: The last SQL input (what ``\\e`` edits and a bare ``\\watch`` re-runs).
        self.last_sql: str | None = None
        self._depth = 0  # \i nesting

    @property
    def console(self) -> Console:
        return self.output.console

    @property
    def err(self) -> Console:
        return self.output.err

    # -- input dispatch ---------------------------------------------------------------------

    def handle(self, text: str, *, file: str | None = None, line: int = 1) -> bool:
        """Run one input; return False when the user asked to quit.

        Error positions name ``file`` (default ``<repl>``) with ``line`` as the input's
        first line.
        """
        stripped = text.strip()
        if not stripped:
            return True
        label = file or "<repl>"
        if stripped.startswith(("\\", ".")):
            outcome = self._meta(stripped, label)
        else:
            sql, watch = split_watch(text)
            if watch is not None:
                outcome = self._watch(sql, watch, label, line)
            else:
                # Leading newlines shift every position the front end reports to the line.
                outcome = self._sql("\n" * (line - 1) + text, label)
                self.last_sql = text.strip()
        if not outcome.ok:
            self.errors += 1
        return not outcome.quit

    def _meta(self, text: str, label: str) -> Outcome:
        command, _, arg = text.partition(" ")
        command = canonical(command.rstrip(";"))
        if command == "\\i":
            return self._include(arg.strip())
        if command == "\\e":
            return self._edit(label)
        if command == "\\watch":
            return self._watch(None, arg, label, 1)
        return self.meta.run(text)

    def _sql(self, text: str, label: str) -> Outcome:
        started = time.perf_counter()
        try:
            program = self._interruptible(lambda: self.session.execute(text, file=label))
        except ArroyoLiteError as e:
            return self.output.error(render_error(e, text, file=label))
        except KeyboardInterrupt:
            return self.output.error("cancelled")
        ok = True
        for statement in program.statements:
            if isinstance(statement, Query):
                ok = self._query(statement, text) and ok
            elif isinstance(statement, Copy):
                ok = self._copy(statement, text) and ok
            else:
                self._confirm(statement)
        self._timed(started)
        return Outcome(ok=ok)

    def _timed(self, started: float) -> None:
        if self.output.timing:
            ms = (time.perf_counter() - started) * 1000
            self.output.note(f"Time: {ms:.3f} ms", style="dim")

    def _interruptible(self, fn: Callable[[], _T]) -> _T:
        """``fn()`` on a worker thread; Ctrl-C interrupts the session's query (one caller at a
        time uses the session, as its contract asks)."""
        interrupt = getattr(self.session, "interrupt", None)
        return run_interruptibly(fn, interrupt if callable(interrupt) else None)

    def _run_query(self, statement: Query, source: str) -> pa.Table | None:
        """The snapshot result of ``statement``, or ``None`` after printing its error."""
        try:
            return self._interruptible(lambda: self.session.query(statement.query))
        except ArroyoLiteError as e:
            where = statement.position.file
            self.output.error(render_error(relocate(e, statement), source, file=where))
        except KeyboardInterrupt:
            self.output.error("query cancelled")
        return None

    def _query(self, statement: Query, source: str) -> bool:
        result = self._run_query(statement, source)
        if result is None:
            return False
        self.output.result(result)
        return True

    def _copy(self, statement: Copy, source: str) -> bool:
        try:
            count = self._interruptible(lambda: self.session.run_copy(statement))
        except ArroyoLiteError as e:
            where = statement.position.file
            self.output.error(render_error(relocate(e, statement), source, file=where))
            return False
        except KeyboardInterrupt:
            self.output.error("COPY cancelled")
            return False
        self.output.note(f"COPY {count}")
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
        elif isinstance(statement, Drop):
            what = f"DROP {statement.kind.upper()} {statement.name}"
        elif isinstance(statement, Insert):
            what = f"INSERT INTO {statement.target}"
        elif isinstance(statement, SetOption):
            what = f"SET {statement.name}"
        else:
            what = "OK"
        self.output.note(what)

    # -- commands that run inputs -------------------------------------------------------------

    def _include(self, arg: str) -> Outcome:
        """``\\i FILE``: run FILE's inputs as if typed; errors name FILE:LINE:COL."""
        if not arg:
            return self.output.error("error: \\i needs a file, e.g. \\i setup.sql")
        path = Path(arg).expanduser()
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as e:
            return self.output.error(f"error: cannot read {path}: {getattr(e, 'strerror', e)}")
        if self._depth >= 16:
            return self.output.error(f"error: \\i {path}: nested too deeply (a loop?)")
        before = self.errors
        self._depth += 1
        try:
            for line, item in numbered_inputs(text.splitlines(keepends=True)):
                if not self.handle(item, file=str(path), line=line):
                    return Outcome(quit=True, ok=self.errors == before)
        finally:
            self._depth -= 1
        return Outcome(ok=self.errors == before)

    def _edit(self, label: str) -> Outcome:
        """``\\e``: the last SQL input in $VISUAL/$EDITOR; what is saved then runs."""
        editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
        with tempfile.NamedTemporaryFile(
            "w", suffix=".sql", prefix="arroyo-lite-", delete=False, encoding="utf-8"
        ) as f:
            f.write((self.last_sql or "") + "\n")
            path = Path(f.name)
        try:
            done = subprocess.run([*shlex.split(editor), str(path)], check=False)
            text = path.read_text(encoding="utf-8")
        except (OSError, ValueError) as e:
            return self.output.error(f"error: cannot run the editor '{editor}': {e}")
        finally:
            path.unlink(missing_ok=True)
        if done.returncode != 0:
            return self.output.error(f"error: the editor exited with status {done.returncode}")
        if not text.strip():
            return Outcome()
        self.output.console.print(text.strip(), markup=False, highlight=False, style="dim")
        outcome = Outcome()
        for line, item in numbered_inputs(text.splitlines(keepends=True)):
            if not self.handle(item, file=label, line=line):
                outcome.quit = True
                break
        return outcome

    def _watch(self, sql: str | None, arg: str, label: str, line: int) -> Outcome:
        """psql's ``\\watch``: re-run a query every N seconds until Ctrl-C (or ``count=C``
        runs). ``sql`` is the query typed before it; ``None`` re-runs the last one."""
        options = _watch_options(arg)
        if isinstance(options, str):
            return self.output.error(options)
        seconds, count = options
        text = (sql or "").strip() or self.last_sql
        if not text:
            return self.output.error(
                "error: \\watch re-runs a query: type QUERY \\watch N (psql), or run a "
                "query first"
            )
        text = text.rstrip().rstrip(";")
        try:
            program = self.session.execute("\n" * (line - 1) + text + ";", file=label)
        except ArroyoLiteError as e:
            return self.output.error(render_error(e, text, file=label))
        queries = [s for s in program.statements if isinstance(s, Query)]
        if len(queries) != 1 or len(program.statements) != 1:
            return self.output.error("error: \\watch runs one SELECT")
        self.last_sql = text + ";"
        statement, runs = queries[0], 0
        try:
            while count is None or runs < count:
                if runs:
                    time.sleep(seconds)
                started = time.perf_counter()
                result = self._run_query(statement, text)
                if result is None:
                    return Outcome(ok=False)
                stamp = dt.datetime.now().astimezone().strftime("%a %b %d %H:%M:%S %Y")
                self.output.result(result, title=f"{stamp} (every {seconds:g}s)")
                self._timed(started)
                runs += 1
        except KeyboardInterrupt:
            pass
        return Outcome()

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
            key_bindings=key_bindings(),
            completer=SessionCompleter(self.session),
            complete_while_typing=False,
            history=hist,
            prompt_continuation=lambda width, line, wrap: "...> ".rjust(width),
        )
        self.output.console.print(
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
                self.output.err.print("cancelled", style="red")
        return 0


def _watch_options(arg: str) -> tuple[float, int | None] | str:
    """psql's ``\\watch [[i=]SECONDS] [c=COUNT]`` -> ``(seconds, count)``, or an error text."""
    seconds, count = WATCH_SECONDS, None
    for word in arg.rstrip(";").split():
        key, eq, value = word.partition("=")
        if not eq:
            key, value = "interval", word
        try:
            if "interval".startswith(key.lower()) and key:
                seconds = float(value)
                if not seconds > 0:
                    raise ValueError
            elif "count".startswith(key.lower()) and key:
                count = int(value)
                if count < 1:
                    raise ValueError
            else:
                raise ValueError
        except ValueError:
            if re.match(r"(?i)\s*(select|with|from)\b", arg):
                return (
                    "error: \\watch now means psql's: QUERY \\watch N re-runs QUERY every N "
                    "seconds; for the live view of a continuous query use \\live QUERY"
                )
            return f"error: \\watch: bad argument '{word}' (SECONDS, i=SECONDS or c=COUNT)"
    return seconds, count
