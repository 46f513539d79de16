"""Compiling the one sink table of a program, as the sink tests build their operators."""

from __future__ import annotations

from arroyo_lite.config import TableConfig, TableKind
from arroyo_lite.sql import compile_sql


def sink_table(sql: str) -> TableConfig:
    """The single sink table ``sql`` declares (the test fails if there is not exactly one)."""
    (table,) = [t for t in compile_sql(sql).tables if t.kind is TableKind.SINK]
    return table
