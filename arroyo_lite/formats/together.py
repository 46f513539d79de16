"""Decoding the small bodies of many polls in one pass: one batch built, sliced per body.

For a small JSON body, building its batch (a ``pa.array`` per column, ``_timestamp``, the
record batch) costs more than parsing it (``benchmarks/poll_step.py``). When many polls of
tables with the same columns complete at once, :func:`decode_together` parses each body on
its own (orjson and the exact path's row conversion, as :class:`~.json_decoder.JsonDecoder`
does for a small body) but builds the columns once for the rows of all of them, and hands each
body a zero-copy slice: the same rows, in the same order, with the same ``_timestamp``, as
``decoder.decode(body, received_at_ns)`` would give body by body.

Only decoders :func:`together_key` names take part (structured JSON without a records path,
framing, virtual or JSON columns, or event time), and only bodies shorter than
:data:`~.json_decoder.SMALL_BODY`. A body with anything unusual in it (a bad record, invalid
JSON, too many records, no record) is decoded alone by its own decoder, so errors and
``bad_data`` behave exactly as without batching.

Per body the Python is kept short (a small poll's CPU is mostly Python executed per poll):
a body that is one JSON object is parsed by one ``orjson.loads``, and a record whose values
are all of their column's plain Python type (``int`` in range, ``float``, ``str``, ``bool``:
what orjson gives for the usual JSON) becomes its row without a converter call per value
(:func:`_plain_rows`); anything else takes the exact path's per-value conversion.
"""

from __future__ import annotations

import weakref
from array import array
from collections.abc import Callable, Hashable, Sequence
from itertools import accumulate
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from arroyo_lite.config import TIMESTAMP_TYPE
from arroyo_lite.formats.json_decoder import SMALL_BODY, JsonDecoder
from arroyo_lite.formats.json_slow import (
    InvalidJson,
    SlowJsonDecoder,
    _is_json,
    iter_records,
    parse_values,
)
from arroyo_lite.formats.json_values import BadValue
from arroyo_lite.formats.pandas_free import array_from_values
from arroyo_lite.formats.result import Decoder, DecodeResult


def together_key(decoder: Decoder) -> Hashable | None:
    """What decoders must share to decode their bodies together (``None``: this one cannot):
    the decoded and the output columns (names, types, metadata), ``bad_data`` and the
    records limit."""
    if not isinstance(decoder, JsonDecoder) or decoder.records is not None:
        return None
    config = decoder.config
    if (
        config.framing is not None
        or decoder.runs_queries
        or config.event_time_column is not None
        or any(_is_json(f) for f in decoder.slow.schema)
    ):
        return None
    return (
        decoder.slow.schema.to_string(show_field_metadata=True, show_schema_metadata=True),
        decoder.output.schema.to_string(show_field_metadata=True, show_schema_metadata=True),
        config.bad_data,
        config.max_records_per_body,
    )


def decode_together(
    decoders: Sequence[Decoder], bodies: Sequence[bytes], received_at_ns: Sequence[int]
) -> list[DecodeResult | BaseException]:
    """Each body decoded as by its decoder (same index), the common ones in one batch.

    The decoders must share one :func:`together_key`. An element is the exception the body's
    own decoder raised for it (a ``FatalSourceError`` under ``bad_data = 'fail'``).
    """
    first = decoders[0]
    assert isinstance(first, JsonDecoder)
    results: list[DecodeResult | BaseException | None] = [None] * len(bodies)
    rows: list[list[Any]] = []
    counts: list[int] = []
    owners: list[int] = []
    limit = first.config.max_records_per_body
    plan = _plan_of(first)
    convert = plan.convert
    for i, body in enumerate(bodies):
        body_rows = _rows(body, convert, limit)
        if body_rows is None:
            try:
                results[i] = decoders[i].decode(body, received_at_ns[i])
            except Exception as e:  # the body's own decoder's error, for its table alone
                results[i] = e
            continue
        decoder = decoders[i]
        assert isinstance(decoder, JsonDecoder)
        decoder.small_bodies += 1
        rows += body_rows
        counts.append(len(body_rows))
        owners.append(i)
    if len(owners) == 1:  # a quiet loop's flush: the batch is that body's (no slice)
        (i,) = owners
        results[i] = DecodeResult(_batch(plan, rows, counts, [received_at_ns[i]]), counts[0])
    elif owners:
        batch = _batch(plan, rows, counts, [received_at_ns[i] for i in owners])
        offset = 0
        for i, count in zip(owners, counts, strict=True):
            results[i] = DecodeResult(batch.slice(offset, count), count)
            offset += count
    return [r for r in results if r is not None]


