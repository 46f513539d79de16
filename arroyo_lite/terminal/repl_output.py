"""Where the REPL prints, and how: its display settings and the one path results take.

:class:`ReplOutput` holds what psql's ``\\pset`` and the duckdb CLI's ``.mode`` set (the
result format, expanded display, the pager, ``\\timing``) and where results go (the
terminal, or a file after ``\\o FILE``). :meth:`ReplOutput.result` is how every query result
is shown, so each setting applies everywhere (a snapshot SELECT, each round of ``\\watch``,
``\\i FILE``).

The pager is psql's: used only when a result is taller than the terminal, and only on a
terminal; ``$ARROYO_LITE_PAGER``, else ``$PAGER``, else ``less -SRFX``; ``\\pset pager off``
turns it off.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal

from rich.console import Console, RenderableType

from arroyo_lite.terminal import render

if TYPE_CHECKING:
    import pyarrow as pa

#: How results print: aligned tables, CSV, JSON lines, or one field per line (psql's
#: expanded display; the duckdb CLI's ``.mode line``).
ResultMode = Literal["table", "csv", "jsonl", "expanded"]

#: The duckdb CLI's ``.mode`` names and psql's ``\pset format`` names, to ours.
MODE_NAMES: dict[str, ResultMode] = {
    "table": "table",
    "box": "table",
    "duckbox": "table",
    "aligned": "table",
    "csv": "csv",
    "json": "jsonl",
    "jsonl": "jsonl",
    "jsonlines": "jsonl",
    "ndjson": "jsonl",
    "line": "expanded",
    "expanded": "expanded",
}

PAGER_ENV = "ARROYO_LITE_PAGER"
DEFAULT_PAGER = "less -SRFX"

#: Rows a snapshot query prints before it says how many were left out.
MAX_ROWS = 1000


@dataclass
class Outcome:
    """What one input did: whether it succeeded, and whether the user asked to quit."""

    ok: bool = True
    quit: bool = False


@dataclass
class ReplOutput:
    """Where the REPL prints: results on ``console`` (or the ``\\o`` file), errors on ``err``
    (in red), and the raw bytes of a live view on ``out``; plus the display settings."""

    console: Console
    err: Console
    out: IO[bytes]
    mode: ResultMode = "table"
    #: psql's ``\x``: expanded display of table results.
    expanded: bool = False
    pager: bool = True
    timing: bool = False
    #: Where results go after ``\o FILE`` (``None``: the console).
    target: Path | None = None
    _target_file: IO[str] | None = field(default=None, repr=False)

    def error(self, message: str) -> Outcome:
        """Print ``message`` as an error; the failed :class:`Outcome` to return."""
        self.err.print(message, style="red", markup=False, highlight=False)
        return Outcome(ok=False)

    def note(self, message: str, *, style: str = "green") -> None:
        """A confirmation (``DROP TABLE t``, ``Timing is on.``) on the console."""
        self.console.print(message, style=style, markup=False, highlight=False)

    # -- results ------------------------------------------------------------------------

    def result(self, table: pa.Table, *, title: str | None = None) -> None:
        """Show one query result with the current settings (format, ``\\x``, pager, ``\\o``)."""
        if self.mode == "csv":
            self._write_text(render.to_csv(table).decode("utf-8"))
            return
        if self.mode == "jsonl":
            self._write_text(render.to_jsonl(table).decode("utf-8"))
            return
        renderable: RenderableType
        if self.expanded or self.mode == "expanded":
            renderable = render.expanded_table(table, title=title, max_rows=MAX_ROWS)
        else:
            renderable = render.rich_table(table, title=title, max_rows=MAX_ROWS)
        self.show(renderable)

    def show(self, renderable: RenderableType) -> None:
        """Print ``renderable`` to the ``\\o`` file, through the pager, or on the console."""
        if self._target_file is not None:
            Console(
                file=self._target_file, emoji=False, highlight=False, width=self.console.width
            ).print(renderable)
            self._target_file.flush()
            return
        console = self.console
        if not (self.pager and console.is_terminal):
            console.print(renderable)
            return
        with console.capture() as capture:
            console.print(renderable)
        text = capture.get()
        if text.count("\n") < console.height or not self._page(text):
            console.file.write(text)
            console.file.flush()

    def _write_text(self, text: str) -> None:
        if self._target_file is not None:
            self._target_file.write(text)
            self._target_file.flush()
        else:
            self.console.file.write(text)
            self.console.file.flush()

    def _page(self, text: str) -> bool:
        """Show ``text`` through the pager; ``False`` if there is none to run."""
        command = os.environ.get(PAGER_ENV) or os.environ.get("PAGER") or DEFAULT_PAGER
        try:
            # Through the shell, as psql runs $PAGER ("less -S" is a command line).
            done = subprocess.run(command, shell=True, input=text.encode("utf-8"), check=False)
        except OSError:
            return False
        return done.returncode != 127  # 127: the shell found no such command

    # -- \o ----------------------------------------------------------------------------

    def redirect(self, path: Path | None) -> None:
        """Send results to ``path`` from now on (the file is truncated first, as psql's
        ``\\o`` does), or back to the console with ``None``. Raises ``OSError``."""
        handle = path.open("w", encoding="utf-8") if path is not None else None
        self.close_target()
        self._target_file, self.target = handle, path

    def close_target(self) -> None:
        if self._target_file is not None:
            self._target_file.close()
        self._target_file, self.target = None, None
