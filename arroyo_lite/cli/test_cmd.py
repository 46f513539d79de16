"""``arroyo-lite test FILE.sql``: one trial request per source table (and one test record
per webhook sink), shown in full.

Every source table (or just ``--table NAME``) is probed by its connector
(:meth:`Connector.probe`): for ``polling_http`` it prints the request (method, URL, headers
with secrets masked, body), the answer (status, latency, size, content type) and the first
decoded rows, or exactly why the request or the decoding failed; ``sse`` and ``websocket``
tables are connected to and their first messages (up to ``--rows``, waiting at most
``--timeout``, 30 s by default as in Arroyo) decoded and shown the same way. A connector with
nothing to try (``impulse`` generates rows locally) answers :class:`ProbeSkipped`: listed as
skipped.
Exit status 0 only if every probed table answered 2xx and decoded without dropping a record;
1 otherwise (including SQL errors).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from arroyo_lite.cli import main
from arroyo_lite.cli.options import seconds_option
from arroyo_lite.config import TableKind
from arroyo_lite.errors import ArroyoLiteError, did_you_mean

# `test --help` imports none of these (rich, the connectors with pyarrow, asyncio): each
# function imports what it uses.
if TYPE_CHECKING:
    from rich.console import Console

    from arroyo_lite.config import TableConfig
    from arroyo_lite.connectors.probing import ProbeResult, ProbeSkipped


@main.command("test")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "--table", "tables", multiple=True, metavar="NAME", help="Only this table (repeatable)."
)
@click.option("--rows", default=5, show_default=True, type=click.IntRange(0), help="Rows to show.")
@seconds_option(
    "--timeout",
    default=None,
    help="Override each table's timeout_ms (sse/websocket: how long to wait for a first "
    "message, default 30).",
)
def test_command(file: str, tables: Sequence[str], rows: int, timeout: float | None) -> None:
    """Send one request per source table in FILE (and one test record per webhook sink)
    and show what comes back.

    Unlike Arroyo's connection test, the HTTP status is checked and the body is decoded with
    the table's schema. sse and websocket tables are connected to and their first messages
    (up to --rows) decoded. Exit status 0 only if every table answered and decoded.
    """
    from rich.console import Console
    from rich.markup import escape

    from arroyo_lite.connectors.probing import ProbeSkipped
    from arroyo_lite.terminal.diagnostics import read_source, render_error

    # emoji=False: header values, URLs and bodies are printed as given; with emoji codes on,
    # a value like 'a:b:c' would come out as 'a\N{NEGATIVE SQUARED LATIN CAPITAL LETTER B}c'.
    out = Console(highlight=False, soft_wrap=True, emoji=False)
    err = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)
    try:
        from arroyo_lite.sql import compile_file

        program = compile_file(file)
    except ArroyoLiteError as e:
        err.print(escape(render_error(e, read_source(file), file=file)))
        raise SystemExit(1) from None
    except OSError as e:
        err.print(escape(f"error: cannot read {file}: {e.strerror or e}"))
        raise SystemExit(1) from None
    # Sinks too: a webhook sends one test record; others say why they are skipped.
    kinds = (TableKind.SOURCE, TableKind.SINK)
    sources = [t for t in program.tables if t.kind in kinds and t.connector]
    if tables:
        known = {t.name: t for t in sources}
        missing = [name for name in tables if name not in known]
        for name in missing:
            hint = did_you_mean(name, known)
            hint = f" ({hint})" if hint else ""
            listed = ", ".join(known) or "none"
            err.print(escape(f"error: no source table '{name}' in {file}{hint}; sources: {listed}"))
        if missing:
            raise SystemExit(1)
        sources = [known[name] for name in tables]
    if not sources:
        out.print(f"no source or sink tables in {escape(file)}: nothing to test")
        return
    results = _run(sources, timeout, rows)
    failed = total = 0
    for table, result in zip(sources, results, strict=True):
        out.rule(f"[bold]{escape(table.name)}[/] ({escape(table.connector or '')})", align="left")
        if isinstance(result, ProbeSkipped):
            out.print(f"skipped: {escape(result.reason)}")
            continue
        _show(out, result, rows)
        total += 1
        failed += not result.ok
    summary = f"{total - failed} of {total} tested table(s) OK"
    out.print(f"\n[{'red' if failed else 'green'}]{summary}[/]")
    if failed:
        raise SystemExit(1)


def _run(
    tables: list[TableConfig], timeout: float | None, rows: int
) -> list[ProbeResult | ProbeSkipped]:
    """Each table's connector probes it; all at once."""
    import asyncio

    from arroyo_lite.connectors.registry import get_connector

    async def run_all() -> list[ProbeResult | ProbeSkipped]:
        env = dict(os.environ)
        probes = (
            get_connector(t.connector or "").probe(t, env, timeout=timeout, max_rows=rows)
            for t in tables
        )
        return list(await asyncio.gather(*probes))

    return asyncio.run(run_all())


def _show(out: Console, result: ProbeResult, rows: int) -> None:
    from rich.markup import escape

    from arroyo_lite.connectors.probing import ProbeStage

    out.print(f"[bold]{result.method}[/] {escape(result.url)}")
    for name, value in result.headers:
        out.print(f"  {escape(name)}: {escape(value)}")
    if result.body is not None:
        out.print(f"  body: {escape(result.body)}")
    if result.status is not None:
        colour = "green" if 200 <= result.status < 300 or result.status == 101 else "red"
        label = f"{result.status} {result.reason or ''}".strip()
        parts = [f"[{colour}]{escape(label)}[/]"]
        if result.latency_s is not None:
            parts.append(f"{result.latency_s * 1000:.1f} ms")
        if result.size is not None:
            parts.append(f"{result.size:,} bytes")
        if result.content_type:
            parts.append(escape(result.content_type))
        out.print("-> " + "  ".join(parts))
        if result.final_url:
            out.print(f"   (after redirects: {escape(result.final_url)})")
        for note in result.withheld:
            out.print(f"   (redirect: {escape(note)})")
        if result.error_body is not None:
            out.print(f"   body: {escape(result.error_body)}")
        if result.response is not None:
            out.print(f"   response: {escape(result.response)}")
    for note in result.notes:
        out.print(f"   {escape(note)}")
    if result.error is not None:
        where = {
            ProbeStage.CONFIG: "configuration",
            ProbeStage.REQUEST: "request",
            ProbeStage.DECODE: "decoding",
        }.get(result.stage, "probe")
        out.print(f"[red]error ({where}):[/] {escape(result.error)}")
        return
    for warning in result.warnings:
        out.print(f"[yellow]warning:[/] {escape(warning)}")
    if result.dropped:
        out.print(
            f"[red]{result.dropped} record(s) do not match the table's schema[/] "
            "(bad_data = 'drop' would drop them)"
        )
    if result.response is not None:
        return  # a sink's test record: nothing decoded
    if result.rows is not None and result.rows.num_rows and rows:
        from rich.console import Group

        from arroyo_lite.terminal.render import rich_table

        table = rich_table(result.rows)
        if isinstance(table, Group):
            # Its count line would count only the rows shown ("2 rows" of 5): ours follows.
            table = Group(*table.renderables[:-1])
        out.print(table)
    shown = min(result.total_rows, rows)
    out.print(f"{result.total_rows} row(s) decoded" + (f", first {shown} shown" if shown else ""))
