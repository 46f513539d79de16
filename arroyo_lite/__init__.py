"""arroyo-lite: turn HTTP APIs into live SQL tables.

Arroyo-compatible ``CREATE TABLE ... WITH (connector = 'polling_http', ...)`` DDL, parsed with
sqlglot, validated with jsonschema, polled with aiohttp into pyarrow batches, and queried live
with DuckDB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arroyo_lite.errors import (
    ArroyoLiteError,
    ClusterError,
    ConnectorError,
    FatalSourceError,
    QueryError,
    SourceError,
    SourcePosition,
    SqlError,
    TransientSourceError,
    ValidationErrors,
)

if TYPE_CHECKING:
    from arroyo_lite.config import ColumnSpec, TableConfig
    from arroyo_lite.session import AsyncSession, Session

from arroyo_lite._version import __version__

__all__ = [
    "ArroyoLiteError",
    "AsyncSession",
    "ClusterError",
    "ColumnSpec",
    "ConnectorError",
    "FatalSourceError",
    "QueryError",
    "Session",
    "SourceError",
    "SourcePosition",
    "SqlError",
    "TableConfig",
    "TransientSourceError",
    "ValidationErrors",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # Session pulls in DuckDB and the runtime, the config values pyarrow: import them on first
    # use, so that `arroyo-lite --help` (which imports this package) and validating SQL stay
    # light.
    if name in ("Session", "AsyncSession"):
        from arroyo_lite import session

        return getattr(session, name)
    if name in ("ColumnSpec", "TableConfig"):
        from arroyo_lite import config

        return getattr(config, name)
    raise AttributeError(f"module 'arroyo_lite' has no attribute {name!r}")
