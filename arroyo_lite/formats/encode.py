"""Encoders: record batches -> the bytes a sink writes (the reverse of the decoders).

:func:`make_encoder` picks the :class:`Encoder` for a sink table from the :data:`ENCODERS`
table, one entry per format; adding a format (``debezium_json``, ``parquet``, ``csv``) is one
class and one entry there. Encoders are columnar: DuckDB's vectorised ``to_json`` writes the
JSON text, Arrow casts the timestamps; no Python runs per row.

Rules, as Arroyo's serializer (``arroyo-formats/src/ser.rs``):

* ``json``: one JSON object per row, each line ending in ``\\n``; ``_timestamp`` is not
  written; NULL is an explicit ``null``; timestamps are RFC 3339 text without a zone for
  Arroyo's zone-less ``TIMESTAMP``, the fraction as chrono's ``%.f`` writes it (3, 6 or 9
  digits, as many as needed; none for a whole second: ``2026-01-02T03:04:05.120``),
  ``json.timestamp_format = 'unix_millis'`` writes milliseconds
  since the epoch; ``JSON`` columns are written as the JSON they hold, not as a string;
  BYTEA is base64; DECIMAL is a number.
* ``debezium_json``: one Debezium change per line: ``c`` (``after``) for an added row, ``d``
  (``before``) for a retracted one, ``u`` (``before`` and ``after``) for a key retracted and
  added in one batch (:class:`DebeziumJsonEncoder`); the row objects as in ``json``, with
  timestamps as Unix milliseconds by default (Arroyo's for debezium).
* ``raw_string``: the ``value`` TEXT column, one line per row (NULL is an empty line).

:func:`json_lines` and :func:`displayable` are also what the terminal's JSON lines output
uses, so ``run --format jsonl`` and a ``json`` sink write values the same way.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

import duckdb
import orjson
import pyarrow as pa

from arroyo_lite.config import (
    JSON_EXTENSION,
    RETRACT_COLUMN,
    TIMESTAMP_COLUMN,
    Format,
    TableConfig,
    changelog_key,
)
from arroyo_lite.errors import ConnectorError
from arroyo_lite.formats.encodable import ENCODABLE
from arroyo_lite.formats.pandas_free import string_scalar

Data = pa.Table | pa.RecordBatch


class Encoder(ABC):
    """Batches -> bytes for one sink table; stateless between calls, usable from any thread."""

    def __init__(self, config: TableConfig) -> None:
        self.config = config

    @abstractmethod
    def encode(self, batch: pa.RecordBatch) -> bytes:
        """The bytes of every row of ``batch`` (``b""`` for no rows). Never blocks on I/O."""

    def records(self, batch: pa.RecordBatch) -> list[bytes]:
        """Each row's bytes on its own, without the line end (a webhook's request bodies).

        The default splits :meth:`encode`'s lines: right for formats whose records hold no
        raw line break (JSON escapes them)."""
        data = self.encode(batch)
        return data.split(b"\n")[:-1] if data else []


class JsonLinesEncoder(Encoder):
    """``format = 'json'``: one JSON object per line, as Arroyo's JSON serializer."""

    def __init__(self, config: TableConfig) -> None:
        super().__init__(config)
        spec = config.format
        self.unix_millis = spec is not None and spec.timestamp_format == "unix_millis"

    def encode(self, batch: pa.RecordBatch) -> bytes:
        table = _without_timestamp(pa.Table.from_batches([batch]))
        convert = _unix_millis if self.unix_millis else _timestamps_as_text
        return json_lines(convert(table), raw_json=_json_columns(table.schema))


