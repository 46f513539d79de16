"""``arroyo-lite repl [FILE.sql]``: the interactive SQL shell over live tables (see repl.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from arroyo_lite.cli import main
from arroyo_lite.cli.run_cmd import state_dir_option, workers_option
from arroyo_lite.errors import ArroyoLiteError


@main.command()
@click.argument(
    "file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@state_dir_option("Keep table data and source state here; a restart resumes from it.")
@click.option(
    "--history",
    "history_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="History file [default: $ARROYO_LITE_HISTORY, else $XDG_STATE_HOME/arroyo-lite/history, "
    "else ~/.arroyo_lite_history].",
)
@workers_option
def repl(
    file: Path | None, state_dir: Path | None, history_file: Path | None, workers: int
) -> None:
    """Interactive SQL over live tables. FILE.sql, if given, is run first (its tables start).

    Statements end with ';' and may span lines; SELECTs print snapshots as aligned tables;
    DROP TABLE/VIEW, CREATE OR REPLACE VIEW and COPY (QUERY) TO 'file' work as in DuckDB.
    Commands (psql's, and the duckdb CLI's dot commands): \\tables (.tables), \\d TABLE,
    \\status, \\pause/\\resume TABLE, QUERY \\watch N (every N seconds), \\live QUERY (a
    continuous query), \\x, \\timing, \\pset, .mode, \\o FILE, \\i FILE, \\e, \\copy,
    \\help, \\q.
    Tab completes keywords, tables and columns. Ctrl-C cancels the running query, not the
    session. When stdin is not a terminal, statements are read from it (script mode; exit
    status 1 if any failed).
    """
    # Imported here: `repl --help` must not pay for rich, prompt_toolkit and the runtime.
    from rich.console import Console

    from arroyo_lite.runtime.loop import tune_gc
    from arroyo_lite.session import Session
    from arroyo_lite.sql.statements import Query
    from arroyo_lite.terminal.diagnostics import render_error
    from arroyo_lite.terminal.logs import configure_logging
    from arroyo_lite.terminal.repl import Repl

    err = Console(stderr=True, emoji=False, highlight=False, soft_wrap=True)
    configure_logging(sys.stderr)
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    try:
        with Session(state_dir=state_dir, workers=workers) as session:
            shell = Repl(session, err=err)
            tune_gc()
            if file is not None:
                try:
                    text = file.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as e:
                    raise click.ClickException(f"cannot read {file}: {e}") from e
                try:
                    program = session.execute(text, file=str(file))
                except ArroyoLiteError as e:
                    err.print(render_error(e, text, file=str(file)), markup=False)
                    sys.exit(1)
                started = [t.name for t in program.tables]
                if started:
                    err.print(f"{file}: tables {', '.join(started)}", style="dim", markup=False)
                selects = sum(isinstance(s, Query) for s in program.statements)
                if selects:
                    # Run now they would see empty tables: say so instead of printing nothing.
                    err.print(
                        f"{file}: {selects} SELECT(s) not run; type them, or \\live them",
                        style="dim",
                        markup=False,
                    )
            code = shell.interact(history_file) if interactive else shell.run_script(sys.stdin)
    except KeyboardInterrupt:
        code = 0
    except ArroyoLiteError as e:
        err.print(render_error(e), markup=False)
        code = 1
    sys.exit(code)
