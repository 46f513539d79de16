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

import base64
import datetime as dt
import decimal
import io
import threading
from collections.abc import Sequence
from typing import Any, Literal

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from arroyo_lite.connectors.base import SourceState, SourceStatus

OutputFormat = Literal["table", "jsonl", "csv"]
FORMATS: tuple[OutputFormat, ...] = ("table", "jsonl", "csv")

Data = pa.Table | pa.RecordBatch


def _as_table(data: Data) -> pa.Table:
    return data if isinstance(data, pa.Table) else pa.Table.from_batches([data])


def _iso_timestamps(column: pa.ChunkedArray[Any], *, compact: bool) -> pa.ChunkedArray[Any]:
    typ = column.type
    assert isinstance(typ, pa.TimestampType)
    if compact and typ.unit in ("us", "ns"):
        # Terminal tables show milliseconds (as psql does); data formats keep every digit.
        column = column.cast(pa.timestamp("ms", typ.tz), safe=False)
    # Arrow's cast prints "YYYY-MM-DD HH:MM:SS[.fff]" (+ "Z"/offset when zoned) about 30x
    # faster than strftime; the one space becomes ISO 8601's "T".
    text = column.cast(pa.string())
    result: pa.ChunkedArray[Any] = pc.replace_substring(
        text, pattern=" ", replacement="T", max_replacements=1
    )
    return result


def displayable(data: Data, *, compact: bool = False) -> pa.Table:
    """``data`` with temporal and decimal columns cast to text, columnar.

    Python's ``datetime`` cannot hold nanoseconds (Arroyo's ``_timestamp`` has them), so
    timestamps become ISO 8601 strings before any row is converted to Python objects.
    ``compact`` cuts sub-second digits to milliseconds (for terminal tables).
    """
    table = _as_table(data)
    columns: list[pa.ChunkedArray[Any]] = []
    changed = False
    for column in table.columns:
        typ = column.type
        if pa.types.is_timestamp(typ):
            column = _iso_timestamps(column, compact=compact)
            changed = True
        elif pa.types.is_time(typ) or pa.types.is_duration(typ) or pa.types.is_decimal(typ):
            column = column.cast(pa.string())
            changed = True
        columns.append(column)
    if not changed:
        return table
    return pa.Table.from_arrays(columns, names=table.column_names)


def _json_default(value: Any) -> Any:
    # Types orjson does not serialise itself (found only inside nested values).
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_JSON_DB = threading.local()


def _json_connection() -> duckdb.DuckDBPyConnection:
    # One small DuckDB per thread, for serialisation only (never the engine's connection).
    con: duckdb.DuckDBPyConnection | None = getattr(_JSON_DB, "con", None)
    if con is None:
        con = duckdb.connect(":memory:")
        con.execute("SET python_enable_replacements = false")
        _JSON_DB.con = con
    return con


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
    if table.num_rows == 0 or table.num_columns == 0:
        return b"\n" * table.num_rows if table.num_columns == 0 else b""
    parts = []
    for field in table.schema:
        name = _quoted(field.name)
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            expr = f"to_base64({name})"
        elif pa.types.is_floating(field.type):
            expr = f"CASE WHEN isfinite({name}) THEN {name} END"
        else:
            expr = name
        parts.append(f"{expr} AS {name}")
    sql = f"SELECT to_json(r) AS j FROM (SELECT {', '.join(parts)} FROM _rows) AS r"
    con = _json_connection()
    con.register("_rows", table)
    try:
        lines = con.sql(sql).to_arrow_table().column(0)
    except duckdb.Error:
        return _to_jsonl_python(table)  # a type DuckDB cannot read from Arrow
    finally:
        con.unregister("_rows")
    return _lines(lines)


def _lines(column: pa.ChunkedArray[Any]) -> bytes:
    """Non-null strings joined, each followed by ``\\n``, without a Python loop per row.

    After appending ``\\n`` to every value, the string data buffer of the combined array is
    exactly the output; its first and last offsets say where it starts and ends.
    """
    newline = pa.scalar("\n", pa.string())
    empty = pa.scalar("", pa.string())
    joined: Any = pc.binary_join_element_wise(column, empty, newline)  # type: ignore[call-overload]
    joined = joined.combine_chunks()
    if joined.type not in (pa.string(), pa.large_string()):
        return b"".join(v.encode() for v in joined.to_pylist())
    _, offsets_buffer, data = joined.buffers()
    offset_type = pa.int64() if joined.type == pa.large_string() else pa.int32()
    offsets = pa.Array.from_buffers(
        offset_type, len(joined) + 1, [None, offsets_buffer], offset=joined.offset
    )
    start, end = offsets[0].as_py(), offsets[-1].as_py()
    assert data is not None
    out: bytes = data[start:end].to_pybytes()
    return out


def _to_jsonl_python(table: pa.Table) -> bytes:
    option = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
    rows = table.to_pylist()
    return b"".join(orjson.dumps(row, default=_json_default, option=option) + b"\n" for row in rows)


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
                None if v is None else orjson.dumps(v, default=_json_default).decode()
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
        return Text(orjson.dumps(value, default=_json_default).decode())
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
        if s.state in (SourceState.BACKOFF, SourceState.FAILED):
            part += f" [{s.state}]"
        parts.append(part)
    return " | ".join(parts) if parts else "no sources"
