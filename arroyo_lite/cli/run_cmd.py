"""``arroyo-lite run FILE.sql``: start the sources and print each SELECT's rows as they arrive.

:func:`run_sql` is shared with ``arroyo-lite demo``; the live printing is
:func:`arroyo_lite.terminal.watch.run_queries`.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from arroyo_lite.cli import long_lived_imports, main
from arroyo_lite.errors import ArroyoLiteError
from arroyo_lite.terminal.output_formats import FORMATS, OutputFormat

F = TypeVar("F", bound=Callable[..., Any])


def run_sql(
    sql: str,
    *,
    file: str,
    fmt: OutputFormat,
    duration: float | None,
    state_dir: Path | None,
    progress: bool | None,
    env: dict[str, str] | None = None,
    banner: str | None = None,
    live: bool = False,
    changes: bool | None = None,
    workers: int = 1,
) -> int:
    """Execute ``sql`` in a new session and print its SELECTs live; return the exit code.

    ``workers`` >= 2 runs the sources that can run elsewhere in that many worker processes
    (:mod:`arroyo_lite.runtime.workers`). ``live``: the live view (tables redrawn in place),
    when stdout is a terminal and no ``--format`` was given (see :func:`live_view_wanted`).
    ``changes``: an updating query prints its changes rather than its whole results; by
    default it does in the log (a pipe, or ``--format``), as Arroyo's stdout and preview sinks
    write an updating query's changes, while the live view shows its current result. Bad SQL
    prints gcc-style errors (``file:line:col: error: ...``) on stderr and returns 1.
    """
    # Imported here, not at the top: `run --help` (and `demo`, `repl`, which share this
    # module's options) must not pay for the runtime and the renderer; rich comes only with
    # something to print on stderr, or the table format. Without the collector: what these
    # imports (and the SQL's compilation below) create lives as long as the process, and
    # collecting while it is built was a tenth of the time to the first row.
    with long_lived_imports():
        from arroyo_lite.runtime.loop import tune_gc
        from arroyo_lite.session import Session
        from arroyo_lite.sql.statements import Query
        from arroyo_lite.terminal.diagnostics import render_error
        from arroyo_lite.terminal.logs import configure_logging
        from arroyo_lite.terminal.signals import StopRequested, stop_on_signals
        from arroyo_lite.terminal.watch import prepare_output, run_queries, stderr_console

    configure_logging(sys.stderr, reporter=True)
    # The output's own DuckDB database (jsonl) is made in the background while the SQL
    # compiles, then the engine's, on one thread: the first row then waits for neither.
    prepare_output(fmt)
    show_progress = sys.stderr.isatty() if progress is None else progress
    out = sys.stdout.buffer
    # From the start, not only once the queries run: the sources start at CREATE TABLE, and
    # a SIGTERM meanwhile must still stop them cleanly (state saved, exit 0).
    stopping = threading.Event()
    try:
        with stop_on_signals(stopping), Session(
            state_dir=state_dir, env=env, workers=workers
        ) as session:
            try:
                # The first statement imports the compiler (sqlglot), the engine and the
                # connectors: the rest of the start-up heap. Its own garbage, frozen with
                # it, is ~1,000 objects (what a full collection found here).
                with long_lived_imports():
                    program = session.execute(sql, file=file)
            except ArroyoLiteError as e:
                if stopping.is_set():  # a query the stop interrupted: not an error
                    return 0
                stderr_console(sys.stderr).print(render_error(e, sql, file=file), markup=False)
                return 1
            tune_gc()
            queries = [s for s in program.statements if isinstance(s, Query)]
            # A stdout sink writes its rows to the same terminal: the view would overdraw them.
            live = live and not any(t.connector == "stdout" for t in program.tables)
            if banner:
                stderr_console(sys.stderr).print(banner, markup=False)
            if not queries and fmt == "table":
                stderr_console(sys.stderr).print(
                    "no SELECT in the file: the sources run; "
                    + ("progress and failures" if show_progress else "failures")
                    + " are shown on stderr"
                    + ("" if duration else " (Ctrl-C to stop)"),
                    markup=False,
                )
            return run_queries(
                session,
                queries,
                fmt=fmt,
                duration=duration,
                out=out,
                err_stream=sys.stderr,
                progress=show_progress and not (live and queries),
                source=sql,
                live=live,
                changes=(not live) if changes is None else changes,
            )
    except (KeyboardInterrupt, StopRequested):
        return 0
    except ArroyoLiteError as e:
        if stopping.is_set():
            return 0
        stderr_console(sys.stderr).print(render_error(e, sql, file=file), markup=False)
        return 1
    except RuntimeError:
        # DuckDB turns a signal that lands during one of its calls into "Query interrupted".
        if stopping.is_set():
            return 0
        raise


# Options shared by run, demo and repl (one definition each, so they cannot drift apart).
duration_option = click.option(
    "--for",
    "duration",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="Stop after this many seconds (default: run until Ctrl-C).",
)


def format_option(text: str) -> Callable[[F], F]:
    """``--format``; ``None`` when not given (a terminal then gets the live view)."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(FORMATS),
        default=None,
        help=text + " [default: table; on a terminal, a live view redrawn in place]",
    )


