"""Encoders (formats/encode.py): batches -> the bytes a sink writes, as Arroyo's serializer."""

from __future__ import annotations

import decimal

import orjson
import pyarrow as pa
import pytest

from arroyo_lite.config import (
    JSON_EXTENSION,
    TIMESTAMP_TYPE,
    Format,
    FormatSpec,
    TableConfig,
    TableKind,
)
from arroyo_lite.errors import ConnectorError
from arroyo_lite.formats.encode import ENCODERS, make_encoder


def sink(fmt: Format | None = Format.JSON, **spec: str) -> TableConfig:
    return TableConfig(
        name="out",
        kind=TableKind.SINK,
        columns=(),
        connector="stdout",
        format=None if fmt is None else FormatSpec(format=fmt, **spec),  # type: ignore[arg-type]
    )


def batch() -> pa.RecordBatch:
    schema = pa.schema(
        [
            pa.field("id", pa.int64()),
            pa.field("name", pa.string()),
            pa.field("price", pa.decimal128(6, 2)),
            pa.field("doc", pa.string(), metadata=JSON_EXTENSION),
            pa.field("at", pa.timestamp("us")),
            pa.field("_timestamp", TIMESTAMP_TYPE),
        ]
    )
    return pa.record_batch(
        [
            pa.array([1, 2]),
            pa.array(["a", None]),
            pa.array([decimal.Decimal("1.50"), decimal.Decimal("20.00")], pa.decimal128(6, 2)),
            pa.array(['{"k": [1, 2]}', None]),
            pa.array([1_700_000_000_123_456, 0], pa.timestamp("us")),
            pa.array([5, 6], pa.int64()).view(TIMESTAMP_TYPE),
        ],
        schema=schema,
    )


def test_json_lines_one_object_per_row_without_timestamp() -> None:
    out = make_encoder(sink()).encode(batch())
    assert out.endswith(b"\n") and out.count(b"\n") == 2
    rows = [orjson.loads(line) for line in out.splitlines()]
    assert rows == [
        {
            "id": 1,
            "name": "a",
            "price": 1.5,
            "doc": {"k": [1, 2]},
            "at": "2023-11-14T22:13:20.123456",
        },
        {"id": 2, "name": None, "price": 20.0, "doc": None, "at": "1970-01-01T00:00:00"},
    ]


def test_json_unix_millis() -> None:
    out = make_encoder(sink(timestamp_format="unix_millis")).encode(batch())
    assert [orjson.loads(line)["at"] for line in out.splitlines()] == [1_700_000_000_123, 0]


def test_no_format_means_json_and_no_rows_means_no_bytes() -> None:
    encoder = make_encoder(sink(None))
    assert encoder.encode(batch().slice(0, 0)) == b""
    assert orjson.loads(encoder.encode(batch()).splitlines()[0])["id"] == 1


def test_raw_string_writes_the_value_column() -> None:
    values = pa.record_batch([pa.array(["x", None, "z"])], names=["value"])
    assert make_encoder(sink(Format.RAW_STRING)).encode(values) == b"x\n\nz\n"
    with pytest.raises(ConnectorError, match="needs a TEXT column 'value'"):
        make_encoder(sink(Format.RAW_STRING)).encode(batch())


def test_a_format_without_encoder_is_refused_by_name() -> None:
    assert Format.PARQUET not in ENCODERS
    with pytest.raises(ConnectorError, match="format 'parquet' cannot be written"):
        make_encoder(sink(Format.PARQUET))
