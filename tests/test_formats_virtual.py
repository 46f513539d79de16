"""Virtual columns and event time, with tables compiled from real Arroyo DDL."""

from __future__ import annotations

import pyarrow as pa
import pytest

from arroyo_lite.config import TIMESTAMP_COLUMN, TableConfig
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.formats import make_decoder
from arroyo_lite.sql import compile_sql

NOW = 1_700_000_000_000_000_000


def compile_table(columns: str, **options: str) -> TableConfig:
    opts = {"connector": "polling_http", "endpoint": "http://127.0.0.1:1/", "format": "json"}
    opts.update(options)
    with_clause = ", ".join(f"{k} = '{v}'" for k, v in opts.items())
    return compile_sql(f"CREATE TABLE t ({columns}) WITH ({with_clause});").tables[0]


def stamps(batch: pa.RecordBatch) -> list[int]:
    return batch.column(TIMESTAMP_COLUMN).cast(pa.int64()).to_pylist()


def test_virtual_columns_are_computed_in_declared_order() -> None:
    config = compile_table(
        "id BIGINT, doubled BIGINT GENERATED ALWAYS AS (id * 2) STORED, name TEXT, "
        "shout TEXT GENERATED ALWAYS AS (upper(name) || '!')",
        framing="newline",
    )
    result = make_decoder(config).decode(b'{"id": 1, "name": "a"}\n{"id": 2}\n', NOW)
    assert result.batch is not None
    assert result.batch.schema == config.output_schema()
    assert result.batch.schema.names == ["id", "doubled", "name", "shout", TIMESTAMP_COLUMN]
    assert result.batch.column("doubled").to_pylist() == [2, 4]
    assert result.batch.column("shout").to_pylist() == ["A!", None]
    assert stamps(result.batch) == [NOW, NOW]


def test_virtual_column_over_a_json_column_with_arroyo_functions() -> None:
    config = compile_table(
        "payload JSON, kind TEXT GENERATED ALWAYS AS (json_get_str(payload, 'kind')), "
        "n BIGINT GENERATED ALWAYS AS (json_get_int(payload, 'n'))",
        framing="newline",
    )
    body = b'{"payload": {"kind": "x", "n": 3}}\n{"payload": {"kind": 5}}\n'
    result = make_decoder(config).decode(body, NOW)
    assert result.batch is not None
    assert result.batch.column("kind").to_pylist() == ["x", None]
    assert result.batch.column("n").to_pylist() == [3, None]


def test_virtual_column_over_raw_string() -> None:
    config = compile_table(
        "value TEXT, len INT GENERATED ALWAYS AS (length(value))",
        format="raw_string",
        framing="newline",
    )
    result = make_decoder(config).decode(b"ab\n\ncde", NOW)
    assert result.batch is not None
    assert result.batch.column("len").to_pylist() == [2, 0, 3]
    assert result.batch.schema.field("len").type == pa.int32()


def test_virtual_column_failure_fails_or_drops_only_that_row() -> None:
    columns = "s TEXT, n INT GENERATED ALWAYS AS (CAST(s AS INT))"
    body = b'{"s": "1"}\n{"s": "x"}\n{"s": "3"}\n'
    with pytest.raises(FatalSourceError, match="virtual column"):
        make_decoder(compile_table(columns, framing="newline")).decode(body, NOW)
    dropping = compile_table(columns, framing="newline", bad_data="drop")
    result = make_decoder(dropping).decode(body, NOW)
    assert result.batch is not None
    assert result.batch.column("n").to_pylist() == [1, 3]
    assert result.dropped == 1
    assert result.errors[0] == "Some records could not be processed"


def test_watermark_column_becomes_the_timestamp() -> None:
    config = compile_table("id BIGINT, at TIMESTAMP, WATERMARK FOR at", framing="newline")
    assert config.event_time_column == "at"
    body = b'{"id": 1, "at": "2024-01-02T03:04:05Z"}\n{"id": 2, "at": 1000}\n'
    result = make_decoder(config).decode(body, NOW)
    assert result.batch is not None
    assert stamps(result.batch) == [1704164645 * 10**9, 1000]


def test_event_time_in_millisecond_column_is_converted_to_ns() -> None:
    config = compile_table("at TIMESTAMP(3), WATERMARK FOR at")
    result = make_decoder(config).decode(b'[{"at": 1500}]', NOW)
    assert result.batch is not None
    assert stamps(result.batch) == [1_500_000_000]
    assert result.batch.column("at").type == pa.timestamp("ms")


def test_virtual_event_time_column() -> None:
    config = compile_table(
        "ms BIGINT, at TIMESTAMP GENERATED ALWAYS AS (to_timestamp(ms / 1000.0)), "
        "WATERMARK FOR at"
    )
    result = make_decoder(config).decode(b'[{"ms": 2000}, {"ms": 3500}]', NOW)
    assert result.batch is not None
    assert stamps(result.batch) == [2 * 10**9, 3_500_000_000]


def test_virtual_column_divides_integers_as_datafusion_does() -> None:
    """``/`` of two integers in a virtual column is DataFusion's integer division (truncated
    toward zero), evaluated on the decoders' database, as ``/`` in a query is."""
    config = compile_table("ms BIGINT, secs BIGINT GENERATED ALWAYS AS (ms / 1000)")
    result = make_decoder(config).decode(b'[{"ms": 2000}, {"ms": 3500}, {"ms": -3500}]', NOW)
    assert result.batch is not None
    assert result.batch.column("secs").to_pylist() == [2, 3, -3]


def test_null_event_time_is_bad_data() -> None:
    columns = "id BIGINT, at TIMESTAMP, WATERMARK FOR at"
    body = b'[{"id": 1, "at": "2024-01-01"}, {"id": 2}]'
    with pytest.raises(FatalSourceError, match="field 'at': event time is null"):
        make_decoder(compile_table(columns)).decode(body, NOW)
    result = make_decoder(compile_table(columns, bad_data="drop")).decode(body, NOW)
    assert result.batch is not None
    assert result.batch.column("id").to_pylist() == [1]
    assert result.dropped == 1


def test_event_time_that_does_not_fit_in_nanoseconds_is_bad_data() -> None:
    columns = "id BIGINT, at TIMESTAMP(3), WATERMARK FOR at"
    body = b'[{"id": 1, "at": 1000}, {"id": 2, "at": 99999999999999999}]'
    with pytest.raises(FatalSourceError, match="field 'at': event time is null or out of range"):
        make_decoder(compile_table(columns)).decode(body, NOW)
    result = make_decoder(compile_table(columns, bad_data="drop")).decode(body, NOW)
    assert result.batch is not None
    assert stamps(result.batch) == [1_000_000_000]
    assert result.dropped == 1


def test_bad_virtual_rows_in_a_big_batch_are_found_and_dropped() -> None:
    columns = "s TEXT, n INT GENERATED ALWAYS AS (CAST(s AS INT))"
    lines = [b'{"s": "%d"}' % i for i in range(5000)]
    for bad in (7, 2500, 4999):
        lines[bad] = b'{"s": "x"}'
    config = compile_table(columns, framing="newline", bad_data="drop")
    result = make_decoder(config).decode(b"\n".join(lines), NOW)
    assert result.batch is not None
    assert result.dropped == 3 and result.rows == 4997
    values = result.batch.column("n").to_pylist()
    assert 7 not in values and 2500 not in values and values[-1] == 4998