def live_view_wanted(fmt: OutputFormat | None) -> bool:
    """The live view is for a person: stdout a terminal and no ``--format`` asked for."""
    return fmt is None and sys.stdout.isatty()


def state_dir_option(text: str) -> Callable[[F], F]:
    return click.option(
        "--state-dir",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help=text,
    )


workers_option = click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    metavar="N",
    help="Run the polling_http and impulse sources in N worker processes feeding this "
    "session (an arroyo-lite extension, for more polls per second than one process can "
    "make); 1 runs everything in this process.",
)


def progress_option(text: str) -> Callable[[F], F]:
    return click.option("--progress/--no-progress", default=None, help=text)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@duration_option
@format_option(
    "Output: aligned tables, JSON lines (one object per row) or CSV. "
    "In jsonl/csv mode stdout holds only data."
)
@state_dir_option("Keep table data and source state here; a restart resumes from it.")
@progress_option(
    "Show a status line (polls, rows, failures per source) on stderr "
    "[default: when stderr is a terminal]."
)
@click.option(
    "--changes/--no-changes",
    default=None,
    help="Print an updating query's changes (a first column _op: + added, - retracted), "
    "as Arroyo's stdout sink does, or (--no-changes) its whole result when it changes "
    "[default: changes on a pipe or with --format; the live view shows the current result].",
)
@workers_option
def run(
    file: Path,
    duration: float | None,
    fmt: OutputFormat | None,
    state_dir: Path | None,
    progress: bool | None,
    changes: bool | None,
    workers: int,
) -> None:
    """Run FILE.sql: create its tables, start polling, and print each SELECT's rows live.

    Plain SELECTs (a filter or projection of one source table) print each new row once;
    the others (aggregates, DISTINCT, LIMIT, joins of two source tables, ...) print their
    changes as they happen (--no-changes: their whole result when it changes, at most once a
    second). On a terminal without --format,
    each query is instead a table redrawn in place (the latest rows with a running count,
    or the current result), above the sources' status line. With several SELECTs, table output
    labels each block and jsonl/csv add a `_query` field (1 = first SELECT). Failing sources
    are reported on stderr while the others keep going. Stops cleanly (exit 0) when --for
    elapses or on Ctrl-C; bad SQL exits 1 with file:line:col.
    """
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise click.ClickException(f"cannot read {file}: {e}") from e
    code = run_sql(
        text,
        file=str(file),
        fmt=fmt or "table",
        duration=duration,
        state_dir=state_dir,
        progress=progress,
        live=live_view_wanted(fmt),
        changes=changes,
        workers=workers,
    )
    sys.exit(code)