def _rows(body: bytes, convert: Any, limit: int) -> list[list[Any]] | None:
    """The rows of a body with only good records, or ``None`` to decode it alone."""
    if not body or len(body) >= SMALL_BODY:
        return None
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            values = parse_values(body)  # several values, or invalid JSON
        except InvalidJson:
            return None
    else:
        if type(value) is dict and limit >= 1:  # one record
            try:
                return [convert(value)]
            except BadValue:
                return None
        values = [value]  # what parse_values returns for one value
    rows: list[list[Any]] = []
    for record in iter_records(values):
        if isinstance(record, BadValue) or len(rows) >= limit:
            return None
        try:
            rows.append(convert(record))
        except BadValue:
            return None
    return rows or None


def _plain_rows(slow: SlowJsonDecoder) -> Callable[[dict[str, Any]], list[Any]]:
    """``slow._row`` (a record's row of converted values), cheaper for plain records; made
    once per decoder.

    A column of an integer type takes an ``int`` within its range as it is, a floating
    column a ``float``, a string column a ``str``, a boolean column a ``bool``, a timestamp
    column an ``int`` (a count in its unit): what the column's converter returns for them
    (:func:`~arroyo_lite.formats.json_values.converter_for`). A record with any other value
    (missing, null, another type, out of range) is converted by ``slow._row`` itself, so
    its row and its errors are the exact path's. (A closure, not an object with
    ``__call__``: it is called once per body.)"""
    found = _plain.get(slow)
    if found is not None:
        return found
    # Held weakly: the cache's value must not keep its key (the decoder) alive.
    row_of = weakref.WeakMethod(slow._row)

    def exact(record: dict[str, Any]) -> list[Any]:
        method = row_of()
        assert method is not None  # called only through the live decoder's entry
        return method(record)

    columns: list[tuple[str, type, int | None, int | None]] = []
    for field in slow.schema:
        t: Any = field.type
        lo = hi = None
        if pa.types.is_integer(t):
            kind: type = int
            bits = t.bit_width
            signed = not pa.types.is_unsigned_integer(t)
            lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        elif pa.types.is_floating(t):
            kind = float
        elif pa.types.is_string(t) or pa.types.is_large_string(t):
            kind = str
        elif pa.types.is_boolean(t):
            kind = bool
        elif pa.types.is_timestamp(t):
            kind = int
        else:
            _plain[slow] = exact  # no plain shortcut for this schema
            return exact
        columns.append((field.name, kind, lo, hi))

    def plain(record: dict[str, Any]) -> list[Any]:
        row = []
        for name, kind, lo, hi in columns:
            value = record.get(name)
            if type(value) is not kind or (lo is not None and not lo <= value <= hi):  # type: ignore[operator]
                return exact(record)
            row.append(value)
        return row

    _plain[slow] = plain
    return plain


_plain: weakref.WeakKeyDictionary[SlowJsonDecoder, Callable[[dict[str, Any]], list[Any]]] = (
    weakref.WeakKeyDictionary()
)


