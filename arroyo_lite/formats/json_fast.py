"""The fast structured-JSON path: pyarrow's native JSON reader, no Python per record.

pyarrow reads NDJSON with an explicit schema at a few hundred MB/s and is stricter than our
rules in every way that matters (a numeric string into a number column, a number into TEXT,
``1.7`` into an integer, a duplicate key, a number into a TIMESTAMP: each is an error, never a
different answer). So the contract is simple: :func:`FastJsonReader.read` either returns
exactly what the exact path (:mod:`~arroyo_lite.formats.json_slow`) would return for a body
with no bad record, or ``None``, and the caller falls back to the exact path.

Where pyarrow differs and cannot be trusted, the fast path is not used at all: tables with a
JSON column (pyarrow cannot give a value's JSON text) or a BYTEA field (pyarrow does not
decode base64). Timestamps are read at nanosecond precision (Arrow parses the same ISO 8601
forms as the exact path) and truncated to the column's unit. A top-level array body is read
natively: cut into NDJSON lines when that is provably safe, else wrapped as ``{"r": [...]}``
with a ``list<struct>`` schema.

NOT NULL is checked by the caller on the result; invalid UTF-8 (which pyarrow lets through)
and decimals beyond their precision (which pyarrow does not check) send the body to the exact
path.
"""

from __future__ import annotations

import io
import re
from typing import Any

import pyarrow as pa
import pyarrow.json as pajson

from arroyo_lite.config import TableConfig

#: pyarrow's default block size: blocks above this are parsed on several threads.
BLOCK_SIZE = 1 << 20
_LEADING_SPACE = re.compile(rb"[ \t\r\n]*")


def _read_type(t: Any) -> Any:
    """The type pyarrow should read for ``t``, or ``None`` when pyarrow cannot be trusted."""
    if pa.types.is_timestamp(t):
        return pa.timestamp("ns")
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return None
    if pa.types.is_list(t):
        item = _read_field(t.value_field)
        return None if item is None else pa.list_(item)
    if pa.types.is_struct(t):
        fields = [_read_field(f) for f in t]
        if any(f is None for f in fields):
            return None
        return pa.struct([f for f in fields if f is not None])
    return t


def _read_field(f: pa.Field[Any]) -> pa.Field[Any] | None:
    if f.metadata and f.metadata.get(b"ARROW:extension:name") == b"arroyo.json":
        return None
    t = _read_type(f.type)
    # Read everything as nullable: NOT NULL is enforced afterwards, with Arroyo's message.
    return None if t is None else pa.field(f.name, t, nullable=True)


class FastJsonReader:
    """Reads structured JSON bodies natively; ``usable`` is False when the schema forbids it."""

    def __init__(self, config: TableConfig) -> None:
        self.schema = config.decode_schema()
        # Nullable copy of the target: the cast from the read schema keeps nullability aside.
        self._target = pa.schema([pa.field(f.name, f.type) for f in self.schema])
        fields = [_read_field(f) for f in self.schema]
        self.usable = all(f is not None for f in fields)
        # pyarrow does not check a decimal against its precision; full validation does.
        self._validate = "decimal" in str(self.schema)
        self._read_schema = pa.schema([f for f in fields if f is not None])
        self._wrapped_schema = pa.schema([pa.field("r", pa.list_(pa.struct(self._read_schema)))])

    def read(self, ndjson: bytes, *, whole_body: bool) -> pa.RecordBatch | None:
        """The physical columns of ``ndjson``, or ``None`` to ask for the exact path.

        ``whole_body`` is True when ``ndjson`` is one unframed message: it may then be one
        (possibly pretty-printed) object, several objects, or a top-level array. Otherwise it
        is newline-framed text, one value per line. Safe to call from several threads.
        """
        if not self.usable:
            return None
        try:
            ndjson.decode("utf-8")  # pyarrow does not validate UTF-8; orjson would reject it
        except UnicodeDecodeError:
            return None
        try:
            if not whole_body:
                return self._finish(self._read_lines(ndjson))
            start = _LEADING_SPACE.match(ndjson)
            first = start.end() if start is not None else 0
            if ndjson[first : first + 1] == b"[":
                return self._read_array(ndjson, first)
            return self._finish(self._read_whole(ndjson))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return None

    def _read_lines(self, data: bytes, schema: pa.Schema | None = None) -> pa.Table:
        """NDJSON in blocks, parsed on several threads (each line must be whole)."""
        return _read_json(data, schema or self._read_schema, BLOCK_SIZE)

    def _read_whole(self, data: bytes, schema: pa.Schema | None = None) -> pa.Table:
        """Any whitespace-separated JSON objects, read as a single block.

        With one block covering all the data, pyarrow never cuts at a newline, so values may
        span lines (pretty-printed JSON) without the slower ``newlines_in_values`` chunker.
        Large bodies first try the threaded line reader, which fails fast on multi-line values.
        """
        if len(data) > BLOCK_SIZE:
            try:
                return self._read_lines(data, schema)
            except pa.ArrowInvalid:
                pass
        return _read_json(data, schema or self._read_schema, len(data) + 1)

    def _read_array(self, body: bytes, first: int) -> pa.RecordBatch | None:
        """A top-level array of objects.

        Fast form: cut the array into NDJSON at each ``},{`` (or ``},`` + newline + ``{``, for
        one element per line) and read the lines on several
        threads. A cut that falls inside a string or a nested value always leaves an
        unbalanced (invalid) line, because the line before it starts at a true element
        boundary; so if pyarrow accepts every line, every cut was a true boundary. Otherwise
        the array is read whole, wrapped as ``{"r": [...]}``.
        """
        inner = body[first + 1 :].rstrip()
        if inner.endswith(b"]"):
            inner = inner[:-1]
            # Same-length replacements are the cheapest (one copy, memchr-driven search).
            if b"\n" in inner:
                lines = inner.replace(b"},\n{", b"} \n{")
            else:
                lines = inner.replace(b"},{", b"}\n{")
            head = lines.split(b"\n", 1)[0].strip()
            if not head or head.endswith(b"}"):
                try:
                    return self._finish(self._read_lines(lines))
                except pa.ArrowInvalid:
                    pass
        wrapped = b'{"r":' + body + b"}"
        table = _read_json(wrapped, self._wrapped_schema, len(wrapped) + 1)
        if table.num_rows != 1:
            return None
        lists: Any = table.column(0).combine_chunks()
        if lists.null_count:
            return None
        rows: Any = lists.flatten()
        if rows.null_count:
            return None  # a null element is a bad record: the exact path says so
        return self._finish(pa.Table.from_arrays(rows.flatten(), schema=self._read_schema))

    def _finish(self, table: pa.Table) -> pa.RecordBatch:
        if table.schema != self._target:
            # Only timestamp units differ; truncating to the unit is the documented rule.
            table = table.cast(self._target, safe=False)
        batches = table.combine_chunks().to_batches()
        if not batches:
            return pa.RecordBatch.from_pylist([], schema=self.schema)
        batch = pa.RecordBatch.from_arrays(batches[0].columns, schema=self.schema)
        if self._validate:
            batch.validate(full=True)  # raises ArrowInvalid: the caller takes the exact path
        return batch


def _read_json(data: bytes, schema: pa.Schema, block_size: int) -> pa.Table:
    return pajson.read_json(
        io.BytesIO(data),
        read_options=pajson.ReadOptions(block_size=max(block_size, BLOCK_SIZE)),
        parse_options=pajson.ParseOptions(
            explicit_schema=schema,
            unexpected_field_behavior="ignore",
            newlines_in_values=False,
        ),
    )
