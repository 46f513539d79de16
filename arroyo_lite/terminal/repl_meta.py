"""The REPL's backslash meta commands: ``\\tables``, ``\\d``, ``\\status``, ``\\watch``,
``\\help``, ``\\q``. :class:`MetaCommands` runs one; :class:`ReplOutput` is where the REPL
and its commands print, and :class:`Outcome` what one input did."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from arroyo_lite.errors import ArroyoLiteError, SourcePosition, closest, did_you_mean
from arroyo_lite.sql.statements import Query
from arroyo_lite.terminal import render
from arroyo_lite.terminal.diagnostics import render_error
from arroyo_lite.terminal.watch import run_queries

if TYPE_CHECKING:
    from arroyo_lite.session import Session

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


@dataclass
class Outcome:
    """What one input did: whether it succeeded, and whether the user asked to quit."""

    ok: bool = True
    quit: bool = False


@dataclass
class ReplOutput:
    """Where the REPL prints: results on ``console``, errors on ``err`` (in red), and the
    raw bytes of ``\\watch`` on ``out``."""

    console: Console
    err: Console
    out: IO[bytes]

    def error(self, message: str) -> Outcome:
        """Print ``message`` as an error; the failed :class:`Outcome` to return."""
        self.err.print(message, style="red", markup=False, highlight=False)
        return Outcome(ok=False)


class MetaCommands:
    """Runs the meta commands against one session."""

    def __init__(self, session: Session, output: ReplOutput) -> None:
        self.session = session
        self.output = output

    def run(self, text: str) -> Outcome:
        command, _, arg = text.partition(" ")
        command = command.rstrip(";")
        arg = arg.strip()
        if command in ("\\q", "\\quit", "\\exit"):
            return Outcome(quit=True)
        if command in ("\\help", "\\h", "\\?"):
            self.output.console.print(HELP, markup=False, highlight=False)
            return Outcome()
        if command in ("\\tables", "\\dt") or (command == "\\d" and not arg):
            self.output.console.print(self._tables_table())
            return Outcome()
        if command == "\\d":
            return self._describe(arg.rstrip(";").strip())
        if command == "\\status":
            now = time.time_ns()
            self.output.console.print(render.status_table(self.session.status(), now_ns=now))
            return Outcome()
        if command == "\\watch":
            return self._watch(arg)
        known = closest(command, META_COMMANDS)
        hint = f" (did you mean {known}?)" if known else ""
        return self.output.error(
            f"error: unknown command {command}{hint}; \\help lists the commands"
        )

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

    def _describe(self, name: str) -> Outcome:
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
                return self.output.error(render_error(e))
            hint = did_you_mean(name, tables)
            hint = f" ({hint})" if hint else ""
            return self.output.error(f"error: no table or view named '{name}'{hint}")
        self.output.console.print(render.schema_table(match, schema))
        return Outcome()

    def _watch(self, arg: str) -> Outcome:
        duration: float | None = None
        first, _, rest = arg.partition(" ")
        if re.fullmatch(r"\d+(\.\d+)?", first):
            duration, arg = float(first), rest.strip()
        query = arg.strip().rstrip(";").strip()
        if not query:
            return self.output.error("error: \\watch needs a query, e.g. \\watch SELECT * FROM t")
        statement = Query(text=query, position=SourcePosition("<watch>", 1, 1), query=query)
        self.output.err.print(
            "watching" + (f" for {duration:g}s" if duration else " (Ctrl-C to stop)"),
            style="dim",
            markup=False,
        )
        code = run_queries(
            self.session,
            [statement],
            fmt="table",
            duration=duration,
            out=self.output.out,
            err_stream=self.output.err.file,
            progress=False,
            source=query,
        )
        return Outcome(ok=code == 0)
