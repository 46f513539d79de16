"""``arroyo-lite demo``: the embedded demo API plus ``quickstart.sql``, printed live.

The API runs on a background thread of this process (:class:`arroyo_lite.demo.api.DemoServer`);
the quickstart runs through the same machinery as ``arroyo-lite run``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from arroyo_lite.cli import main
from arroyo_lite.cli.run_cmd import (
    duration_option,
    format_option,
    live_view_wanted,
    progress_option,
    run_sql,
    state_dir_option,
)
from arroyo_lite.demo import DEFAULT_PORT, quickstart_sql, retarget
from arroyo_lite.terminal.output_formats import OutputFormat


@main.command()
@duration_option
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port of the demo API on 127.0.0.1. If it is taken, a free port is used instead "
    "and the quickstart's endpoints are rewritten to it. 0 = any free port.",
)
@format_option("Output format, as for `run`.")
@state_dir_option("Keep table data and source state here, as for `run`.")
@progress_option("Status line on stderr [default: when stderr is a terminal].")
@click.option("--show-sql", is_flag=True, help="Print the quickstart SQL and exit.")
def demo(
    duration: float | None,
    port: int,
    fmt: OutputFormat | None,
    state_dir: Path | None,
    progress: bool | None,
    show_sql: bool,
) -> None:
    """Start the embedded demo API and run the quickstart against it, live.

    The demo API (127.0.0.1) serves /prices (moving prices), /news (a headline that changes
    now and then; polled with emit_behavior='changed') and /weather (fails with 503 now and
    then, to show failure handling) and /metrics (Prometheus text). The quickstart SQL
    defines tables over it and prints an aggregate and two plain queries as rows arrive.
    See the SQL with --show-sql; run the API alone with
    `python -m arroyo_lite.demo.api --port 8765`.
    """
    if show_sql:
        click.echo(quickstart_sql(), nl=False)
        return
    from arroyo_lite.demo.api import DemoServer  # (aiohttp: not for `demo --help`)

    try:
        server = DemoServer(port)
        actual = server.start()
    except OSError as e:
        raise click.ClickException(f"cannot start the demo API on 127.0.0.1:{port}: {e}") from e
    try:
        note = ""
        if port not in (0, actual):
            note = f" (port {port} is taken; the quickstart's endpoints were rewritten)"
        banner = (
            f"demo API on {server.url}{note}\n"
            "tables: prices, news, weather (see `arroyo-lite demo --show-sql`); "
            + (f"stopping after {duration:g}s" if duration is not None else "Ctrl-C to stop")
        )
        sql = retarget(quickstart_sql(), actual)
        code = run_sql(
            sql,
            file="quickstart.sql",
            fmt=fmt or "table",
            duration=duration,
            state_dir=state_dir,
            progress=progress,
            banner=banner,
            live=live_view_wanted(fmt),
        )
    finally:
        server.stop()
    sys.exit(code)
