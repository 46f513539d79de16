"""arroyo-lite: turn HTTP APIs into live SQL tables.

Arroyo-compatible ``CREATE TABLE ... WITH (connector = 'polling_http', ...)`` DDL, parsed with
sqlglot, validated with jsonschema, polled with aiohttp into pyarrow batches, and queried live
with DuckDB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arroyo_lite._version import __version__

if TYPE_CHECKING:
    from arroyo_lite.config import ColumnSpec, TableConfig
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
    from arroyo_lite.session import AsyncSession, Session

#: Each public name -> the module that defines it, imported on first use (PEP 562): the
#: command line imports this package, and ``arroyo-lite --help`` needs none of them (the
#: errors alone would bring ``dataclasses``; ``Session`` brings DuckDB and the runtime).
_LAZY: dict[str, str] = {
    **dict.fromkeys(
        (
            "ArroyoLiteError",
            "ClusterError",
            "ConnectorError",
            "FatalSourceError",
            "QueryError",
            "SourceError",
            "SourcePosition",
            "SqlError",
            "TransientSourceError",
            "ValidationErrors",
        ),
        "arroyo_lite.errors",
    ),
    "ColumnSpec": "arroyo_lite.config",
    "TableConfig": "arroyo_lite.config",
    "Session": "arroyo_lite.session",
    "AsyncSession": "arroyo_lite.session",
}

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
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'arroyo_lite' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next lookup is an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
