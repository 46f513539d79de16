"""The SQL front end: Arroyo DDL text -> validated :class:`~arroyo_lite.sql.statements.Program`.

Modules: ``dialect`` (the sqlglot dialect), ``source`` (positions, splitting), ``parse``
(statement parsing, WITH options), ``options`` (typed option pullers), ``types`` (SQL -> Arrow),
``columns``, ``format_options``, ``expr_types`` (watermark expression types) and ``tables``
(CREATE TABLE -> TableConfig),
``generic_options`` and ``schema_check`` (JSON Schemas), ``compiler`` (the entry points below).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from arroyo_lite.sql.compiler import compile_file, compile_sql

__all__ = ["compile_file", "compile_sql"]


def __getattr__(name: str) -> Any:
    # The compiler pulls in sqlglot and jsonschema: import it on first use, so that modules
    # needing only the statement values (``sql.statements``, for Session) stay light.
    if name in __all__:
        from arroyo_lite.sql import compiler

        return getattr(compiler, name)
    raise AttributeError(f"module 'arroyo_lite.sql' has no attribute {name!r}")
