"""The SQL front end: Arroyo DDL text -> validated :class:`~arroyo_lite.sql.statements.Program`.

Modules: ``dialect`` (the sqlglot dialect), ``source`` (positions, splitting), ``parse``
(statement parsing, WITH options), ``options`` (typed option pullers), ``types`` (SQL -> Arrow),
``columns``, ``format_options``, ``expr_types`` (watermark expression types) and ``tables``
(CREATE TABLE -> TableConfig),
``generic_options`` and ``schema_check`` (JSON Schemas), ``compiler`` (the entry points below).
"""

from __future__ import annotations

from arroyo_lite.sql.compiler import compile_file, compile_sql

__all__ = ["compile_file", "compile_sql"]