class DebeziumJsonEncoder(Encoder):
    """``format = 'debezium_json'``: each change as a Debezium record, as Arroyo's
    ``ToDebeziumExec`` and serializer write an updating result.

    A change batch (:data:`~arroyo_lite.config.RETRACT_COLUMN`) with a key (the batch's own,
    :func:`arroyo_lite.query.changelog.key_of`, else the sink's ``PRIMARY KEY``) gives one
    record per key, in the order keys first appear: added (its changes start and end with
    an addition) ``{"before":null,"after":{last},"op":"c"}``; retracted (start and end with a
    retraction) ``{"before":{first},"after":null,"op":"d"}``; updated (a retraction first,
    an addition last) ``{"before":{first},"after":{last},"op":"u"}``; nothing when added and
    retracted again. Without a key, each change is its own ``c`` or ``d``; rows of an
    append-only query are all ``c``. The row objects follow the ``json`` rules, but
    timestamps are Unix milliseconds unless ``json.timestamp_format = 'rfc3339'`` (Arroyo's
    debezium default)."""

    def __init__(self, config: TableConfig) -> None:
        super().__init__(config)
        spec = config.format
        self.unix_millis = spec is None or spec.timestamp_format == "unix_millis"
        self.primary_key = config.primary_key

    def encode(self, batch: pa.RecordBatch) -> bytes:
        if batch.num_rows == 0:
            return b""
        table = _without_timestamp(pa.Table.from_batches([batch]))
        key: tuple[str, ...] = ()
        if RETRACT_COLUMN in table.column_names:
            retract: Any = table.column(RETRACT_COLUMN)
            table = table.drop_columns([RETRACT_COLUMN])
            key = changelog_key(batch.schema) or self.primary_key
            key = key if all(k in table.column_names for k in key) else ()
        else:
            retract = pa.chunked_array([pa.repeat(pa.scalar(False), table.num_rows)])
        convert = _unix_millis if self.unix_millis else _timestamps_as_text
        objects = json_objects(convert(table), raw_json=_json_columns(table.schema))
        if objects is None:
            raise ConnectorError(
                f"table '{self.config.name}': a column type cannot be written as debezium_json"
            )
        if key:
            return _lines(_keyed_records(table.select(list(key)), retract, objects))
        import pyarrow.compute as pc

        head = pc.if_else(retract, '{"before":', '{"before":null,"after":')
        tail = pc.if_else(retract, ',"after":null,"op":"d"}', ',"op":"c"}')
        empty = pa.scalar("", pa.string())
        lines: Any = pc.binary_join_element_wise(head, objects, tail, empty)
        return _lines(lines)


#: One Debezium record per key of a change batch (see :class:`DebeziumJsonEncoder`).
_KEYED_RECORDS = """
SELECT CASE
    WHEN first_add AND last_add THEN '{"before":null,"after":' || last_row || ',"op":"c"}'
    WHEN NOT first_add AND NOT last_add
        THEN '{"before":' || first_row || ',"after":null,"op":"d"}'
    ELSE '{"before":' || first_row || ',"after":' || last_row || ',"op":"u"}'
END AS record
FROM (
    SELECT min(__i) AS first_at,
           arg_min(__row, __i) AS first_row, arg_max(__row, __i) AS last_row,
           NOT arg_min(__retract, __i) AS first_add, NOT arg_max(__retract, __i) AS last_add
    FROM _changes GROUP BY ALL_KEYS
)
WHERE NOT (first_add AND NOT last_add)
ORDER BY first_at
"""


def _keyed_records(
    keys: pa.Table, retract: Any, objects: pa.ChunkedArray[Any]
) -> pa.ChunkedArray[Any]:
    """Each key's Debezium record (JSON text), from its changes' row objects."""
    changes = keys.append_column("__i", pa.array(range(keys.num_rows), pa.int64()))
    changes = changes.append_column("__retract", retract).append_column("__row", objects)
    group = ", ".join(f"k{i}" for i in range(keys.num_columns))
    renamed = changes.rename_columns(
        [f"k{i}" for i in range(keys.num_columns)] + ["__i", "__retract", "__row"]
    )
    con = _json_connection()
    con.register("_changes", renamed)
    try:
        records = con.sql(_KEYED_RECORDS.replace("ALL_KEYS", group)).to_arrow_table()
    finally:
        con.unregister("_changes")
    column: pa.ChunkedArray[Any] = records.column(0)
    return column


class RawStringEncoder(Encoder):
    """``format = 'raw_string'``: the ``value`` column's text, one line per row."""

    def encode(self, batch: pa.RecordBatch) -> bytes:
        if batch.num_rows == 0:
            return b""
        import pyarrow.compute as pc

        return _lines(pa.chunked_array([pc.fill_null(self._values(batch), "")]))

    def records(self, batch: pa.RecordBatch) -> list[bytes]:
        # A value may hold line breaks: one record per value, not per line.
        values: list[str | None] = self._values(batch).to_pylist()
        return [(v or "").encode() for v in values]

    def _values(self, batch: pa.RecordBatch) -> Any:
        index = batch.schema.get_field_index("value")
        if index < 0 or not pa.types.is_string(batch.schema.field(index).type):
            raise ConnectorError(
                f"table '{self.config.name}': format 'raw_string' needs a TEXT column 'value'"
            )
        return batch.column(index)


#: The encoder of each format a sink can write; a format missing here is refused by name.
ENCODERS: dict[Format, Callable[[TableConfig], Encoder]] = {
    Format.JSON: JsonLinesEncoder,
    Format.DEBEZIUM_JSON: DebeziumJsonEncoder,
    Format.RAW_STRING: RawStringEncoder,
}
if tuple(ENCODERS) != ENCODABLE:  # (what the SQL front end accepts without loading this)
    raise RuntimeError(f"formats.encodable.ENCODABLE is {ENCODABLE}, ENCODERS has {ENCODERS}")


