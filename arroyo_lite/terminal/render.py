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
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa

from arroyo_lite.config import RETRACT_COLUMN
from arroyo_lite.connectors.base import SourceState, SourceStatus
from arroyo_lite.formats.encode import displayable, json_default, json_lines
from arroyo_lite.terminal.output_formats import FORMATS as FORMATS
from arroyo_lite.terminal.output_formats import OutputFormat as OutputFormat

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
    from rich.table import Table
    from rich.text import Text

# rich is imported by the functions that build its renderables, not here: `run --format
# jsonl` (or csv) prints its first row through this module without ever needing it.

Data = pa.Table | pa.RecordBatch


#: The column that shows a change's kind (``+`` added, ``-`` retracted) in every format.
CHANGE_COLUMN = "_op"


def change_kinds(data: pa.Table) -> pa.Table:
    """A change batch (``_retract`` flags, :mod:`arroyo_lite.query.changelog`) for display:
    the flag becomes a first column :data:`CHANGE_COLUMN`, ``+`` for an added row and ``-``
    for a retracted one. Other tables are returned as they are."""
    index = data.schema.get_field_index(RETRACT_COLUMN)
    if index < 0:
        return data
    import pyarrow.compute as pc

    kinds = pc.if_else(data.column(index), "-", "+")
    return data.remove_column(index).add_column(0, CHANGE_COLUMN, kinds)


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
    import pyarrow.csv as pacsv

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


#: Significant digits at which every decimal number survives a round trip through the float
#: type (C's DBL_DIG and FLT_DIG): printed at that precision, ``314.04499999999996`` (a sum's
#: rounding) shows as ``314.045``, as the duckdb CLI shows it.
_FLOAT_DIGITS = {16: 3, 32: 6, 64: 15}


def format_float(value: float, bits: int = 64) -> str:
    """``value`` in the shortest form that round-trips at the precision of its type.

    ``bits`` is the column's width (64 for DOUBLE, 32 for FLOAT/REAL: a float32 ``0.1``
    prints ``0.1``, not the ``0.10000000149011612`` of its widening to a double). Integral
    values keep a ``.0`` (``2.0``) so a float column still looks like one; NaN and the
    infinities print as DuckDB spells them (``nan``, ``inf``, ``-inf``).
    """
    if value != value:
        return "nan"
    if value in (float("inf"), float("-inf")):
        return "inf" if value > 0 else "-inf"
    text = f"{value:.{_FLOAT_DIGITS.get(bits, 15)}g}"
    if float(text) in (float("inf"), float("-inf")):
        return repr(value)  # near the largest double, rounding would read back as infinity
    if "e" not in text and "." not in text:
        text += ".0"
    return text


def format_bool(value: bool) -> str:
    """Booleans as SQL, JSON and CSV spell them: ``true`` / ``false`` (never Python's ``True``)."""
    return "true" if value else "false"


def _float_bits(typ: pa.DataType) -> int | None:
    return typ.bit_width if pa.types.is_floating(typ) else None


def cell_text(value: Any, bits: int | None = None) -> Text:
    """One table cell. Always :class:`Text`: a plain str would be parsed as rich markup
    (``[red]`` in data, ``[ns]`` in types). ``bits`` is the width of a float column."""
    from rich.text import Text

    if value is None:
        return Text("NULL", style="dim")
    if isinstance(value, bool):
        return Text(format_bool(value))
    if isinstance(value, float):
        return Text(format_float(value, bits or 64))
    if isinstance(value, dict | list):
        return Text(orjson.dumps(value, default=json_default).decode())
    if isinstance(value, bytes):
        return Text("\\x" + value.hex())
    return Text(str(value))


def _rows(table: pa.Table) -> list[list[Text]]:
    """The cells of ``table`` (already :func:`displayable`) as text, row by row."""
    columns = []
    for i, field in enumerate(table.schema):
        bits = _float_bits(field.type)
        columns.append([cell_text(v, bits) for v in table.column(i).to_pylist()])
    return [list(row) for row in zip(*columns, strict=True)]


def _never_cut(typ: pa.DataType) -> bool:
    # Timestamps are read as a whole or not at all: their column keeps its full width.
    return bool(
        pa.types.is_timestamp(typ) or pa.types.is_date(typ) or pa.types.is_time(typ)
    )


