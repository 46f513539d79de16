"""The REPL's meta commands: psql's backslash commands and the duckdb CLI's dot commands.

:class:`MetaCommands` runs the ones that need only the session and the output (catalog,
status, settings, ``\\pause``, ``\\copy``, ``\\live``); the ones that run other inputs
(``\\i``, ``\\e``, ``\\watch``) are the REPL's own (:mod:`arroyo_lite.terminal.repl`).
:data:`COMMANDS` is the one list of every command, its aliases and help line: the help text
and tab completion derive from it.
"""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from rich import box
from rich.table import Table
from rich.text import Text

from arroyo_lite.errors import ArroyoLiteError, SourcePosition, closest, did_you_mean
from arroyo_lite.sql.statements import Query
from arroyo_lite.terminal import render
from arroyo_lite.terminal.diagnostics import render_error
from arroyo_lite.terminal.repl_output import MODE_NAMES, Outcome, ReplOutput
from arroyo_lite.terminal.watch import run_queries

if TYPE_CHECKING:
    import pyarrow as pa

    from arroyo_lite.session import Session

__all__ = ["COMMANDS", "HELP", "META_COMMANDS", "MetaCommands", "Outcome", "ReplOutput"]


@dataclass(frozen=True)
class Command:
    """One meta command: its name, aliases (psql's and the duckdb CLI's), usage and help."""

    name: str
    usage: str
    help: str
    aliases: tuple[str, ...] = ()


COMMANDS: tuple[Command, ...] = (
    Command("\\tables", "\\tables", "tables and views: kind, connector, state, rows",
            ("\\dt", ".tables")),
    Command("\\d", "\\d [TABLE]", "columns of TABLE (no TABLE: \\tables)", (".schema",)),
    Command("\\status", "\\status", "per source: state, polls, failures, rows, last error"),
    Command("\\pause", "\\pause TABLE", "stop polling TABLE for now (rows and state kept)"),
    Command("\\resume", "\\resume TABLE", "start a paused TABLE again"),
    Command("\\watch", "QUERY \\watch [N] [count=C]",
            "re-run QUERY (or the last one) every N seconds (2) until Ctrl-C, as psql's"),
    Command("\\live", "\\live [--changes] [S] QUERY",
            "QUERY as a continuous query until Ctrl-C (or for S seconds): new rows, or an "
            "aggregate's result redrawn (--changes: its changes, _op + / -)"),
    Command("\\partial", "\\partial QUERY",
            "the windows of a windowed QUERY still open now, labelled partial (not final: "
            "each window is emitted once the watermark passes its end)"),
    Command("\\x", "\\x [on|off]", "expanded display: one field per line", (".mode line",)),
    Command("\\timing", "\\timing [on|off]", "print how long each statement took",
            (".timer",)),
    Command("\\pset", "\\pset pager|format|expanded [VALUE]",
            "pager on|off; format aligned|csv|json; expanded on|off"),
    Command("\\mode", ".mode table|csv|json|line", "result format (the duckdb CLI's .mode)",
            (".mode",)),
    Command("\\o", "\\o [FILE]", "send results to FILE (no FILE: back to the terminal)",
            (".output",)),
    Command("\\i", "\\i FILE", "run the statements and commands of FILE", (".read",)),
    Command("\\e", "\\e", "edit the last input in $EDITOR, then run it"),
    Command("\\copy", "\\copy (QUERY) TO FILE [(FORMAT f)]",
            "write QUERY's rows to FILE: csv, parquet or json (also: COPY ... TO 'file')"),
    Command("\\help", "\\help", "this text", ("\\h", "\\?", ".help")),
    Command("\\q", "\\q", "quit (also Ctrl-D)", ("\\quit", "\\exit", ".quit", ".exit")),
)  # fmt: skip


def _help() -> str:
    width = max(len(c.usage) for c in COMMANDS) + 2
    lines = [
        "Statements end with ';' and may span lines. CREATE TABLE ... WITH (...) starts",
        "the table's source at once; a SELECT prints a snapshot of the rows so far;",
        "DROP TABLE|VIEW, CREATE OR REPLACE VIEW and COPY (QUERY) TO 'file' work too.",
        "",
    ]
    for c in COMMANDS:
        aliases = f" ({', '.join(a for a in c.aliases)})" if c.aliases else ""
        lines.append(f"  {c.usage.ljust(width)}{c.help}{aliases}")
    lines += [
        "",
        "Ctrl-C cancels the running query, \\watch or \\live, not the session. History is",
        "kept in $ARROYO_LITE_HISTORY, else $XDG_STATE_HOME/arroyo-lite/history,",
        "else ~/.arroyo_lite_history (repl --history FILE overrides).",
    ]
    return "\n".join(lines)


