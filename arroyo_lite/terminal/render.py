"""Terminal output: query results as aligned tables, JSON lines or CSV, and source status.

Everything that turns Arrow data or a :class:`~arroyo_lite.connectors.base.SourceStatus` into
text for a person or a pipe lives here; the CLI commands and the REPL only choose where it goes.

Conventions (the same in every format):

* timestamps are ISO 8601 (``2026-01-02T03:04:05.123456789``; Arroyo's ``_timestamp`` has no
  time zone, so none is printed; zoned timestamps get their offset);
* SQL NULL is JSON ``null``, an empty CSV field, and a dim ``NULL`` in tables;
* conversion is columnar (Arrow compute casts); the per-row step is only the final
  serialisation of the rows being printed.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from typing import Any, Literal

import orjson
import pyarrow as pa
import pyarrow.csv as pacsv
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from arroyo_lite.connectors.base import SourceState, SourceStatus
from arroyo_lite.formats.encode import displayable, json_default, json_lines

OutputFormat = Literal["table", "jsonl", "csv"]
FORMATS: tuple[OutputFormat, ...] = ("table", "jsonl", "csv")

Data = pa.Table | pa.RecordBatch


def to_jsonl(data: Data, *, extra: dict[str, Any] | None = None) -> bytes:
    """One JSON object per row, each ending in ``\\n``.

    ``extra`` keys (for example ``{"_query": 2}``) are put first in every object. Rows are
    serialised by DuckDB's ``to_json`` (vectorised: several times faster than converting
    rows to Python objects); binary values become base64 and non-finite floats ``null`` so
    every line is valid JSON.
    """
    table = displayable(data)
    if extra:
        for i, (name, value) in enumerate(extra.items()):
            table = table.add_column(i, name, pa.array([value] * table.num_rows))
    return json_lines(table)


def to_csv(data: Data, *, header: bool = True, extra: dict[str, Any] | None = None) -> bytes:
    """RFC 4180 CSV (via Arrow's writer); ``extra`` adds constant leading columns."""
    table = displayable(data)
    if extra:
        for i, (name, value) in enumerate(extra.items()):
            table = table.add_column(i, name, pa.array([value] * table.num_rows))
    # Nested values have no CSV form: write them as JSON text.
    for i, field in enumerate(table.schema):
        if pa.types.is_nested(field.type):
            text = [
                None if v is None else orjson.dumps(v, default=json_default).decode()
                for v in table.column(i).to_pylist()
            ]
            table = table.set_column(i, field.name, pa.array(text, pa.string()))
    sink = io.BytesIO()
    options = pacsv.WriteOptions(include_header=header)
    pacsv.write_csv(table, sink, write_options=options)
    return sink.getvalue()


def _cell(value: Any) -> Text:
    # Always Text: a plain str would be parsed as rich markup ("[red]" in data, "[ns]" in types).
    if value is None:
        return Text("NULL", style="dim")
    if isinstance(value, float):
        return Text(repr(value))
    if isinstance(value, dict | list):
        return Text(orjson.dumps(value, default=json_default).decode())
    if isinstance(value, bytes):
        return Text("\\x" + value.hex())
    return Text(str(value))


def rich_table(
    data: Data, *, title: str | None = None, max_rows: int | None = None
) -> RenderableType:
    """An aligned table (numbers right-aligned) under ``title``, with a row count below.

    Title and count are separate lines rather than rich's own title/caption, which would be
    wrapped to the table's width.
    """
    table = displayable(data, compact=True)
    shown = table if max_rows is None else table.slice(0, max_rows)
    out = Table(box=box.SIMPLE_HEAD, show_edge=False)
    for field in table.schema:
        numeric = pa.types.is_integer(field.type) or pa.types.is_floating(field.type)
        out.add_column(Text(field.name), justify="right" if numeric else "left", overflow="fold")
    columns = [shown.column(i).to_pylist() for i in range(shown.num_columns)]
    for row in zip(*columns, strict=True):
        out.add_row(*(_cell(v) for v in row))
    n = table.num_rows
    if shown.num_rows < n:
        count = f"{shown.num_rows} of {n} rows shown"
    else:
        count = f"{n} row{'s' if n != 1 else ''}"
    parts: list[RenderableType] = []
    if title:
        parts.append(Text(title, style="bold"))
    parts += [out, Text(count, style="dim")]
    return Group(*parts)


def schema_table(name: str, schema: pa.Schema) -> Table:
    """``\\d TABLE``: one line per column with its Arrow type and nullability."""
    out = Table(
        title=name, box=box.SIMPLE_HEAD, show_edge=False, title_justify="left", title_style="bold"
    )
    out.add_column("column")
    out.add_column("type")
    out.add_column("nullable")
    for field in schema:
        typ = "json" if (field.metadata or {}).get(b"ARROW:extension:name") else str(field.type)
        out.add_row(Text(field.name), Text(typ), "yes" if field.nullable else "no")
    return out


def format_ns(ns: int | None, *, now_ns: int | None = None) -> str:
    """A wall-clock time as ``HH:MM:SS`` UTC, or ``-``; with ``now_ns``, relative (``3.2s ago``)."""
    if ns is None:
        return "-"
    if now_ns is not None:
        delta = (now_ns - ns) / 1e9
        return f"{delta:.1f}s ago" if delta >= 0 else f"in {-delta:.1f}s"
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%H:%M:%S")


_STATE_STYLE = {
    SourceState.RUNNING: "green",
    SourceState.STARTING: "cyan",
    SourceState.BACKOFF: "yellow",
    SourceState.UNAUTHORIZED: "bold yellow",
    SourceState.FAILED: "bold red",
    SourceState.FINISHED: "blue",
    SourceState.STOPPED: "dim",
}


def status_table(statuses: Sequence[SourceStatus], *, now_ns: int | None = None) -> RenderableType:
    """``\\status``: one row per source with its counters, then each source's last error.

    The errors go on lines of their own below the table, not in a column: a long message in
    a tenth column left every cell folded to a few characters in an 80-column terminal.
    """
    out = Table(
        box=box.SIMPLE_HEAD,
        title="sources",
        title_justify="left",
        title_style="bold",
        collapse_padding=True,  # one space between columns: fits 80 columns
        pad_edge=False,
        show_edge=False,
    )
    for name in ("table", "connector", "state"):
        out.add_column(name)
    for name in ("polls", "fails", "rows", "bytes"):
        out.add_column(name, justify="right")
    out.add_column("polled")  # "2.5s ago"
    out.add_column("next")  # "in 0.5s"
    errors: list[RenderableType] = []
    for s in statuses:
        out.add_row(
            Text(s.table),
            Text(s.connector),
            Text(str(s.state), style=_STATE_STYLE.get(s.state, "")),
            str(s.polls),
            str(s.failures),
            str(s.rows),
            str(s.bytes),
            format_ns(s.last_poll_at_ns, now_ns=now_ns),
            format_ns(s.next_poll_at_ns, now_ns=now_ns),
        )
        if s.deduplicated_rows or s.state_keys:
            errors.append(Text(f"{s.table}: {_key_state(s)}", style="dim"))
        if s.last_error:
            line = Text(f"{s.table}: last error: ", style="bold")
            line.append(s.last_error, style="red")
            errors.append(line)
    return Group(out, *errors) if errors else out


def status_line(statuses: Sequence[SourceStatus]) -> str:
    """A one-line summary for a progress display: ``prices 12 polls 60 rows | news ...``."""
    parts = []
    for s in statuses:
        part = f"{s.table}: {s.polls} polls, {s.rows} rows"
        if s.failures:
            part += f", {s.failures} failed"
        if s.deduplicated_rows or s.state_keys:
            part += f", {s.deduplicated_rows} deduplicated, {s.state_keys} keys"
        if s.state in (SourceState.BACKOFF, SourceState.UNAUTHORIZED, SourceState.FAILED):
            part += f" [{s.state}]"
        parts.append(part)
    return " | ".join(parts) if parts else "no sources"


def _key_state(s: SourceStatus) -> str:
    """``120 rows deduplicated; key state 40 keys (960 B)``: what a key-aware source holds."""
    size = s.state_bytes
    shown = f"{size} B" if size < 1 << 20 else f"{size / (1 << 20):.1f} MiB"
    return f"{s.deduplicated_rows} rows deduplicated; key state {s.state_keys} keys ({shown})"
