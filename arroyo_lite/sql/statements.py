"""The statements a SQL file compiles to: what the front end hands the engine.

``text`` is the statement exactly as the user wrote it (without the trailing ``;``);
``position`` is where it starts. Queries keep the user's Arroyo SQL in ``query``; the engine
translates it to DuckDB (``arroyo_lite.sql.transpile``) when it runs it.
"""

from __future__ import annotations

from dataclasses import dataclass

from arroyo_lite.config import TableConfig
from arroyo_lite.errors import SourcePosition


@dataclass(frozen=True, slots=True)
class Statement:
    text: str
    position: SourcePosition


@dataclass(frozen=True, slots=True)
class CreateTable(Statement):
    """``CREATE [TEMPORARY] TABLE`` with columns and/or WITH options (source, sink or memory)."""

    table: TableConfig


@dataclass(frozen=True, slots=True)
class CreateView(Statement):
    """``CREATE [OR REPLACE] VIEW name AS query`` and ``CREATE TABLE name AS query`` (a
    named query). ``replace``: an existing view of that name is replaced."""

    name: str
    query: str
    replace: bool = False


@dataclass(frozen=True, slots=True)
class Drop(Statement):
    """``DROP TABLE|VIEW [IF EXISTS] name`` (an arroyo-lite extension, for the REPL): a
    table's source stops and its rows go; ``if_exists`` makes a missing name no error."""

    kind: str  # "table" or "view"
    name: str
    if_exists: bool = False


@dataclass(frozen=True, slots=True)
class Copy(Statement):
    """``COPY (query) TO 'file' [(FORMAT csv|parquet|json)]`` (an arroyo-lite extension):
    one snapshot of the query's rows written by DuckDB's COPY. ``target`` is the text after
    ``TO``, as DuckDB reads it."""

    query: str
    target: str


@dataclass(frozen=True, slots=True)
class Insert(Statement):
    """``INSERT INTO target [(columns)] query``.

    ``columns`` is the column list as written (empty when there is none): the query's
    columns fill these target columns, in this order; the others are NULL.
    """

    target: str
    query: str
    columns: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Query(Statement):
    """A bare ``SELECT`` (or ``WITH ... SELECT``): a preview over the live tables."""

    query: str


@dataclass(frozen=True, slots=True)
class SetOption(Statement):
    """``SET name = value`` (Arroyo supports only ``updating_ttl``)."""

    name: str
    value: str


@dataclass(frozen=True, slots=True)
class Program:
    """All statements of one SQL text, in order."""

    file: str
    statements: tuple[Statement, ...]

    @property
    def tables(self) -> tuple[TableConfig, ...]:
        return tuple(s.table for s in self.statements if isinstance(s, CreateTable))
