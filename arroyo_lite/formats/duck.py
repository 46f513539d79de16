"""The decoders' DuckDB: one in-memory database per process, one cursor per evaluation.

Connecting costs tens of milliseconds, far more than the small queries decoders run (virtual
columns, JSON column text), so every decoder shares one lazily created in-memory database.
Each evaluation takes its own :func:`cursor` (a separate connection to that database) and
registers its Arrow data there: registrations are per connection, so concurrent decodes on
several threads never see each other's data. Replacement scans of Python locals are off.
The database has DataFusion's ``/`` (:data:`~arroyo_lite.sql.division.DIV`), which a
virtual column's translated expression calls.
"""

from __future__ import annotations

import threading
from typing import Any

import duckdb

from arroyo_lite.sql.division import DIV_MACRO

_lock = threading.Lock()
_database: Any = None


def cursor() -> Any:
    """A new DuckDB connection to the shared in-memory database; close it when done."""
    global _database
    with _lock:
        if _database is None:
            database = duckdb.connect(config={"python_enable_replacements": False})
            database.execute(DIV_MACRO)
            _database = database
        return _database.cursor()
