"""Changelogs: how an updating query's result changes, as batches of changes.

Arroyo's updating operators (non-windowed aggregates, DISTINCT, joins of sources) emit
*changes*: a row is added, or a row emitted before is retracted (an update is both). Here a
change batch is a result batch with one more column, :data:`~arroyo_lite.config.RETRACT_COLUMN`
(``_retract``, BOOLEAN): ``true`` retracts a row equal to it, ``false`` adds it. Changes apply
in order, within a batch and across batches; :func:`changes` puts a batch's retractions
first. Anything that feeds changes (a plan, a ``debezium_json`` source: formats/debezium.py)
builds batches so.

A batch may name the columns that identify a row (its *key*: :func:`with_key` /
:func:`key_of`, schema metadata :data:`KEY_METADATA`); a ``debezium_json`` sink then writes a
retraction and an addition of one key in one batch as one ``u`` record with ``before`` and
``after``, as Arroyo's ``ToDebeziumExec`` does (formats/encode.py).

:func:`diff` turns two consecutive complete results into the changes between them (DuckDB's
``EXCEPT ALL`` on both sides: multiset semantics, no Python per row). :func:`net` is the
other way round: the rows a whole changelog leaves (what a query over an updating table,
such as a ``debezium_json`` source, reads).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import duckdb
import pyarrow as pa

from arroyo_lite.config import CHANGELOG_KEY, RETRACT_COLUMN, changelog_key
from arroyo_lite.runtime.updating import net

__all__ = [
    "KEY_METADATA",
    "RETRACT_COLUMN",
    "Differ",
    "changes",
    "diff",
    "is_changelog",
    "key_of",
    "net",
    "with_key",
]

#: Schema-metadata key of a change batch naming its key columns (declared in config).
KEY_METADATA = CHANGELOG_KEY
#: The key columns a change batch names.
key_of = changelog_key


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
    return changes(_as_result(gone, after.schema), _as_result(new, after.schema))


def _as_result(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    """``rows`` (read back from DuckDB) with the result's columns: named by position, as
    DuckDB renames a repeated name (``SELECT A.counter, B.counter`` is read back as
    ``counter, counter_1``), then cast to the result's types."""
    return rows.rename_columns(schema.names).cast(schema)


class Differ:
    """Turns the successive complete results of a re-evaluated query into changes."""

    def __init__(self) -> None:
        self.previous: pa.Table | None = None

    def step(self, con: duckdb.DuckDBPyConnection, result: pa.Table) -> pa.Table:
        """The changes from the previous result to ``result`` (which becomes the previous)."""
        out = diff(con, self.previous, result)
        self.previous = result
        return out


def with_key(data: pa.Table, key: Sequence[str]) -> pa.Table:
    """``data`` (a change batch) labelled with the columns that identify its rows."""
    metadata = {**(data.schema.metadata or {}), CHANGELOG_KEY: json.dumps(list(key)).encode()}
    return data.replace_schema_metadata(metadata)


def _quote(name: str) -> str:
    return name.replace('"', '""')
