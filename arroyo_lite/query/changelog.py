"""Changelogs: how an updating query's result changes, as batches of changes.

Arroyo's updating operators (non-windowed aggregates, DISTINCT, joins of sources) emit
*changes*: a row is added, or a row emitted before is retracted (an update is both). Here a
change batch is a result batch with one more column, :data:`~arroyo_lite.config.RETRACT_COLUMN`
(``_retract``, BOOLEAN): ``true`` retracts a row equal to it, ``false`` adds it; within a batch
retractions come first. A ``debezium_json`` sink writes them as Debezium's ``d`` / ``c``
(an update as a ``d`` of the old row, then a ``c`` of the new one), and anything that feeds
changes (a plan, a record path with primary keys) builds them with :func:`changes`.

:func:`diff` turns two consecutive complete results into the changes between them (DuckDB's
``EXCEPT ALL`` on both sides: multiset semantics, no Python per row).
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from arroyo_lite.config import RETRACT_COLUMN

__all__ = ["RETRACT_COLUMN", "Differ", "changes", "diff", "is_changelog"]


def is_changelog(schema: pa.Schema) -> bool:
    """Whether batches of ``schema`` are changes rather than new rows."""
    return RETRACT_COLUMN in schema.names


def changes(retracted: pa.Table, added: pa.Table) -> pa.Table:
    """One change batch: every row of ``retracted`` retracted, then every row of ``added``
    added (both with the same columns)."""
    added = added.cast(retracted.schema) if added.schema != retracted.schema else added
    flags = pa.chunked_array(
        [
            pa.repeat(pa.scalar(True), retracted.num_rows),
            pa.repeat(pa.scalar(False), added.num_rows),
        ],
        type=pa.bool_(),
    )
    both = pa.concat_tables([retracted, added])
    return both.append_column(pa.field(RETRACT_COLUMN, pa.bool_(), nullable=False), flags)


def diff(con: duckdb.DuckDBPyConnection, before: pa.Table | None, after: pa.Table) -> pa.Table:
    """The changes from result ``before`` (``None``: nothing yet) to result ``after``.

    Rows are compared whole, as multisets (a row twice in ``after`` and once in ``before`` is
    added once). Runs two DuckDB queries on ``con`` (a cursor of the caller's).
    """
    if before is None or before.num_rows == 0:
        return changes(after.slice(0, 0), after)
    if after.num_rows == 0:
        return changes(before, after.slice(0, 0))
    if before.schema != after.schema:
        before = before.cast(after.schema)
    con.register("__changelog_before", before)
    con.register("__changelog_after", after)
    try:
        gone = con.sql(
            "SELECT * FROM __changelog_before EXCEPT ALL SELECT * FROM __changelog_after"
        ).to_arrow_table()
        new = con.sql(
            "SELECT * FROM __changelog_after EXCEPT ALL SELECT * FROM __changelog_before"
        ).to_arrow_table()
    finally:
        con.unregister("__changelog_before")
        con.unregister("__changelog_after")
    return changes(gone.cast(after.schema), new.cast(after.schema))


class Differ:
    """Turns the successive complete results of a re-evaluated query into changes."""

    def __init__(self) -> None:
        self.previous: pa.Table | None = None

    def step(self, con: duckdb.DuckDBPyConnection, result: pa.Table) -> pa.Table:
        """The changes from the previous result to ``result`` (which becomes the previous)."""
        out = diff(con, self.previous, result)
        self.previous = result
        return out
