"""The interactive SQL shell over live tables (``arroyo-lite repl``), on prompt_toolkit.

:class:`Repl` owns what one line of input does: SQL statements go to the
:class:`~arroyo_lite.Session` (DDL starts new sources at once; bare SELECTs run as snapshot
queries and print as aligned tables) and backslash meta commands go to
:class:`~arroyo_lite.terminal.repl_meta.MetaCommands`. Errors are printed, never raised: the
shell goes on. :meth:`Repl.interact` is the terminal loop (multi-line input ending in ``;``,
persistent history, completion from :mod:`~arroyo_lite.terminal.repl_input`);
:meth:`Repl.run_script` reads statements from a non-terminal stdin.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

from rich.console import Console

from arroyo_lite.errors import ArroyoLiteError
from arroyo_lite.sql.statements import CreateTable, CreateView, Insert, Query, SetOption, Statement
from arroyo_lite.terminal import render
from arroyo_lite.terminal.diagnostics import render_error
from arroyo_lite.terminal.repl_input import (
    SessionCompleter,
    history_path,
    key_bindings,
    numbered_inputs,
)
from arroyo_lite.terminal.repl_meta import MetaCommands, Outcome, ReplOutput
from arroyo_lite.terminal.signals import run_interruptibly, sigint_ignored
from arroyo_lite.terminal.watch import relocate

if TYPE_CHECKING:
    from arroyo_lite.session import Session

_T = TypeVar("_T")

#: Rows a snapshot query prints before it says how many were left out.
MAX_ROWS = 1000


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
        self._inputs = 0

    @property
    def console(self) -> Console:
        return self.output.console

    @property
    def err(self) -> Console:
        return self.output.err

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
            outcome = self.meta.run(stripped)
        else:
            label = file or ("<repl>" if self._inputs <= 1 else f"<repl:{self._inputs}>")
            # Leading newlines shift every position the front end reports to the real line.
            outcome = self._sql("\n" * (line - 1) + text, label)
        if not outcome.ok:
            self.errors += 1
        return not outcome.quit

    def _sql(self, text: str, label: str) -> Outcome:
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
            else:
                self._confirm(statement)
        return Outcome(ok=ok)

    def _interruptible(self, fn: Callable[[], _T]) -> _T:
        """``fn()`` on a worker thread; Ctrl-C interrupts the session's query (one caller at a
        time uses the session, as its contract asks)."""
        interrupt = getattr(self.session, "interrupt", None)
        return run_interruptibly(fn, interrupt if callable(interrupt) else None)

    def _query(self, statement: Query, source: str) -> bool:
        try:
            result = self._interruptible(lambda: self.session.query(statement.query))
        except ArroyoLiteError as e:
            where = statement.position.file
            self.output.error(render_error(relocate(e, statement), source, file=where))
            return False
        except KeyboardInterrupt:
            self.output.error("query cancelled")
            return False
        self.output.console.print(render.rich_table(result, max_rows=MAX_ROWS))
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
        self.output.console.print(what, style="green", markup=False, highlight=False)

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