def count_text(shown: int, total: int, *, noun: str = "row") -> str:
    """``5 rows``, ``1 row``, or ``20 of 31 rows shown``."""
    if shown < total:
        return f"{shown} of {total} {noun}s shown"
    return f"{total} {noun}{'s' if total != 1 else ''}"


#: Narrowest a column is cut to when the row is wider than the terminal (its cells then end
#: in ``…``); a header shorter than this keeps its own width.
MIN_COLUMN_WIDTH = 8


def fit_widths(natural: Sequence[int], fixed: Sequence[bool], available: int) -> list[int]:
    """Column widths that fit ``available`` characters: the widest columns are cut first, to
    one common cap (water-filling), never below :data:`MIN_COLUMN_WIDTH` (or their natural
    width) and never a ``fixed`` one. If even that is too wide, the result is too wide."""
    widths = list(natural)
    if sum(widths) <= available:
        return widths
    floors = [w if f else min(w, MIN_COLUMN_WIDTH) for w, f in zip(widths, fixed, strict=True)]
    low, high = 0, max(widths)
    while low < high:  # the largest cap that fits
        cap = (low + high + 1) // 2
        total = sum(max(fl, min(w, cap)) for w, fl in zip(widths, floors, strict=True))
        low, high = (cap, high) if total <= available else (low, cap - 1)
    return [max(fl, min(w, low)) for w, fl in zip(widths, floors, strict=True)]


class _FittedTable:
    """A result table laid out at render time, for the width it is given (the terminal's,
    or the live view's): see :func:`fit_widths`."""

    def __init__(self, schema: pa.Schema, rows: list[list[Text]]) -> None:
        self.schema = schema
        self.rows = rows

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich import box
        from rich.table import Table
        from rich.text import Text

        n = len(self.schema)
        natural = [
            max([len(f.name)] + [row[i].cell_len for row in self.rows])
            for i, f in enumerate(self.schema)
        ]
        fixed = [_never_cut(f.type) for f in self.schema]
        # Each column has one space of padding either side, and a space divides columns
        # (SIMPLE_HEAD without edges).
        widths = fit_widths(natural, fixed, options.max_width - 3 * n + 1)
        shown = n
        while shown > 1 and sum(widths[:shown]) + 3 * shown - 1 > options.max_width:
            # Too many columns even at their narrowest: rich would drop the last ones
            # silently. Show the leading ones that fit, and name the others below.
            shown -= 1
            widths = fit_widths(natural[:shown], fixed[:shown], options.max_width - 3 * shown + 1)
        out = Table(box=box.SIMPLE_HEAD, show_edge=False)
        for field, width in zip(list(self.schema)[:shown], widths, strict=True):
            typ = field.type
            numeric = pa.types.is_integer(typ) or pa.types.is_floating(typ)
            out.add_column(
                Text(field.name, overflow="ellipsis"),
                justify="right" if numeric else "left",
                overflow="ellipsis",
                no_wrap=True,
                min_width=width,
                max_width=width,
            )
        for row in self.rows:
            out.add_row(*row[:shown])
        yield out
        if shown < n:
            hidden = self.schema.names[shown:]
            yield Text(
                f"{len(hidden)} more column{'s' if len(hidden) > 1 else ''} not shown "
                f"(too wide for the terminal): {', '.join(hidden)}",
                style="dim",
            )


def rich_table(
    data: Data,
    *,
    title: str | None = None,
    max_rows: int | None = None,
    tail: bool = False,
    count: str | None = None,
) -> RenderableType:
    """An aligned table (numbers right-aligned) under ``title``, with a row count below.

    Columns are fitted to the console's width: a cell too wide for its column ends in ``…``
    on one line rather than wrapping into slivers, and date/time columns are never cut.
    ``max_rows`` bounds the rows shown (the first ones, or with ``tail`` the last ones);
    ``count`` replaces the row-count line. Title and count are separate lines rather than
    rich's own title/caption, which would be wrapped to the table's width.
    """
    from rich.console import Group
    from rich.text import Text

    table = displayable(data, compact=True)
    n = table.num_rows
    if max_rows is None or n <= max_rows:
        shown = table
    else:
        shown = table.slice(n - max_rows, max_rows) if tail else table.slice(0, max_rows)
    parts: list[RenderableType] = []
    if title:
        parts.append(Text(title, style="bold", overflow="ellipsis", no_wrap=True))
    parts.append(_FittedTable(data.schema, _rows(shown)))
    parts.append(Text(count or count_text(shown.num_rows, n), style="dim"))
    return Group(*parts)


