"""Updating tables: a live table whose source sends *changes*, not only new rows.

A source whose table is updating (``emit_behavior = 'snapshot'`` of ``polling_http``; any
source that feeds a changelog) emits change batches: its table's columns plus
:data:`~arroyo_lite.config.RETRACT_COLUMN` (``_retract``), the convention of
:mod:`arroyo_lite.query.changelog` (``true`` retracts one row equal to it, ``false`` adds
one; retractions first). The store keeps the table's *current* rows, which is what snapshot
queries read; continuous queries over an updating table are re-evaluated and yield changes
(:meth:`arroyo_lite.query.engine.Engine.stream`).

:func:`apply_changes` computes the rows after a change batch: multiset semantics (a
retraction removes one equal row; retracting a row that is not there does nothing), with
DuckDB's ``EXCEPT ALL`` over whole rows, so nested columns compare by value and no Python
runs per row. It costs a pass over the table per batch with retractions; a batch of only
additions is appended without a copy.
"""

from __future__ import annotations

import pyarrow as pa

from arroyo_lite.config import RETRACT_COLUMN


def split_changes(changes: pa.Table | pa.RecordBatch) -> tuple[pa.Table, pa.Table]:
    """``(retracted rows, added rows)`` of a change batch (without the ``_retract`` column)."""
    import pyarrow.compute as pc

    table = changes if isinstance(changes, pa.Table) else pa.Table.from_batches([changes])
    flags = table.column(RETRACT_COLUMN)
    rows = table.drop_columns([RETRACT_COLUMN])
    if flags.null_count:  # a null flag adds (Kleene: null AND false is false)
        flags = pc.and_kleene(flags, pc.is_valid(flags))
    return rows.filter(flags), rows.filter(pc.invert(flags))


def apply_changes(current: pa.Table, changes: pa.Table | pa.RecordBatch) -> pa.Table:
    """The rows of ``current`` after ``changes`` (see the module docstring); the schema of
    ``current`` is kept."""
    retracted, added = split_changes(changes)
    schema = current.schema
    added = _conform(added, schema)
    if retracted.num_rows == 0 or current.num_rows == 0:
        return pa.concat_tables([current, added]) if added.num_rows else current
    from arroyo_lite.formats import duck

    cursor = duck.cursor()
    try:
        cursor.register("__updating_current", current)
        cursor.register("__updating_retracted", _conform(retracted, schema))
        kept = cursor.sql(
            "SELECT * FROM __updating_current EXCEPT ALL SELECT * FROM __updating_retracted"
        ).to_arrow_table()
    finally:
        cursor.close()
    kept = _conform(kept, schema)
    return pa.concat_tables([kept, added]) if added.num_rows else kept


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema`` (DuckDB's results lose field metadata and
    nullability)."""
    if table.schema.equals(schema, check_metadata=True):
        return table
    columns = [col.cast(f.type) for col, f in zip(table.columns, schema, strict=True)]
    return pa.Table.from_arrays(columns, schema=schema)
