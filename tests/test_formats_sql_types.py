"""Every connection-table SQL type, compiled from DDL by the front end, decoded from JSON."""

from __future__ import annotations

import decimal
from typing import Any

import pyarrow as pa
import pytest

from arroyo_lite.errors import FatalSourceError
from arroyo_lite.formats import make_decoder
from arroyo_lite.sql import compile_sql

NOW = 1_700_000_000_000_000_000
BAD = object()


def decode_one(sql_type: str, value: bytes, *, drop: bool = False) -> Any:
    bad_data = ", bad_data = 'drop'" if drop else ""
    config = compile_sql(
        f"CREATE TABLE t (x {sql_type}) WITH (connector = 'polling_http', "
        f"endpoint = 'http://127.0.0.1:1/', format = 'json'{bad_data});"
    ).tables[0]
    # Twice the row and padding: large enough for the native path as well.
    body = b'[{"x": ' + value + b'}, {"x": ' + value + b"}]" + b" " * 1200
    result = make_decoder(config).decode(body, NOW)
    assert result.batch is not None and result.batch.schema == config.output_schema()
    column = result.batch.column("x")
    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.int64())
    values = column.to_pylist()
    assert values[0] == values[1]
    return values[0]


@pytest.mark.parametrize(
    ("sql_type", "value", "expected"),
    [
        ("BOOLEAN", b"true", True),
        ("INT", b'"-12"', -12),
        ("BIGINT", b"12.9", 12),
        ("INT UNSIGNED", b"4000000000", 4_000_000_000),
        ("BIGINT UNSIGNED", b'"18446744073709551615"', 2**64 - 1),
        ("FLOAT", b"0.25", 0.25),
        ("DOUBLE", b'"1e3"', 1000.0),
        ("DECIMAL(10, 2)", b'"12.345"', decimal.Decimal("12.34")),
        ("TEXT", b'"t"', "t"),
        ("VARCHAR", b'"v"', "v"),
        ("JSON", b'{"a": [true, null]}', '{"a":[true,null]}'),
        ("BYTEA", b'"AAEC"', b"\x00\x01\x02"),
        ("TIMESTAMP", b'"2024-01-02T03:04:05.000000006Z"', 1704164645000000006),
        ("TIMESTAMP(0)", b"1704164645", 1704164645),
        ("TIMESTAMP(3)", b'"2024-01-02T03:04:05.123Z"', 1704164645123),
        ("TIMESTAMP(6)", b'"2024-01-02 03:04:05.000007"', 1704164645000007),
        ("BIGINT[]", b'[1, "2"]', [1, 2]),
        ("TEXT[]", b'["a", null]', ["a", None]),
        ("STRUCT<a INT, b TEXT[]>", b'{"a": 1, "b": ["x"]}', {"a": 1, "b": ["x"]}),
        ("TEXT", b"5", BAD),
        ("BOOLEAN", b'"yes"', BAD),
        ("INT", b"3000000000", BAD),
    ],
)
def test_sql_type_decodes(sql_type: str, value: bytes, expected: Any) -> None:
    if expected is BAD:
        with pytest.raises(FatalSourceError, match="JSON does not match schema: field 'x'"):
            decode_one(sql_type, value)
        return
    assert decode_one(sql_type, value) == expected