def _batch(
    plan: _Plan, rows: list[list[Any]], counts: list[int], received_at_ns: list[int]
) -> pa.RecordBatch:
    """One batch of the plan's output schema holding ``rows`` (``counts[k]`` rows of the
    ``k``-th body, stamped ``received_at_ns[k]``).

    A flush of a quiet loop holds a body or two, so what it costs is mostly fixed: the rows
    are turned into columns by one ``zip``, and a column without nulls of a fixed-width
    number type or of ``string`` is one ``from_buffers`` call on buffers made here; any
    other column is built by ``array_from_values``."""
    n = len(rows)
    columns = list(zip(*rows, strict=True))
    arrays: list[pa.Array[Any]] = []
    # Built from buffers: pa.array would import pandas (0.5 s before a run's first row).
    from_buffers, py_buffer = pa.Array.from_buffers, pa.py_buffer
    for j, type_, code, text in plan.columns:
        if j is None:
            arrays.append(pa.nulls(n, type_))
            continue
        values = columns[j]
        if None in values:
            arrays.append(array_from_values(list(values), type_))
        elif code is not None:
            arrays.append(from_buffers(type_, n, [None, py_buffer(array(code, values))], 0))
        elif text:
            joined = "".join(values)
            data = joined.encode("utf-8")
            # ASCII (the usual text): a character is a byte, so a value's length is its size.
            sizes = map(len, values) if len(data) == len(joined) else _utf8_sizes(values)
            offsets = py_buffer(array("i", accumulate(sizes, initial=0)))
            arrays.append(from_buffers(type_, n, [None, offsets, py_buffer(data)], 0))
        else:
            arrays.append(array_from_values(list(values), type_))
    if len(counts) == n:  # one row per body, the common case
        stamps = py_buffer(array("q", received_at_ns))
    else:
        repeated = np.repeat(np.asarray(received_at_ns, dtype=np.int64), counts)
        stamps = py_buffer(np.ascontiguousarray(repeated).data)
    arrays.append(from_buffers(TIMESTAMP_TYPE, n, [None, stamps], 0))
    return pa.RecordBatch.from_arrays(arrays, schema=plan.schema)


def _utf8_sizes(values: Sequence[str]) -> list[int]:
    return [len(v.encode("utf-8")) for v in values]


class _Plan:
    """How :func:`_batch` builds each output column of one decoder's batches: the index of
    its value in a row (``None``: not decoded, all nulls), its type, the ``array`` type code
    of a fixed-width number type (``None``: not one) and whether it is ``string`` (the
    columns :func:`_batch` builds from buffers itself); and the decoder's plain-row
    conversion (:func:`_plain_rows`). Kept on the decoder (:attr:`JsonDecoder.together`):
    a weak-dictionary lookup per flush costs a weak reference."""

    __slots__ = ("schema", "columns", "convert")

    def __init__(self, decoder: JsonDecoder) -> None:
        self.schema = decoder.output.schema
        self.convert = _plain_rows(decoder.slow)
        decoded = {f.name: (j, f.type) for j, f in enumerate(decoder.slow.schema)}
        self.columns: list[tuple[int | None, Any, str | None, bool]] = []
        for field in list(self.schema)[:-1]:  # the last column is _timestamp
            j, t = decoded.get(field.name, (None, field.type))
            code = _CODES.get(str(t))
            if code is None and pa.types.is_timestamp(t):
                code = "q"
            self.columns.append((j, t, code, pa.types.is_string(t)))


def _plan_of(decoder: JsonDecoder) -> _Plan:
    plan = decoder.together
    if plan is None:
        plan = decoder.together = _Plan(decoder)
    assert isinstance(plan, _Plan)
    return plan


#: ``array`` type codes of the fixed-width number types (as ``array_from_values`` uses).
_CODES = {
    "int8": "b", "int16": "h", "int32": "i", "int64": "q",
    "uint8": "B", "uint16": "H", "uint32": "I", "uint64": "Q",
    "float": "f", "double": "d",
}  # fmt: skip
