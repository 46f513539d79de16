"""Build ``TableConfig`` objects for decoder tests (real configs, built directly).

The decoder only reads a table's columns, format, framing, bad_data and event time, so tests
that exercise one decoding rule build exactly that, without going through SQL.
"""

from __future__ import annotations

import pyarrow as pa

from arroyo_lite.config import (
    BadData,
    ColumnSpec,
    Format,
    FormatSpec,
    FramingSpec,
    TableConfig,
    TableKind,
)


def col(
    name: str,
    data_type: pa.DataType,
    *,
    nullable: bool = True,
    is_json: bool = False,
    generated: str | None = None,
    sql_type: str | None = None,
) -> ColumnSpec:
    return ColumnSpec(
        name=name,
        data_type=data_type,
        sql_type=sql_type or ("JSON" if is_json else str(data_type).upper()),
        nullable=nullable,
        is_json=is_json,
        generated=generated,
    )


def table(
    *columns: ColumnSpec,
    fmt: Format = Format.JSON,
    unstructured: bool = False,
    newline: bool = False,
    max_line_length: int | None = None,
    bad_data: BadData = BadData.FAIL,
    event_time_column: str | None = None,
) -> TableConfig:
    return TableConfig(
        name="t",
        kind=TableKind.SOURCE,
        columns=tuple(columns),
        connector="polling_http",
        format=FormatSpec(format=fmt, unstructured=unstructured),
        framing=FramingSpec(max_line_length=max_line_length) if newline else None,
        bad_data=bad_data,
        event_time_column=event_time_column,
    )


def raw_string(**kwargs: object) -> TableConfig:
    return table(col("value", pa.string(), sql_type="TEXT"), fmt=Format.RAW_STRING, **kwargs)  # type: ignore[arg-type]


def raw_bytes(**kwargs: object) -> TableConfig:
    return table(col("value", pa.binary(), sql_type="BYTEA"), fmt=Format.RAW_BYTES, **kwargs)  # type: ignore[arg-type]
