"""``array_from_values`` gives what ``pa.array`` gives, for every type the exact JSON path
builds (properties over generated values, nulls at any place, nested lists and structs)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arroyo_lite.formats.pandas_free import array_from_values, empty_batch, repeat_int64

INTS = {
    pa.int8(): (-(2**7), 2**7 - 1), pa.int16(): (-(2**15), 2**15 - 1),
    pa.int32(): (-(2**31), 2**31 - 1), pa.int64(): (-(2**63), 2**63 - 1),
    pa.uint8(): (0, 2**8 - 1), pa.uint32(): (0, 2**32 - 1), pa.uint64(): (0, 2**64 - 1),
}  # fmt: skip


def values_of(t: pa.DataType) -> st.SearchStrategy[Any]:
    """What the JSON converters produce for a column of ``t`` (never NaN: it is not JSON)."""
    if t in INTS:
        return st.integers(*INTS[t])
    if pa.types.is_timestamp(t):
        return st.integers(-(2**63), 2**63 - 1)
    if pa.types.is_floating(t):
        return st.floats(allow_nan=False, width=32 if t == pa.float32() else 64)
    if pa.types.is_boolean(t):
        return st.booleans()
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return st.text()
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return st.binary()
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return st.lists(st.none() | values_of(t.value_type), max_size=4)
    assert pa.types.is_struct(t)
    return st.fixed_dictionaries({f.name: st.none() | values_of(f.type) for f in t})


TYPES = [
    *INTS, pa.timestamp("ns"), pa.timestamp("ms"), pa.float32(), pa.float64(), pa.bool_(),
    pa.string(), pa.large_string(), pa.binary(), pa.large_binary(), pa.list_(pa.string()),
    pa.large_list(pa.int64()), pa.struct([("a", pa.int32()), ("b", pa.list_(pa.bool_()))]),
    pa.list_(pa.struct([("s", pa.string())])),
]  # fmt: skip


@pytest.mark.parametrize("t", TYPES, ids=str)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_same_array_as_pa_array(t: pa.DataType, data: st.DataObject) -> None:
    values = data.draw(st.lists(st.none() | values_of(t), max_size=80))
    got = array_from_values(values, t)
    got.validate(full=True)
    want = pa.array(values, type=t)
    assert got.type == want.type
    assert got.null_count == want.null_count
    assert got.equals(want)


def test_other_types_go_through_pa_array() -> None:
    import decimal

    values = [decimal.Decimal("1.50"), None]
    assert array_from_values(values, pa.decimal128(5, 2)).equals(
        pa.array(values, pa.decimal128(5, 2))
    )


def test_empty_batch_and_repeat() -> None:
    schema = pa.schema([("a", pa.int64()), ("b", pa.list_(pa.string()))], metadata={"k": "v"})
    assert empty_batch(schema).equals(pa.RecordBatch.from_pylist([], schema=schema))
    assert empty_batch(schema).schema.metadata == {b"k": b"v"}
    stamp = pa.timestamp("ns")
    assert repeat_int64(-3, 4, stamp).equals(pa.repeat(pa.scalar(-3, stamp), 4))
    assert repeat_int64(7, 0, pa.int64()).to_pylist() == []