def make_encoder(config: TableConfig) -> Encoder:
    """The encoder for sink table ``config``: its ``format``, JSON when it has none (as
    Arroyo's stdout sink). Raises :class:`ConnectorError` for a format without an encoder."""
    spec = config.format
    fmt = Format.JSON if spec is None else spec.format
    build = ENCODERS.get(fmt)
    if build is None:
        known = ", ".join(f.value for f in ENCODERS)
        raise ConnectorError(
            f"format '{fmt.value}' cannot be written by arroyo-lite sinks yet (use {known})"
        )
    return build(config)


def _without_timestamp(table: pa.Table) -> pa.Table:
    # Arroyo's serializer projects the event-time column away.
    if TIMESTAMP_COLUMN in table.column_names:
        return table.drop_columns([TIMESTAMP_COLUMN])
    return table


def _map_timestamps(
    table: pa.Table, convert: Callable[[pa.ChunkedArray[Any]], pa.ChunkedArray[Any]]
) -> pa.Table:
    columns = [convert(c) if pa.types.is_timestamp(c.type) else c for c in table.columns]
    return pa.Table.from_arrays(columns, names=table.column_names)


def _unix_millis(table: pa.Table) -> pa.Table:
    def millis(column: pa.ChunkedArray[Any]) -> pa.ChunkedArray[Any]:
        typ = column.type
        assert isinstance(typ, pa.TimestampType)
        return column.cast(pa.timestamp("ms", typ.tz), safe=False).cast(pa.int64())

    return _map_timestamps(table, millis)


def _timestamps_as_text(table: pa.Table) -> pa.Table:
    # Only timestamps: DuckDB writes decimals as numbers, as Arroyo's default encoding does.
    return _map_timestamps(table, lambda c: _iso_timestamps(c, compact=False))


def _json_columns(schema: pa.Schema) -> frozenset[str]:
    """Names of SQL ``JSON`` columns (text holding JSON, written as the JSON itself)."""
    marker = next(iter(JSON_EXTENSION))
    return frozenset(f.name for f in schema if f.metadata and marker in f.metadata)


# --- values as JSON text ------------------------------------------------------------------


def _iso_timestamps(column: pa.ChunkedArray[Any], *, compact: bool) -> pa.ChunkedArray[Any]:
    typ = column.type
    assert isinstance(typ, pa.TimestampType)
    if compact and typ.unit == "ns":
        # Terminal tables show microseconds, as psql and the duckdb CLI do (rows 0.5 ms
        # apart must not look the same); data formats keep every digit.
        column = column.cast(pa.timestamp("us", typ.tz), safe=False)
    # Arrow's cast prints "YYYY-MM-DD HH:MM:SS[.fff]" (+ "Z"/offset when zoned) about 30x
    # faster than strftime; the one space becomes ISO 8601's "T".
    text = column.cast(pa.string())
    import pyarrow.compute as pc

    # As chrono's ``%.f`` (Arroyo's serializer): the fraction in groups of 3 digits,
    # trailing zero groups dropped, no fraction at all for a whole second.
    text = pc.replace_substring_regex(text, pattern=_ZERO_GROUPS, replacement=r"\1\2")
    text = pc.replace_substring_regex(text, pattern=r"\.(\D*)$", replacement=r"\1")
    result: pa.ChunkedArray[Any] = pc.replace_substring(
        text, pattern=" ", replacement="T", max_replacements=1
    )
    return result


#: The fraction's trailing groups of three zeros (before any zone suffix).
_ZERO_GROUPS = r"^(.*\.(?:\d\d\d)*?)(?:000)+(\D*)$"


def displayable(data: Data, *, compact: bool = False) -> pa.Table:
    """``data`` with temporal and decimal columns cast to text, columnar.

    Python's ``datetime`` cannot hold nanoseconds (Arroyo's ``_timestamp`` has them), so
    timestamps become ISO 8601 strings before any row is converted to Python objects.
    ``compact`` cuts sub-second digits to microseconds (for terminal tables).
    """
    table = data if isinstance(data, pa.Table) else pa.Table.from_batches([data])
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


def json_default(value: Any) -> Any:
    """orjson's fallback for the types it does not serialise itself (inside nested values)."""
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, dt.datetime):
        # A nanosecond timestamp inside a struct or list comes out of Arrow as pandas'
        # Timestamp, a datetime subclass orjson does not take: ISO 8601, as at top level.
        return value.isoformat()
    raise TypeError(f"cannot render {type(value).__name__} as JSON")


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


_JSON_DB = threading.local()
#: The one small DuckDB database of serialisation (never the engine's), made on first use.
_SCRATCH: list[duckdb.DuckDBPyConnection] = []
_SCRATCH_LOCK = threading.Lock()


