"""The fast structured-JSON path: pyarrow's native JSON reader, no Python per record.

pyarrow reads NDJSON with an explicit schema at a few hundred MB/s and is stricter than our
rules in every way that matters (a numeric string into a number column, a number into TEXT,
``1.7`` into an integer, a duplicate key, a number into a TIMESTAMP: each is an error, never a
different answer). So the contract is simple: :func:`FastJsonReader.read` either returns
exactly what the exact path (:mod:`~arroyo_lite.formats.json_slow`) would return for a body
with no bad record, or ``None``, and the caller falls back to the exact path.

Where pyarrow differs and cannot be trusted, the fast path is not used at all: tables with a
BYTEA field (pyarrow does not decode base64) or a JSON field nested in a STRUCT or LIST.
Top-level JSON columns are left out of pyarrow's schema and extracted from the records' text
by DuckDB (:mod:`~arroyo_lite.formats.json_text`). Timestamps are read at nanosecond
precision (Arrow parses the same ISO 8601 forms as the exact path) and truncated to the
column's unit. A top-level array body is read natively: cut into NDJSON lines when that is
provably safe, else wrapped as ``{"r": [...]}`` with a ``list<struct>`` schema.

NOT NULL is checked by the caller on the result; invalid UTF-8 (which pyarrow lets through)
and decimals beyond their precision (which pyarrow does not check) send the body to the exact
path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

import orjson

# (pyarrow.compute is imported in the functions that call a kernel: its import, ~40 ms,
# would otherwise come before a run's first row.)
import pyarrow as pa
import pyarrow.json as pajson

from arroyo_lite.config import TableConfig
from arroyo_lite.formats.json_pieces import read_arrays, read_pieces
from arroyo_lite.formats.json_text import JsonText
from arroyo_lite.formats.pandas_free import empty_batch
from arroyo_lite.formats.records import RecordPath

_T = TypeVar("_T")
#: pyarrow's default block size: blocks above this are parsed on several threads.
BLOCK_SIZE = 1 << 20
_LEADING_SPACE = re.compile(rb"[ \t\r\n]*")
_SPACE = b" \t\r\n"


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


def _is_json(f: pa.Field[Any]) -> bool:
    return (f.metadata or {}).get(b"ARROW:extension:name") == b"arroyo.json"


def _read_field(f: pa.Field[Any]) -> pa.Field[Any] | None:
    if _is_json(f):
        return None  # top-level JSON columns come from JsonText; nested ones are not read
    t = _read_type(f.type)
    # Read everything as nullable: NOT NULL is enforced afterwards, with Arroyo's message.
    return None if t is None else pa.field(f.name, t, nullable=True)


#: pyarrow's complaint when a value's JSON kind differs from the column's read type.
#: (The path of a wrapped top-level array's columns starts with ``/r/[]``, that of records
#: under a record path with the path and ``/[]``.)
_KIND_CHANGE = re.compile(r"Column\((?:.*/\[\])?/([^/)]+)\) changed from (\w+) to (\w+)")
#: At most this many re-reads per body while adapting read types.
_MAX_ADAPT = 3


@dataclass(frozen=True)
class ReadPlan:
    """The schema pyarrow reads with; ``overrides`` maps top-level columns read as another
    type (a number read as text, a timestamp read as a raw count) to that type."""

    schema: pa.Schema
    overrides: tuple[tuple[str, pa.DataType], ...] = ()

    @property
    def wrapped(self) -> pa.Schema:
        return pa.schema([pa.field("r", pa.list_(pa.struct(self.schema)))])


class FastJsonReader:
    """Reads structured JSON bodies natively; ``usable`` is False when the schema forbids it.

    Adapts to how an API spells its values: when pyarrow reports that a top-level number or
    timestamp column holds another JSON kind (numeric strings, epoch counts), the column is
    read as that kind and converted with a vectorised cast, and the adapted plan is kept for
    the next bodies (a cache; a body that no longer fits it adapts again).
    """

    def __init__(self, config: TableConfig, records: RecordPath | None = None) -> None:
        self.schema = config.decode_schema()
        self.records = records
        self._json_names = [f.name for f in self.schema if _is_json(f)]
        fields = [_read_field(f) for f in self.schema if not _is_json(f)]
        self.usable = all(f is not None for f in fields)
        self._json = JsonText(self._json_names) if self._json_names else None
        #: Whether :meth:`read` runs DuckDB queries (for the text of JSON columns).
        self.runs_queries = self._json is not None
        # pyarrow does not check a decimal against its precision; full validation does.
        self._validate = "decimal" in str(self.schema)
        self._base = ReadPlan(pa.schema([f for f in fields if f is not None]))
        self._plan = self._base

    def read(self, ndjson: bytes, *, whole_body: bool) -> pa.RecordBatch | None:
        """The physical columns of ``ndjson``, or ``None`` to ask for the exact path.

        ``whole_body`` is True when ``ndjson`` is one unframed message: it may then be one
        (possibly pretty-printed) object, several objects, or a top-level array. Otherwise it
        is newline-framed text, one value per line. Safe to call from several threads.
        """
        if not self.usable:
            return None
        if not _valid_utf8(ndjson):  # pyarrow does not validate UTF-8; orjson would reject it
            return None
        return self._adapting(partial(self._read_with, data=ndjson, whole_body=whole_body))

    def _adapting(self, read: Callable[[ReadPlan], _T | None]) -> _T | None:
        """``read(plan)`` with the current plan, adapted (at most :data:`_MAX_ADAPT` times) to
        the kinds pyarrow reports; a plan that read a batch is kept for the next bodies."""
        plan = self._plan
        for _ in range(_MAX_ADAPT + 1):
            try:
                batch = read(plan)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as e:
                adapted = self._adapt(plan, str(e))
                if adapted is None:
                    return None
                plan = adapted
                continue
            if batch is not None:
                self._plan = plan
            return batch
        return None

    def read_records(self, body: bytes) -> pa.RecordBatch | None:
        """The records :attr:`records` selects in ``body`` (an empty batch when it selects
        nothing), or ``None`` to ask for the exact path.

        pyarrow reads the whole body once, in one block, with the records' schema nested
        along the path: members outside the path are skipped by the parser, no Python runs
        per record. JSON columns need each record's text, which this read does not keep:
        tables with one take the exact path.
        """
        if not self.usable or self.records is None or self._json is not None:
            return None
        if not _valid_utf8(body):  # as in read(): pyarrow does not validate UTF-8
            return None
        return self._adapting(partial(self._read_records_with, body=body))

    def read_arrays(self, bodies: Sequence[bytes]) -> tuple[pa.RecordBatch, list[int]] | None:
        """The records of several bodies, each one top-level array of objects, read together
        by one pyarrow read (a line per body, on pyarrow's threads: one read's set-up instead
        of one per body, and no cutting of the arrays), and how many rows each body gave;
        ``None`` to ask for one read per body (:func:`~.json_pieces.read_arrays` says when).

        A body's rows are exactly those :meth:`read` gives for it alone: each line is proven
        to be one body's elements (the nonce of :mod:`~.json_pieces`), and a ``null`` element
        (a bad record) refuses the read.
        """
        if not self.usable or self._json is not None:
            return None
        if not all(_valid_utf8(body) for body in bodies):
            return None
        return self._adapting(partial(self._read_arrays_with, bodies=list(bodies)))

    def _read_arrays_with(
        self, plan: ReadPlan, bodies: list[bytes]
    ) -> tuple[pa.RecordBatch, list[int]] | None:
        batches = read_arrays(bodies, plan.schema)
        if batches is None:
            return None
        table = pa.Table.from_batches(batches, plan.schema)
        return self._finish(plan, table, _no_json_columns, None), [b.num_rows for b in batches]

    def _read_records_with(self, plan: ReadPlan, body: bytes) -> pa.RecordBatch:
        """The records in ``body`` read with ``plan``: the searched span, in pieces on
        several threads (:mod:`~arroyo_lite.formats.json_pieces`), when the span is proven,
        else one read with the schema nested along the path. Raises what pyarrow raises."""
        assert self.records is not None
        span = _records_span(body, self.records)
        if span is not None and _span_verified(body, span, self.records):
            try:
                pieces = read_pieces(body, span[0], span[1], plan.schema)
            except pa.ArrowInvalid as e:
                if self._column_kind_change(str(e)):
                    raise  # a type problem, not a failed proof: let the caller adapt
                pieces = None
            if pieces is not None:
                return self._finish(plan, pieces, _no_json_columns, None)
        table = _read_json(body, self.records.nest(plan.schema), len(body) + 1)
        rows, _found = self.records.unnest(table)
        if rows is None:
            return empty_batch(self.schema)
        records = pa.Table.from_arrays(rows.flatten(), schema=plan.schema)
        return self._finish(plan, records, _no_json_columns, None)

    def _column_kind_change(self, error: str) -> bool:
        """Whether pyarrow's ``error`` says that one of the table's columns holds another
        JSON kind (what :meth:`_adapt` adapts to)."""
        match = _KIND_CHANGE.search(error)
        return match is not None and match.group(1) in self.schema.names

    def _read_with(self, plan: ReadPlan, data: bytes, whole_body: bool) -> pa.RecordBatch | None:
        # pyarrow reads a top-level null as a row of nulls, as it reads {}: only data that
        # spells "null" somewhere can hold one (searched only if such a row appears).
        nulls = data
        if not whole_body:
            table = _read_json(data, plan.schema, BLOCK_SIZE)
            return self._finish(plan, table, partial(self._json_lines, data), nulls)
        start = _LEADING_SPACE.match(data)
        first = start.end() if start is not None else 0
        if data[first : first + 1] == b"[":
            return self._read_array(plan, data, first, nulls)
        table = self._read_whole(plan.schema, data)
        if table.num_rows == 1:
            return self._finish(plan, table, partial(self._json_one, data), nulls)
        return self._finish(plan, table, partial(self._json_lines, data), nulls)

    @staticmethod
    def _read_whole(schema: pa.Schema, data: bytes) -> pa.Table:
        """Any whitespace-separated JSON objects, read as a single block.

        With one block covering all the data, pyarrow never cuts at a newline, so values may
        span lines (pretty-printed JSON) without the slower ``newlines_in_values`` chunker.
        Large bodies first try the threaded line reader, which fails fast on multi-line values.
        """
        if len(data) > BLOCK_SIZE:
            try:
                return _read_json(data, schema, BLOCK_SIZE)
            except pa.ArrowInvalid as e:
                if _KIND_CHANGE.search(str(e)):
                    raise  # a type problem, not a framing one: let the caller adapt
        return _read_json(data, schema, len(data) + 1)

    def _read_array(
        self, plan: ReadPlan, body: bytes, first: int, nulls: bytes | None
    ) -> pa.RecordBatch | None:
        """A top-level array of objects.

        Fast form: :meth:`_read_cut`. Otherwise the array is read whole, wrapped as
        ``{"r": [...]}``.
        """
        end = len(body)
        while end > first and body[end - 1] in _SPACE:
            end -= 1
        batch = self._read_cut(plan, body, first, end, partial(self._json_view), nulls)
        if batch is not None:
            return batch
        wrapped = b'{"r":' + body + b"}"
        table = _read_json(wrapped, plan.wrapped, len(wrapped) + 1)
        if table.num_rows != 1:
            return None
        lists: Any = table.column(0).combine_chunks()
        if lists.null_count:
            return None
        rows: Any = lists.flatten()
        if rows.null_count:
            return None  # a null element is a bad record: the exact path says so
        table = pa.Table.from_arrays(rows.flatten(), schema=plan.schema)
        # Null elements were refused above: an all-null row here is an object ({}).
        return self._finish(plan, table, partial(self._json_array, body), None)

    def _read_cut(
        self,
        plan: ReadPlan,
        body: bytes,
        first: int,
        end: int,
        json_columns: Callable[[memoryview], tuple[int | None, list[Any]]],
        nulls: bytes | None,
    ) -> pa.RecordBatch | None:
        """The array ``body[first:end]`` (``[`` to ``]``) cut into NDJSON, or ``None``.

        Cut at each ``},{`` (or ``},`` + newline + ``{``, for one element per line, or
        ``}, {``, as Python's ``json.dumps`` separates them) and read on several threads. A
        cut that falls inside a string or a nested value always leaves an unbalanced
        (invalid) line, because the line before it starts at a true element boundary; so if
        pyarrow accepts every line, every cut was a true boundary.
        """
        if body[end - 1 : end] != b"]":
            return None
        # Same-length replacements are the cheapest (one copy, memchr-driven search); only
        # the bytes between the brackets are read.
        if body.find(b"\n", first, end) >= 0:
            lines = body.replace(b"},\n{", b"} \n{")
        elif body.find(b"}, {", first, end) >= 0:
            lines = body.replace(b"}, {", b"} \n{")
        else:
            lines = body.replace(b"},{", b"}\n{")
        cut = lines.find(b"\n", first + 1, end - 1)
        head = lines[first + 1 : cut if cut >= 0 else end - 1].strip()
        if head and not head.endswith(b"}"):
            return None
        inner = memoryview(lines)[first + 1 : end - 1]  # zero-copy
        try:
            table = _read_json(inner, plan.schema, BLOCK_SIZE)
        except pa.ArrowInvalid as e:
            if _KIND_CHANGE.search(str(e)):
                raise  # a type problem, not a framing one: let the caller adapt
            return None
        return self._finish(plan, table, partial(json_columns, inner), nulls)

    def _adapt(self, plan: ReadPlan, error: str) -> ReadPlan | None:
        """A plan that reads the column pyarrow complained about as the kind it found."""
        match = _KIND_CHANGE.search(error)
        if match is None:
            return None
        name, found = match.group(1), match.group(3)
        if name not in self.schema.names:
            return None  # a nested field: the exact path handles it
        target = self.schema.field(name).type
        read_as: pa.DataType | None = None
        if found == "number" and pa.types.is_timestamp(target):
            read_as = pa.int64()  # a JSON number is a raw count in the column's unit
        elif found == "string" and (pa.types.is_integer(target) or pa.types.is_floating(target)):
            read_as = pa.string()  # numeric strings, converted by a vectorised cast
        elif found in ("string", "number"):
            # The column went back to its own kind after an adaptation.
            read_as = _read_type(target)
        overrides = dict(plan.overrides)
        if read_as is None or overrides.get(name, _read_type(target)) == read_as:
            return None
        if read_as == _read_type(target):
            overrides.pop(name, None)
        else:
            overrides[name] = read_as
        schema = pa.schema(
            [pa.field(f.name, overrides.get(f.name, f.type)) for f in self._base.schema]
        )
        return ReadPlan(schema, tuple(sorted(overrides.items())))

    # JSON columns: (record count or None if already known to match, one array per column).
    def _json_lines(self, data: bytes) -> tuple[int | None, list[Any]]:
        assert self._json is not None
        return self._json.from_lines(data)

    def _json_view(self, data: memoryview) -> tuple[int | None, list[Any]]:
        return self._json_lines(bytes(data))

    def _json_one(self, data: bytes) -> tuple[int | None, list[Any]]:
        assert self._json is not None
        return 1, self._json.from_records(pa.array([data.decode("utf-8")], pa.string()))

    def _json_array(self, body: bytes) -> tuple[int | None, list[Any]]:
        assert self._json is not None
        return None, self._json.from_array(body)

    def _finish(
        self,
        plan: ReadPlan,
        table: pa.Table,
        json_columns: Callable[[], tuple[int | None, list[Any]]],
        nulls: bytes | None,
    ) -> pa.RecordBatch:
        """Cast what pyarrow read to the columns' types and add the JSON columns.

        ``nulls`` is the data read when it may hold a top-level ``null`` (``None``: it cannot):
        a row with every column null is then ambiguous (``{}``, or a ``null`` record), so
        the data is searched for ``null`` only when such a row appears (a scan of the whole
        body costs as much as a tenth of the parse). Raises ArrowInvalid to give up (the
        caller then takes the exact path).
        """
        overrides = dict(plan.overrides)
        json_arrays: dict[str, Any] = {}
        if self._json is not None:
            try:
                count, arrays = json_columns()
            except ValueError as e:
                raise pa.ArrowInvalid(str(e)) from e
            if count is not None and count != table.num_rows:
                # A line holding several objects: rows and records do not line up.
                raise pa.ArrowInvalid("JSON records and rows differ")
            json_arrays = dict(zip(self._json_names, arrays, strict=True))
        read_columns = iter(table.columns)
        columns = []
        for target in self.schema:
            if target.name in json_arrays:
                columns.append(json_arrays[target.name])
                continue
            column: Any = next(read_columns).combine_chunks()
            if column.type != target.type:
                if target.name in overrides:
                    column = _convert_override(column, target.type)
                else:
                    # Only timestamp units differ: truncating to the unit is the rule.
                    column = column.cast(target.type, safe=False)
            columns.append(column)
        if any(len(c) != table.num_rows for c in columns):
            raise pa.ArrowInvalid("JSON records and rows differ")
        if nulls is not None and table.num_columns and table.num_rows:
            # pyarrow turns a top-level null into a row of nulls; the exact path reports it
            # as bad data, so a body with an all-null row and a "null" is left to it.
            import pyarrow.compute as pc

            all_null: Any = pc.is_null(table.column(0))
            for other in table.columns[1:]:
                all_null = pc.and_(all_null, pc.is_null(other))
            if pc.any(all_null).as_py() and b"null" in nulls:
                raise pa.ArrowInvalid("a row with every column null")
        batch = pa.RecordBatch.from_arrays(columns, schema=self.schema)
        if self._validate:
            batch.validate(full=True)  # raises ArrowInvalid: the caller takes the exact path
        return batch


def _valid_utf8(data: bytes) -> bool:
    """Whether ``data`` is UTF-8. ASCII (most API bodies) is checked without decoding: a
    word-at-a-time scan that allocates nothing, where decoding makes a str of the body."""
    if data.isascii():
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _no_json_columns() -> tuple[int | None, list[Any]]:
    return None, []


#: Stands in for the records array when checking that a span found by searching is the one
#: the path selects (a key no API sends).
_MARKER_KEY = "__arroyo_lite_records_span__"
_MARKER = b'[{"' + _MARKER_KEY.encode() + b'":1}]'
_MARKER_VALUE = [{_MARKER_KEY: 1}]
#: Up to this many bytes, what is left of a body around its records is checked with orjson.
_SMALL_REST = 1 << 16
#: How many occurrences of the path's last key are tried as the start of the records.
_MAX_SPAN_TRIES = 4


def _records_span(body: bytes, records: RecordPath) -> tuple[int, int] | None:
    """Where the records array probably is in ``body``: ``[first, end)`` from its ``[`` to
    just past its ``]``, found by byte search (no parse), or ``None``.

    The start follows an occurrence of the path's last key and ``:``; the end is the last
    ``]`` of the body that follows a ``}`` (the records array is usually the last array of
    objects: GeoJSON's ``features``, ``{"data": [...], "next": ...}``). A guess only: the
    caller checks that the path selects exactly it (:func:`_span_verified`) and reads it as
    an array (:func:`~arroyo_lite.formats.json_pieces.read_pieces` proves its element
    boundaries and that the array does not end before the span does).
    """
    if not records.keys:
        return None
    needle = json.dumps(records.keys[-1]).encode()
    end = body.rfind(b"]")
    while end > 0:
        before = end - 1
        while before > 0 and body[before] in _SPACE:
            before -= 1
        if body[before : before + 1] == b"}":
            break
        end = body.rfind(b"]", 0, end)
    if end <= 0:
        return None
    at = body.find(needle)
    for _ in range(_MAX_SPAN_TRIES):
        if at < 0 or at >= end:
            return None
        start = _LEADING_SPACE.match(body, at + len(needle))
        colon = start.end() if start is not None else at + len(needle)
        if body[colon : colon + 1] == b":":
            value = _LEADING_SPACE.match(body, colon + 1)
            first = value.end() if value is not None else colon + 1
            if body[first : first + 1] == b"[":
                return first, end + 1
        at = body.find(needle, at + 1)
    return None


def _span_verified(body: bytes, span: tuple[int, int], records: RecordPath) -> bool:
    """Whether ``records`` selects exactly ``body[span]``: the body with the span replaced by
    a marker array must parse, and the path must select that marker (a span inside a
    string, in another member or cut short fails one of the two).

    What is left of the body is usually small (a cursor, a count): orjson, the exact path's
    own parser, reads it in microseconds (a pyarrow read costs half a millisecond to set up);
    a large rest is read by pyarrow, so no Python runs per value of a big body.
    """
    rest = body[: span[0]] + _MARKER + body[span[1] :]
    if len(rest) <= _SMALL_REST:
        try:
            return bool(records.path.find(orjson.loads(rest)) == _MARKER_VALUE)
        except orjson.JSONDecodeError:
            return False
    schema = records.nest(pa.schema([pa.field(_MARKER_KEY, pa.int64())]))
    try:
        table = _read_json(rest, schema, len(rest) + 1)
        rows, _found = records.unnest(table)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return False
    return rows is not None and rows.field(0).to_pylist() == [1]


def _convert_override(column: Any, target: pa.DataType) -> Any:
    """An adapted column to its type, only where the result is what the exact path gives."""
    if pa.types.is_timestamp(target):
        return column.cast(target)  # int64 raw counts in the column's unit
    if pa.types.is_integer(target) and not _INT_TEXT.all(column):
        raise pa.ArrowInvalid("not plain integers")  # "1.7", " 1": the exact path decides
    # Arrow's float parser takes "nan"/"inf" spellings the exact path rejects.
    if pa.types.is_floating(target) and not _FLOAT_TEXT.all(column):
        raise pa.ArrowInvalid("not plain numbers")
    return column.cast(target)  # safe: overflow and junk raise ArrowInvalid


class _Pattern:
    """A full-match regex over a string array, evaluated by Arrow (no Python per value)."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    def all(self, column: Any) -> bool:
        import pyarrow.compute as pc

        matches = pc.match_substring_regex(column, "^(?:" + self.pattern + ")$")
        return bool(pc.all(pc.fill_null(matches, True)).as_py())


_INT_TEXT = _Pattern(r"[+-]?\d+")
_FLOAT_TEXT = _Pattern(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def _read_json(data: bytes | memoryview, schema: pa.Schema, block_size: int) -> pa.Table:
    """pyarrow's reader over ``data``; raises ArrowInvalid for anything it rejects.

    pyarrow 26 crashes the process (segfault) when the first value of the data is a
    top-level ``null``, so such data never reaches it (a null anywhere else becomes an
    all-null row, which :meth:`FastJsonReader._finish` refuses).
    """
    start = _LEADING_SPACE.match(data)
    first = start.end() if start is not None else 0
    if data[first : first + 1] == b"n":
        raise pa.ArrowInvalid("the data starts with a top-level null")
    # A BufferReader over the bytes reads them in place (BytesIO would copy them first).
    return pajson.read_json(
        pa.BufferReader(pa.py_buffer(data)),  # type: ignore[arg-type]
        read_options=pajson.ReadOptions(block_size=max(block_size, BLOCK_SIZE)),
        parse_options=pajson.ParseOptions(
            explicit_schema=schema,
            unexpected_field_behavior="ignore",
            newlines_in_values=False,
        ),
    )