HELP = _help()

#: Every command name and alias (completion, did-you-mean).
META_COMMANDS = tuple(
    name for c in COMMANDS for name in (c.name, *c.aliases) if " " not in name
)
_ALIASES = {alias: c.name for c in COMMANDS for alias in c.aliases if " " not in alias}


def canonical(command: str) -> str:
    """``.tables`` -> ``\\tables``, ``\\dt`` -> ``\\tables``: the name a command runs as."""
    return _ALIASES.get(command, command)


def _switch(arg: str, current: bool) -> bool | None:
    """psql's boolean argument: none toggles; on/off, true/false, 1/0 set; else ``None``."""
    word = arg.strip().lower()
    if not word:
        return not current
    if word in ("on", "true", "1", "yes"):
        return True
    if word in ("off", "false", "0", "no"):
        return False
    return None


class MetaCommands:
    """Runs the meta commands against one session."""

    def __init__(self, session: Session, output: ReplOutput) -> None:
        self.session = session
        self.output = output
        self._handlers: dict[str, Callable[[str], Outcome]] = {
            "\\tables": lambda arg: self._tables(),
            "\\d": self._describe_or_list,
            "\\status": lambda arg: self._status(),
            "\\pause": self._pause,
            "\\resume": self._resume,
            "\\live": self._live,
            "\\partial": self._partial,
            "\\x": self._expanded,
            "\\timing": self._timing,
            "\\pset": self._pset,
            "\\mode": self._mode,
            "\\o": self._redirect,
            "\\copy": self._copy,
            "\\help": lambda arg: self._help(),
            "\\q": lambda arg: Outcome(quit=True),
        }

    def run(self, text: str) -> Outcome:
        """Run one meta command line (``\\name args`` or ``.name args``)."""
        command, _, arg = text.strip().partition(" ")
        command = canonical(command.rstrip(";"))
        handler = self._handlers.get(command)
        if handler is not None:
            return handler(arg.strip())
        known = closest(command, META_COMMANDS)
        hint = f" (did you mean {known}?)" if known else ""
        return self.output.error(
            f"error: unknown command {command}{hint}; \\help lists the commands"
        )

    # -- catalog and sources -------------------------------------------------------------

    def _help(self) -> Outcome:
        self.output.console.print(HELP, markup=False, highlight=False)
        return Outcome()

    def _tables(self) -> Outcome:
        self.output.show(self._tables_table())
        return Outcome()

    def _status(self) -> Outcome:
        now = time.time_ns()
        self.output.show(render.status_table(self.session.status(), now_ns=now))
        return Outcome()

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

    def _describe_or_list(self, arg: str) -> Outcome:
        name = arg.rstrip(";").strip()
        return self._describe(name) if name else self._tables()

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
        self.output.show(render.schema_table(match, schema))
        return Outcome()

    def _pause(self, arg: str) -> Outcome:
        return self._source_step(arg, "\\pause", self.session.pause, "paused")

    def _resume(self, arg: str) -> Outcome:
        return self._source_step(arg, "\\resume", self.session.resume, "resumed")

    def _source_step(
        self, arg: str, command: str, step: Callable[[str], None], done: str
    ) -> Outcome:
        name = arg.rstrip(";").strip()
        if not name:
            return self.output.error(f"error: {command} needs a table, e.g. {command} prices")
        try:
            step(name)
        except ArroyoLiteError as e:
            return self.output.error(render_error(e))
        self.output.note(f"{done} {name}")
        return Outcome()

    # -- settings ------------------------------------------------------------------------

    def _toggle(self, arg: str, setting: str, command: str, says: str) -> Outcome:
        """A psql on/off setting of the output (``expanded``, ``timing``, ``pager``):
        ``says`` is psql's confirmation (``Timing is on.``) without the value."""
        value = _switch(arg, bool(getattr(self.output, setting)))
        if value is None:
            return self.output.error(f"error: {command} takes on or off")
        setattr(self.output, setting, value)
        self.output.note(f"{says} {'on' if value else 'off'}.", style="")
        return Outcome()

    def _expanded(self, arg: str) -> Outcome:
        return self._toggle(arg, "expanded", "\\x", "Expanded display is")

    def _timing(self, arg: str) -> Outcome:
        return self._toggle(arg, "timing", "\\timing", "Timing is")

    def _pset(self, arg: str) -> Outcome:
        option, _, value = arg.partition(" ")
        option, value = option.strip().lower(), value.strip()
        if option == "pager":
            return self._toggle(value, "pager", "\\pset pager", "Pager usage is")
        if option == "format":
            return self._mode(value)
        if option == "expanded":
            return self._expanded(value)
        return self.output.error(
            f"error: \\pset: unknown option '{option}' (pager, format or expanded)"
        )

    def _mode(self, arg: str) -> Outcome:
        word = arg.rstrip(";").strip().lower()
        if not word:
            self.output.note(f"mode: {self.output.mode}", style="")
            return Outcome()
        mode = MODE_NAMES.get(word)
        if mode is None:
            hint = did_you_mean(word, MODE_NAMES)
            return self.output.error(
                f"error: unknown mode '{word}': table, csv, json or line"
                + (f" ({hint})" if hint else "")
            )
        self.output.mode = mode
        return Outcome()

    def _redirect(self, arg: str) -> Outcome:
        path = Path(arg.strip()).expanduser() if arg.strip() else None
        try:
            self.output.redirect(path)
        except OSError as e:
            return self.output.error(f"error: cannot write {path}: {e.strerror or e}")
        return Outcome()

    # -- data out ------------------------------------------------------------------------

    def _copy(self, arg: str) -> Outcome:
        """psql's ``\\copy (QUERY) TO FILE [options]``: COPY with an unquoted file name."""
        parsed = _split_copy(arg)
        if parsed is None:
            return self.output.error(
                "error: \\copy takes (QUERY) TO FILE, e.g. "
                "\\copy (SELECT * FROM prices) TO prices.csv"
            )
        query, file, options = parsed
        target = "'" + file.replace("'", "''") + "'" + (" " + options if options else "")
        try:
            count = self.session.copy(query, target)
        except ArroyoLiteError as e:
            return self.output.error(render_error(e))
        self.output.note(f"COPY {count}")
        return Outcome()

    def _live(self, arg: str) -> Outcome:
        duration: float | None = None
        arg = arg.strip()
        changes = arg.startswith("--changes")
        if changes:
            arg = arg[len("--changes") :].strip()
        first, _, rest = arg.partition(" ")
        if re.fullmatch(r"\d+(\.\d+)?", first):
            duration, arg = float(first), rest.strip()
        query = arg.strip().rstrip(";").strip()
        if not query:
            return self.output.error("error: \\live needs a query, e.g. \\live SELECT * FROM t")
        statement = Query(text=query, position=SourcePosition("<live>", 1, 1), query=query)
        self.output.err.print(
            "live" + (f" for {duration:g}s" if duration else " (Ctrl-C to stop)"),
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
            live=self.output.console.is_terminal and self.output.target is None,
            changes=changes,
        )
        return Outcome(ok=code == 0)


    def _partial(self, arg: str) -> Outcome:
        """The still-open windows of a windowed query, titled as partial: a result of its
        own, never mixed with the closed windows the query emits."""
        query = arg.strip().rstrip(";").strip()
        if not query:
            return self.output.error(
                "error: \\partial needs a windowed query, e.g. \\partial SELECT "
                "tumble(interval '1 minute') AS w, count(*) FROM t GROUP BY 1"
            )
        try:
            table = self.session.open_windows(query)
        except ArroyoLiteError as e:
            return self.output.error(render_error(e))
        self.output.result(table, title=partial_title(table))
        return Outcome()