def expanded_table(
    data: Data, *, title: str | None = None, max_rows: int | None = None
) -> RenderableType:
    """psql's expanded display (``\\x``): one ``-[ RECORD N ]-`` block per row, one line per
    column (``name | value``), for rows too wide to read across."""
    from rich.console import Group
    from rich.text import Text

    table = displayable(data, compact=True)
    n = table.num_rows
    shown = table if max_rows is None else table.slice(0, max_rows)
    rows = _rows(shown)
    width = max((len(name) for name in table.column_names), default=0)
    lines: list[RenderableType] = []
    if title:
        lines.append(Text(title, style="bold"))
    for number, row in enumerate(rows, start=1):
        lines.append(Text(f"-[ RECORD {number} ]" + "-" * max(4, width - 8), style="dim"))
        for name, value in zip(table.column_names, row, strict=True):
            line = Text(name.ljust(width) + " | ")
            line.append_text(value)
            lines.append(line)
    if not rows:
        lines.append(Text("(0 rows)", style="dim"))
    else:
        lines.append(Text(count_text(shown.num_rows, n), style="dim"))
    return Group(*lines)


def schema_table(name: str, schema: pa.Schema) -> Table:
    """``\\d TABLE``: one line per column with its Arrow type and nullability."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

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
    SourceState.RATE_LIMITED: "magenta",
    SourceState.FAILED: "bold red",
    SourceState.FINISHED: "blue",
    SourceState.STOPPED: "dim",
}


def status_table(statuses: Sequence[SourceStatus], *, now_ns: int | None = None) -> RenderableType:
    """``\\status``: one row per source with its counters, then each source's last error.

    The errors go on lines of their own below the table, not in a column: a long message in
    a tenth column left every cell folded to a few characters in an 80-column terminal.
    """
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

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
        if s.state is SourceState.RATE_LIMITED and s.rate_limited_until_ns is not None:
            errors.append(Text(f"{s.table}: {_rate_limited(s, now_ns)}", style="magenta"))
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
        if s.updated_rows or s.deleted_rows:
            part += f", {s.updated_rows} updated, {s.deleted_rows} deleted"
        if s.deduplicated_rows or s.state_keys:
            part += f", {s.deduplicated_rows} deduplicated, {s.state_keys} keys"
        if s.state is SourceState.RATE_LIMITED and s.rate_limited_until_ns is not None:
            part += f" [{_rate_limited(s, None)}]"
        elif s.state in (SourceState.BACKOFF, SourceState.UNAUTHORIZED, SourceState.FAILED):
            part += f" [{s.state}]"
        parts.append(part)
    return " | ".join(parts) if parts else "no sources"


def _rate_limited(s: SourceStatus, now_ns: int | None) -> str:
    """``rate limited until 12:00:30 UTC (in 12.5s)``: a table waiting for a budget reset."""
    until = s.rate_limited_until_ns
    now_ns = now_ns if now_ns is not None else time.time_ns()
    return f"rate limited until {format_ns(until)} UTC ({format_ns(until, now_ns=now_ns)})"


def _key_state(s: SourceStatus) -> str:
    """``120 rows deduplicated; key state 40 keys (960 B)``: what a key-aware source holds."""
    size = s.state_bytes
    shown = f"{size} B" if size < 1 << 20 else f"{size / (1 << 20):.1f} MiB"
    changes = (
        f"{s.updated_rows} rows updated, {s.deleted_rows} deleted; "
        if s.updated_rows or s.deleted_rows
        else ""
    )
    return (
        f"{changes}{s.deduplicated_rows} rows deduplicated; "
        f"key state {s.state_keys} keys ({shown})"
    )
