"""``arroyo-lite validate FILE...``: check SQL files and summarise their tables.

Exit 0: one line per table (name, connector, kind, columns, format) and per view/query.
Exit 1: every problem in every file, gcc-style (``FILE:LINE:COL: error: MESSAGE``, the
source line with the offending token underlined, and an indented ``hint:`` line), on stderr.
Never a traceback: unreadable files are problems too.

With ``--arroyo``, the strict check for an Arroyo cluster follows (``arroyo_lite.cluster``):
exit 0 portable, 1 invalid, 3 valid here but not portable.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from arroyo_lite.cli import long_lived_imports, main
from arroyo_lite.errors import ArroyoLiteError

# The compiler (sqlglot, the connectors) and what prints its results are imported when a
# file is checked, not for `validate --help`.
if TYPE_CHECKING:
    from arroyo_lite.cluster.portability import Portability
    from arroyo_lite.config import TableConfig
    from arroyo_lite.errors import SourcePosition
    from arroyo_lite.sql.statements import Program


def describe_table(table: TableConfig) -> str:
    """One greppable line: ``name  connector=…  kind=…  columns=a INT, b TEXT  format=…``."""
    columns = ", ".join(
        f"{c.name} {c.sql_type}{'' if c.nullable else ' NOT NULL'}"
        + (" (virtual)" if c.is_virtual else "")
        + (f" (metadata {c.metadata_key})" if c.metadata_key else "")
        for c in table.columns
    )
    parts = [
        table.name,
        f"connector={table.connector or 'memory'}",
        f"kind={table.kind.value}",
        f"columns=[{columns}]",
    ]
    if table.format is not None:
        fmt = table.format.format.value
        if table.format.unstructured:
            fmt += " (unstructured)"
        parts.append(f"format={fmt}")
    if table.framing is not None:
        parts.append(f"framing={table.framing.method}")
    if table.event_time_column:
        parts.append(f"event_time={table.event_time_column}")
    if table.retention.max_rows is not None:
        parts.append(f"retention.max_rows={table.retention.max_rows}")
    if table.retention.max_age_seconds is not None:
        parts.append(f"retention.max_age={table.retention.max_age_seconds:g}s")
    return "  ".join(parts)


def describe_program(program: Program) -> list[str]:
    from arroyo_lite.sql.statements import CreateTable, CreateView, Insert, Query, SetOption

    lines = []
    for statement in program.statements:
        where = f"{statement.position.file}:{statement.position.line}"
        if isinstance(statement, CreateTable):
            lines.append(f"{where}: table {describe_table(statement.table)}")
        elif isinstance(statement, CreateView):
            lines.append(f"{where}: view {statement.name}")
        elif isinstance(statement, Insert):
            lines.append(f"{where}: insert into {statement.target}")
        elif isinstance(statement, Query):
            lines.append(f"{where}: query")
        elif isinstance(statement, SetOption):
            lines.append(f"{where}: set {statement.name} = {statement.value}")
    return lines


#: ``validate --arroyo`` (and ``deploy``) exit status for a valid file that Arroyo would not
#: run as it runs here.
NOT_PORTABLE = 3


def print_problems(path: str, problems: list[tuple[str, SourcePosition | None]]) -> None:
    """Print ``(formatted problem, position)`` pairs gcc-style on stderr: the first line, the
    source excerpt under it, then the hint lines (:func:`render_problems`)."""
    from arroyo_lite.terminal.diagnostics import read_source, render_problems

    if problems:
        click.echo(render_problems(problems, read_source(path), file=path), err=True)


def print_portability(path: str, portability: Portability) -> None:
    """The strict check's findings on stderr, then one summary line (stdout if portable)."""
    from arroyo_lite.cluster.contract import ARROYO_VERSION

    print_problems(path, [(f.format(), f.position) for f in portability.findings])
    if portability.variables:
        click.echo(
            f"{path}: note: the cluster must set {', '.join(portability.variables)} in the "
            "environment of its API server (which plans the query) and of its workers",
            err=True,
        )
    if portability.portable:
        notes = len(portability.findings) + bool(portability.variables)
        click.echo(
            f"{path}: portable to Arroyo {ARROYO_VERSION}"
            + (f" ({notes} note(s) above)" if notes else "")
        )
    else:
        click.echo(
            f"{path}: not portable to Arroyo {ARROYO_VERSION}: "
            f"{len(portability.errors)} problem(s)",
            err=True,
        )


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option(
    "--arroyo",
    "strict",
    is_flag=True,
    help="Also check that each file runs on an Arroyo cluster as it runs here: "
    "extensions and what Arroyo rejects are errors (exit 3), differences are notes.",
)
def validate(files: tuple[str, ...], strict: bool) -> None:
    """Check SQL FILES: print each table, or every problem as FILE:LINE:COL: error: ...

    Exits 0 when every file is valid, 1 otherwise. {{ VAR }} references in headers must name
    set environment variables (their values are never printed); with --arroyo they need not
    (the cluster's environment is what counts), and a valid file Arroyo would not run the
    same way exits 3.
    """
    with long_lived_imports():
        from arroyo_lite.sql.compiler import compile_file
        from arroyo_lite.terminal.diagnostics import read_source, render_error

        if strict:  # (the strict check's module, and what it needs, only for --arroyo)
            from arroyo_lite.cluster.portability import check_portability, compile_for_cluster

    failed = not_portable = False
    for path in files:
        try:
            program = compile_for_cluster(path) if strict else compile_file(path)
        except ArroyoLiteError as e:
            failed = True
            click.echo(render_error(e, read_source(path), file=path), err=True)
            continue
        lines = describe_program(program)
        for line in lines if program.statements else [f"{path}: no statements"]:
            click.echo(line)
        if strict:
            portability = check_portability(program)
            print_portability(path, portability)
            not_portable = not_portable or not portability.portable
    if failed:
        raise SystemExit(1)
    if not_portable:
        raise SystemExit(NOT_PORTABLE)
