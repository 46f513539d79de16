"""``arroyo-lite infer URL``: fetch one response and print a ``CREATE TABLE`` for it.

The request is the one a ``polling_http`` table with these options would send: the options
are compiled as a table's (same checks of the URL and headers), and the table's poll step
sends its first request (``{{ VAR }}`` from the environment, timeout, size cap, redirects;
:mod:`arroyo_lite.connectors.polling_http.poll`). The body goes to
:mod:`arroyo_lite.infer`; the statement goes to stdout, everything else to stderr, so
``arroyo-lite infer URL > table.sql`` gives a file that ``validate`` accepts.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import click

from arroyo_lite.cli import main
from arroyo_lite.cli.options import seconds_option

if TYPE_CHECKING:
    from arroyo_lite.infer.ddl import Source


@main.command()
@click.argument("url")
@click.option(
    "-H",
    "--header",
    "headers",
    multiple=True,
    metavar="'NAME: VALUE'",
    help="A request header, as in the table's headers option; {{ VAR }} is taken from the "
    "environment and kept as {{ VAR }} in the output (repeatable).",
)
@click.option(
    "--method",
    type=click.Choice(["GET", "POST", "PUT", "PATCH"]),
    default="GET",
    show_default=True,
)
@click.option("--body", default=None, help="Request body, sent verbatim (as the body option).")
@click.option("--name", default=None, help="Table name [default: from the URL's last path part].")
@seconds_option(
    "--timeout", default=None, help="Request timeout [default: the table default, 5 s]."
)
def infer(
    url: str,
    headers: Sequence[str],
    method: str,
    body: str | None,
    name: str | None,
    timeout: float | None,
) -> None:
    """Fetch URL once and print a CREATE TABLE for its JSON records.

    Columns get Arroyo types inferred from every record in the response (nested objects as
    STRUCT<...>, arrays as T[], RFC 3339 strings as TIMESTAMP); a field that looks like an id
    (unique, never null) is suggested as PRIMARY KEY; newline-delimited JSON gets
    framing = 'newline'. Records wrapped in an object ({"results": [...]}, GeoJSON features)
    are found, and their record path is printed as a comment with the query that reads them
    today. The statement is printed on stdout; exit 1 (with the reason) if the request fails
    or the body holds no JSON records.
    """
    from arroyo_lite.errors import ArroyoLiteError
    from arroyo_lite.infer.ddl import Source

    source = Source(endpoint=url, method=method, headers=tuple(headers), body=body)
    table = name or table_name(url)
    try:
        text = _infer(table, source, timeout)
    except ArroyoLiteError as e:
        click.echo(ArroyoLiteError(e.message, hint=e.hint).format(), err=True)
        sys.exit(1)
    click.echo(text, nl=False)


def _infer(table: str, source: Source, timeout: float | None) -> str:
    import asyncio
    from contextlib import aclosing

    import aiohttp

    from arroyo_lite.connectors.polling_http.options import PollingHttpOptions
    from arroyo_lite.connectors.polling_http.poll import poll_step
    from arroyo_lite.errors import ArroyoLiteError, ValidationErrors
    from arroyo_lite.infer.ddl import create_table, kept_columns, with_options
    from arroyo_lite.infer.sample import Records, locate_records
    from arroyo_lite.infer.schema import infer_columns, quote_identifier
    from arroyo_lite.sql import compile_sql

    # The options are checked exactly as a table's would be: compile the table that reads the
    # whole body, so a bad URL or header gets the same message `validate` gives.
    probe_records = Records(b"", 0, None, (), ())
    options = ", ".join([*with_options(source, probe_records), "'json.unstructured' = 'true'"])
    sql = f"CREATE TABLE {quote_identifier(table)} (value JSON) WITH ({options});"
    try:
        program = compile_sql(sql, file="<infer>", env=os.environ)
    except ValidationErrors as e:
        raise next(iter(e)) from None
    http = program.tables[0].connector_options
    assert isinstance(http, PollingHttpOptions)
    # The table's own poll step (its request, headers through its auth): the first page is
    # the sample.
    step = poll_step(http, os.environ)
    if timeout is not None:
        step = step.with_timeout(timeout)

    async def get() -> bytes:
        async with (
            aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session,
            aclosing(step.pages(session)) as pages,
        ):
            return (await anext(pages)).body

    body = asyncio.run(get())
    records = locate_records(body)
    columns, key = infer_columns(records.ndjson)
    if not kept_columns(records, columns):
        raise ArroyoLiteError(
            "the records have no field that can be a column: there is nothing to declare",
            hint="read the body with 'json.unstructured' = 'true' (a `value JSON` column)",
        )
    return create_table(table, source, records, columns, key)


def table_name(url: str) -> str:
    """A table name from the URL: its last path segment as a lower-case identifier
    (``https://h/api/v2/Orders.json`` -> ``orders``), else ``source``."""
    path = re.sub(r"[?#].*$", "", url.split("://", 1)[-1])
    for part in reversed(path.split("/")[1:]):
        word = re.sub(r"[^a-z0-9]+", "_", part.lower().rsplit(".", 1)[0]).strip("_")
        if word and not re.fullmatch(r"v?\d+", word):
            return word if not word[0].isdigit() else f"t_{word}"
    return "source"