def partial_title(table: pa.Table) -> str:
    """The title of still-open windows: that they are partial, and the watermark."""
    from arroyo_lite.query.continuous import WATERMARK_KEY  # (imported with the session)

    metadata = table.schema.metadata or {}
    raw = metadata.get(WATERMARK_KEY)
    if raw is None:
        at = "no watermark yet"
    else:
        ns = int(raw)
        stamp = datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.UTC)
        at = "watermark " + stamp.strftime("%Y-%m-%d %H:%M:%S.%f").rstrip("0").rstrip(".")
    count = table.num_rows
    return f"partial: {count} row(s) of windows still open ({at}); not final"


def _split_copy(arg: str) -> tuple[str, str, str] | None:
    """``(QUERY) TO FILE [options]`` -> ``(QUERY, FILE, options)``, or ``None``."""
    text = arg.strip().rstrip(";").strip()
    if not text.startswith("("):
        return None
    depth, quote = 0, ""
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                query, rest = text[1:i].strip(), text[i + 1 :].strip()
                break
    else:
        return None
    words = rest.split(None, 1)
    if len(words) < 2 or words[0].upper() != "TO" or not query:
        return None
    after = words[1].strip()
    if after[0] in "'\"":
        close = after.find(after[0], 1)
        if close < 0:
            return None
        file, options = after[1:close], after[close + 1 :].strip()
    else:
        file, _, options = after.partition(" ")
    if options.upper().startswith("WITH "):
        options = options[5:].strip()
    return query, file, options
