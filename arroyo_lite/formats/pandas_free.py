"""Arrow values built without waking pyarrow's pandas shim.

pyarrow converts Python values (``pa.array([...])``, ``pa.scalar(1)``, a Python number
passed to a compute function, ``schema.empty_table()``, ...) through a path that first
imports pandas when it is installed: about 0.5 s of an ``arroyo-lite run`` before its first
row. The builders here give the same Arrow values from buffers and empty batch lists, which
never ask for pandas. Use them on the paths between ``run`` starting and its first row.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import pyarrow as pa


def empty_table(schema: pa.Schema) -> pa.Table:
    """An empty table of ``schema`` (what ``schema.empty_table()`` gives, metadata included)."""
    return pa.Table.from_batches([], schema=schema)


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