def prepare_json_output() -> None:
    """Make the serialisation database now, on any thread: ``run --format jsonl`` makes it
    in the background while its SQL compiles (``terminal/watch.prepare_output``; DuckDB
    builds a database mostly without the GIL), so that its first row does not wait for it.
    Calling it is never needed."""
    with _SCRATCH_LOCK:
        if not _SCRATCH:
            _SCRATCH.append(duckdb.connect(":memory:"))


def _json_connection() -> duckdb.DuckDBPyConnection:
    # One connection per thread (a cursor: what it registers is its own) to one database
    # per process: a thread that serialises pays a cursor, not a database of its own.
    con: duckdb.DuckDBPyConnection | None = getattr(_JSON_DB, "con", None)
    if con is None:
        prepare_json_output()
        con = _SCRATCH[0].cursor()
        con.execute("SET python_enable_replacements = false")
        _JSON_DB.con = con
    return con


def json_lines(table: pa.Table, *, raw_json: frozenset[str] = frozenset()) -> bytes:
    """One JSON object per row of ``table`` (already :func:`displayable`), each ending in ``\\n``.

    Serialised by DuckDB's ``to_json`` (vectorised: several times faster than converting rows
    to Python objects); binary values become base64 and non-finite floats ``null`` so every
    line is valid JSON. Columns named in ``raw_json`` hold JSON text written as JSON values.
    """
    if table.num_rows == 0 or table.num_columns == 0:
        return b"\n" * table.num_rows if table.num_columns == 0 else b""
    # DuckDB appends each line's newline too: the text is then its result's string buffer
    # as it is (no Arrow compute kernel, whose module costs a run ~40 ms to import).
    lines = _json_text(table, raw_json=raw_json, newline=True)
    if lines is None:
        return json_lines_python(table)  # a type DuckDB cannot read from Arrow
    return _text_of(lines)


def json_objects(
    table: pa.Table, *, raw_json: frozenset[str] = frozenset()
) -> pa.ChunkedArray[Any] | None:
    """The JSON text of each row of ``table`` (as :func:`json_lines`, without newlines), or
    ``None`` when DuckDB cannot read one of its types (and no column is ``raw_json``)."""
    return _json_text(table, raw_json=raw_json, newline=False)


def _json_text(
    table: pa.Table, *, raw_json: frozenset[str], newline: bool
) -> pa.ChunkedArray[Any] | None:
    """:func:`json_objects`, each text followed by ``\n`` when ``newline``."""
    parts = []
    for field in table.schema:
        name = _quoted(field.name)
        if pa.types.is_binary(field.type) or pa.types.is_large_binary(field.type):
            expr = f"to_base64({name})"
        elif field.type == pa.float32():
            # The shortest text that reads back as this float32 (as Rust writes an f32:
            # 320.1, not the 320.1000061035156 of its double).
            expr = f"CASE WHEN isfinite({name}) THEN json(CAST({name} AS VARCHAR)) END"
        elif pa.types.is_floating(field.type):
            expr = f"CASE WHEN isfinite({name}) THEN {name} END"
        elif field.name in raw_json:
            expr = f"json({name})"
        else:
            expr = name
        parts.append(f"{expr} AS {name}")
    text = "CAST(to_json(r) AS VARCHAR) || chr(10)" if newline else "to_json(r)"
    sql = f"SELECT {text} AS j FROM (SELECT {', '.join(parts)} FROM _rows) AS r"
    con = _json_connection()
    con.register("_rows", table)
    try:
        objects: pa.ChunkedArray[Any] = con.sql(sql).to_arrow_table().column(0)
    except duckdb.Error:
        if raw_json:
            raise
        return None
    finally:
        con.unregister("_rows")
    return objects


def _lines(column: pa.ChunkedArray[Any]) -> bytes:
    """Non-null strings joined, each followed by ``\\n``, without a Python loop per row.

    After appending ``\\n`` to every value, the string data buffer of the combined array is
    exactly the output; its first and last offsets say where it starts and ends.
    """
    import pyarrow.compute as pc

    newline = string_scalar("\n")
    empty = string_scalar("")
    joined: Any = pc.binary_join_element_wise(column, empty, newline)  # type: ignore[call-overload]
    return _text_of(joined)


def _text_of(column: pa.ChunkedArray[Any]) -> bytes:
    """The non-null strings of ``column`` concatenated (its combined data buffer, sliced)."""
    joined: Any = column.combine_chunks()
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


def json_lines_python(table: pa.Table) -> bytes:
    """:func:`json_lines` row by row with orjson (the fallback for types DuckDB cannot read)."""
    option = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
    rows = table.to_pylist()
    return b"".join(orjson.dumps(row, default=json_default, option=option) + b"\n" for row in rows)
