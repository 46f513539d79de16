"""Query results that convert to Python: nanosecond times become microseconds.

Arroyo's ``_timestamp`` (and every ``TIMESTAMP`` column) is nanosecond-precise. Python's
``datetime`` and ``time`` hold microseconds, so pyarrow's ``to_pylist()`` refuses a value
with nanoseconds unless pandas is installed (then it returns ``pandas.Timestamp``). Results
handed to Python code (:meth:`arroyo_lite.Session.query`, ``stream``) therefore carry
``timestamp[us]`` and ``time64[us]`` instead, at any depth (window structs, lists): the
digits below the microsecond are dropped (truncated toward zero); everything else is
unchanged. ``to_pylist()`` then gives ``datetime`` objects, and ``to_pandas()`` and
``polars.from_arrow()`` give microsecond columns. Inside SQL nothing changes: queries see
nanoseconds (``epoch_ns(_timestamp)`` returns all of them as a BIGINT).
"""

from __future__ import annotations

from typing import Any, TypeVar

import pyarrow as pa

Data = TypeVar("Data", pa.Table, pa.RecordBatch)


def for_python(data: Data) -> Data:
    """``data`` with every nanosecond timestamp/time field cast to microseconds (the same
    object if it has none). Columnar: no per-row Python."""
    schema = target = data.schema
    for index, field in enumerate(schema):
        converted = _field(field)
        if not converted.equals(field):
            target = target.set(index, converted)  # (keeps the schema's metadata)
    if target is schema:
        return data
    return data.cast(target, safe=False)


def _field(field: pa.Field[Any]) -> pa.Field[Any]:
    return field.with_type(_type(field.type))


def _type(data_type: pa.DataType) -> pa.DataType:
    if pa.types.is_timestamp(data_type) and data_type.unit == "ns":
        return pa.timestamp("us", data_type.tz)
    if pa.types.is_time64(data_type) and data_type.unit == "ns":
        return pa.time64("us")
    if pa.types.is_struct(data_type):
        return pa.struct([_field(data_type.field(i)) for i in range(data_type.num_fields)])
    if pa.types.is_large_list(data_type):
        return pa.large_list(_field(data_type.value_field))
    if pa.types.is_list(data_type):
        return pa.list_(_field(data_type.value_field))
    return data_type
