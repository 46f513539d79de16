"""arroyo-lite: turn HTTP APIs into live SQL tables.

Arroyo-compatible ``CREATE TABLE ... WITH (connector = 'polling_http', ...)`` DDL, parsed with
sqlglot, validated with jsonschema, polled with aiohttp into pyarrow batches, and queried live
with DuckDB.
"""

from __future__ import annotations

from arroyo_lite.config import ColumnSpec, TableConfig
from arroyo_lite.errors import (
    ArroyoLiteError,
    ConnectorError,
    FatalSourceError,
    QueryError,
    SourceError,
    SourcePosition,
    SqlError,
    TransientSourceError,
    ValidationErrors,
)

__version__ = "0.1.0"

__all__ = [
    "ArroyoLiteError",
    "ColumnSpec",
    "ConnectorError",
    "FatalSourceError",
    "QueryError",
    "SourceError",
    "SourcePosition",
    "SqlError",
    "TableConfig",
    "TransientSourceError",
    "ValidationErrors",
    "__version__",
]
