"""Updating tables: a live table whose source sends *changes*, not only new rows.

The one mechanism for every updating table (Arroyo's: a ``format = 'debezium_json'``
source, and ``polling_http``'s ``emit_behavior = 'snapshot'``, whose operator makes the
changes; :meth:`~arroyo_lite.connectors.base.Connector.updating` says which). Its source
emits change batches: its table's columns plus :data:`~arroyo_lite.config.RETRACT_COLUMN`
(``_retract``), the convention of :mod:`arroyo_lite.query.changelog` (``true`` retracts one
row equal to it, ``false`` adds one; retractions first). The store keeps the table's
*current* rows (:func:`table_schema`: without ``_retract``), which is what every query reads;
continuous queries over an updating table are updating queries, re-evaluated, and yield
changes (:meth:`arroyo_lite.query.engine.Engine.stream`). With ``--state-dir`` the current
rows are saved and restored as changes adding them (:func:`additions`), unless the source
restores them itself (:meth:`~arroyo_lite.connectors.base.Connector.restores_rows`).

Why the current rows rather than the changes: memory and every scan then grow with the
table, not with its history; snapshot queries need no netting; and the source decides what a
change is (a Debezium envelope, or a snapshot compared with the last one), the table does not.

:func:`apply_changes` computes the rows after a change batch: multiset semantics (a
retraction removes one equal row, of the table or added in the same batch; retracting a row
that is not there does nothing), with
DuckDB (:func:`net` of the current rows and the changes: rows compare on every column but
``_timestamp``, nested ones by value), no Python per row. It costs a pass over the table
per batch with retractions; a batch of only additions is appended without a copy.
"""

from __future__ import annotations

import threading
from typing import Any

import pyarrow as pa

from arroyo_lite.config import RETRACT_COLUMN, TIMESTAMP_COLUMN
from arroyo_lite.formats.pandas_free import empty_table


def table_schema(emitted: pa.Schema, *, updating: bool) -> pa.Schema:
    """The schema a table of a source emitting ``emitted`` batches holds: the same, without
    ``_retract`` for an updating table."""
    if updating and RETRACT_COLUMN in emitted.names:
        return emitted.remove(emitted.get_field_index(RETRACT_COLUMN))
    return emitted


def additions(rows: pa.RecordBatch) -> pa.RecordBatch:
    """A change batch adding every row of ``rows`` (a table's saved current rows)."""
    import numpy as np

    flags = pa.array(np.zeros(rows.num_rows, np.bool_), pa.bool_())
    return rows.append_column(pa.field(RETRACT_COLUMN, pa.bool_(), nullable=False), flags)


def split_changes(changes: pa.Table | pa.RecordBatch) -> tuple[pa.Table, pa.Table]:
    """``(retracted rows, added rows)`` of a change batch (without the ``_retract`` column)."""
    import pyarrow.compute as pc

    table = changes if isinstance(changes, pa.Table) else pa.Table.from_batches([changes])
    flags = table.column(RETRACT_COLUMN)
    rows = table.drop_columns([RETRACT_COLUMN])
    if flags.null_count:  # a null flag adds (Kleene: null AND false is false)
        flags = pc.and_kleene(flags, pc.is_valid(flags))
    return rows.filter(flags), rows.filter(pc.invert(flags))


def net_schema(schema: pa.Schema) -> pa.Schema:
    """The schema of what a changelog of ``schema`` leaves (without the flag)."""
    index = schema.get_field_index(RETRACT_COLUMN)
    return schema if index < 0 else schema.remove(index)


#: A private DuckDB connection per thread for :func:`net`.
_NET_DB = threading.local()


def net(data: pa.Table) -> pa.Table:
    """The rows the changelog ``data`` leaves: each added row, less one equal row for each
    retraction (compared on every column but ``_timestamp``; a row left keeps the latest
    ``_timestamp`` of its additions). Multiset semantics, in DuckDB (a private connection
    per thread), no Python per row. ``data`` without the flag is returned as it is."""
    if RETRACT_COLUMN not in data.column_names:
        return data
    schema = net_schema(data.schema)
    if data.num_rows == 0:
        return empty_table(schema)
    values = ", ".join(f'"{_quote(n)}"' for n in schema.names if n != TIMESTAMP_COLUMN)
    flag = f'"{RETRACT_COLUMN}"'
    weight = f"sum(CASE WHEN {flag} THEN -1 ELSE 1 END) OVER (PARTITION BY {values})"
    order = f'"{TIMESTAMP_COLUMN}" DESC' if TIMESTAMP_COLUMN in schema.names else "1"
    rank = f"row_number() OVER (PARTITION BY {values} ORDER BY {order})"
    columns = ", ".join(f'"{_quote(n)}"' for n in schema.names)
    sql = (
        f"SELECT {columns} FROM (SELECT *, {rank} AS __n FROM ("
        f"SELECT *, {weight} AS __w FROM __changes) WHERE NOT {flag}) WHERE __n <= __w"
    )
    import duckdb

    con: duckdb.DuckDBPyConnection | None = getattr(_NET_DB, "con", None)
    if con is None:
        con = _NET_DB.con = duckdb.connect(":memory:")
        con.execute("SET python_enable_replacements = false")
    con.register("__changes", data)
    try:
        left = con.sql(sql).to_arrow_table()
    finally:
        con.unregister("__changes")
    out: pa.Table = left.cast(schema)
    return out


def _quote(name: str) -> str:
    return name.replace('"', '""')


def apply_changes(current: pa.Table, changes: pa.Table | pa.RecordBatch) -> pa.Table:
    """The rows of ``current`` after ``changes`` (see the module docstring); the schema of
    ``current`` is kept. A retraction removes one row equal to it on every column but
    ``_timestamp`` (a Debezium ``before`` is the row as its source knew it, not when this
    table received it), as :func:`net` compares."""
    import pyarrow.compute as pc

    table = changes if isinstance(changes, pa.Table) else pa.Table.from_batches([changes])
    flags = table.column(RETRACT_COLUMN)
    if flags.null_count:  # a null flag adds
        filled: Any = pc.if_else(pc.is_valid(flags), flags, False)
        index = table.schema.get_field_index(RETRACT_COLUMN)
        table = table.set_column(index, RETRACT_COLUMN, filled)
    schema = current.schema
    if not pc.any(table.column(RETRACT_COLUMN)).as_py():
        _, added = split_changes(table)
        added = _conform(added.select(schema.names), schema)
        return pa.concat_tables([current, added]) if added.num_rows else current
    flagged = schema.append(pa.field(RETRACT_COLUMN, pa.bool_(), nullable=False))
    before = pa.Table.from_batches([additions(b) for b in current.to_batches()], flagged)
    ordered = table.select([*schema.names, RETRACT_COLUMN])
    ordered = pa.Table.from_arrays(
        [c.cast(f.type) for c, f in zip(ordered.columns, before.schema, strict=True)],
        schema=before.schema,
    )
    return _conform(net(pa.concat_tables([before, ordered])), schema)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema`` (DuckDB's results lose field metadata and
    nullability)."""
    if table.schema.equals(schema, check_metadata=True):
        return table
    columns = [col.cast(f.type) for col, f in zip(table.columns, schema, strict=True)]
    return pa.Table.from_arrays(columns, schema=schema)
