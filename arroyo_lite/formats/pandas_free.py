"""Arrow values built without waking pyarrow's pandas shim.

pyarrow converts Python values (``pa.array([...])``, even ``pa.array(ndarray)``,
``pa.scalar(1)``, a Python number passed to a compute function, ``schema.empty_table()``,
``RecordBatch.from_pylist``, ...) through a path that first imports pandas when it is
installed: about 0.5 s of an ``arroyo-lite run`` before its first row. The builders here give
the same Arrow values from buffers, which never ask for pandas. Use them on the paths between
``run`` starting and its first row (``tests/test_run_imports.py`` runs those paths with pandas
installed and checks it stays unimported).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from itertools import accumulate, compress
from typing import Any, cast

import numpy as np
import pyarrow as pa


def empty_table(schema: pa.Schema) -> pa.Table:
    """An empty table of ``schema`` (what ``schema.empty_table()`` gives, metadata included)."""
    return pa.Table.from_batches([], schema=schema)


def empty_batch(schema: pa.Schema) -> pa.RecordBatch:
    """A batch of ``schema`` with no rows (what ``RecordBatch.from_pylist([], schema)`` gives)."""
    return pa.RecordBatch.from_arrays([pa.nulls(0, f.type) for f in schema], schema=schema)


def int64_range(start: int, stop: int) -> pa.Int64Array:
    """``start, start + 1, ..., stop - 1`` as an ``int64`` array (no nulls)."""
    values = np.arange(start, max(start, stop), dtype=np.int64)
    data = pa.py_buffer(values.tobytes())
    return cast(pa.Int64Array, pa.Array.from_buffers(pa.int64(), len(values), [None, data]))


def int64_scalar(value: int) -> pa.Int64Scalar:
    """``value`` as an ``int64`` scalar, for compute functions (``pc.add(array, it)``)."""
    return int64_range(value, value + 1)[0]


def string_scalar(value: str) -> pa.StringScalar:
    """``value`` as a ``string`` scalar, for compute functions (``binary_join_element_wise``)."""
    data = value.encode("utf-8")
    offsets = np.array([0, len(data)], dtype=np.int32)
    buffers = [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data)]
    return cast(pa.StringScalar, pa.Array.from_buffers(pa.string(), 1, buffers)[0])


def int64_values(values: np.ndarray[Any, Any], type: pa.DataType) -> pa.Array[Any]:
    """A 64-bit ``type`` (``int64``, ``timestamp``, ...) array of ``values`` (no nulls)."""
    data = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(type, len(data), [None, pa.py_buffer(data.data)])


def repeat_int64(value: int, n: int, type: pa.DataType) -> pa.Array[Any]:
    """``value`` ``n`` times as a 64-bit ``type`` array (``pa.repeat(pa.scalar(...))``)."""
    return int64_values(np.full(n, value, dtype=np.int64), type)


def array_from_values(values: list[Any], type: pa.DataType) -> pa.Array[Any]:
    """``pa.array(values, type=type)`` for the Python values the exact JSON path produces
    (:mod:`~arroyo_lite.formats.json_values`: ``None``, and per type an ``int``, ``float``,
    ``bool``, ``str``, ``bytes``, a count in the timestamp's unit, a list or a dict of such).

    Integers, floats, booleans, timestamps, strings and binaries, lists and structs of them
    are built from buffers; any other type (decimals, ...) goes through ``pa.array``, which
    may import pandas. Values must fit ``type`` (the converters checked the ranges).
    """
    n = len(values)
    nulls = None in values
    validity = _bitmap([v is not None for v in values]) if nulls else None
    null_count = values.count(None) if nulls else 0
    code = _ARRAY_CODES.get(str(type))
    if code is None and pa.types.is_timestamp(type):
        code = "q"
    if code is not None:
        numbers = [0 if v is None else v for v in values] if nulls else values
        data = pa.py_buffer(array(code, numbers))
        return pa.Array.from_buffers(type, n, [validity, data], null_count)
    if pa.types.is_boolean(type):
        flags: list[bool] = [v is True for v in values] if nulls else values
        return pa.Array.from_buffers(type, n, [validity, _bitmap(flags)], null_count)
    if _is_text(type):
        large = pa.types.is_large_string(type) or pa.types.is_large_binary(type)
        text, lengths = _concatenated(values, nulls, binary=_is_binary(type))
        buffers = [validity, _offsets(lengths, large), pa.py_buffer(text)]
        return pa.Array.from_buffers(type, n, buffers, null_count)
    if pa.types.is_list(type) or pa.types.is_large_list(type):
        lists = [() if v is None else v for v in values] if nulls else values
        offsets = _offsets([len(v) for v in lists], pa.types.is_large_list(type))
        child = array_from_values([x for v in lists for x in v], type.value_type)
        return pa.Array.from_buffers(type, n, [validity, offsets], null_count, children=[child])
    if pa.types.is_struct(type):
        children = [
            array_from_values([None if v is None else v.get(f.name) for v in values], f.type)
            for f in type
        ]
        return pa.Array.from_buffers(type, n, [validity], null_count, children=children)
    return pa.array(values, type=type)


#: ``array`` module type codes of the fixed-width number types (``float16`` has none).
_ARRAY_CODES = {
    "int8": "b", "int16": "h", "int32": "i", "int64": "q",
    "uint8": "B", "uint16": "H", "uint32": "I", "uint64": "Q",
    "float": "f", "double": "d",
}  # fmt: skip


def _is_text(type: pa.DataType) -> bool:
    return pa.types.is_string(type) or pa.types.is_large_string(type) or _is_binary(type)


def _is_binary(type: pa.DataType) -> bool:
    return pa.types.is_binary(type) or pa.types.is_large_binary(type)


def _concatenated(values: list[Any], nulls: bool, *, binary: bool) -> tuple[bytes, Any]:
    """The values' bytes end to end (``str`` as UTF-8, ``None`` as nothing), and each one's
    length in bytes."""
    empty: Any = b"" if binary else ""
    items = [empty if v is None else v for v in values] if nulls else values
    if binary:
        return b"".join(items), map(len, items)
    text = "".join(items)
    data = text.encode("utf-8")
    if len(data) == len(text):  # ASCII: a character is a byte
        return data, map(len, items)
    encoded = [item.encode("utf-8") for item in items]
    return data, map(len, encoded)


def _bitmap(flags: list[bool]) -> pa.Buffer:
    """Arrow's bit-packed form of ``flags`` (least significant bit first)."""
    if len(flags) <= 64:
        bits = sum(1 << i for i in compress(range(len(flags)), flags))
        return pa.py_buffer(bits.to_bytes((len(flags) + 7) // 8, "little"))
    return pa.py_buffer(np.packbits(np.array(flags, dtype=np.bool_), bitorder="little").data)


def _offsets(lengths: Iterable[int], large: bool) -> pa.Buffer:
    return pa.py_buffer(array("q" if large else "i", accumulate(lengths, initial=0)))
