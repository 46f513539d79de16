"""Column types from sample records: DuckDB's JSON inference, mapped to Arroyo SQL types.

:func:`infer_columns` hands the records (NDJSON) to DuckDB's ``read_json``, which unifies
every record's fields (missing keys, ints and floats, nested objects), recognises timestamp
strings (RFC 3339 / ISO 8601, with or without fraction and offset) and falls back to JSON
where values disagree. Each DuckDB type is then written in the types an Arroyo connection
table accepts (:data:`LEAF_TYPES`): objects become ``STRUCT<...>``, arrays ``T[]``,
timestamps ``TIMESTAMP``; what Arroyo has no type for (maps, dates, times, UUIDs, values
that are always null) becomes ``JSON`` or ``TEXT``, with a note saying why.
"""

from __future__ import annotations

import functools
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: DuckDB leaf type -> the Arroyo SQL type of a connection-table column.
LEAF_TYPES: dict[str, str] = {
    "BOOLEAN": "BOOLEAN",
    "TINYINT": "BIGINT",
    "SMALLINT": "BIGINT",
    "INTEGER": "BIGINT",
    "BIGINT": "BIGINT",
    "UTINYINT": "BIGINT",
    "USMALLINT": "BIGINT",
    "UINTEGER": "BIGINT",
    "UBIGINT": "BIGINT UNSIGNED",
    # An integer beyond 64 bits (a large id): exact as a 38-digit decimal.
    "HUGEINT": "DECIMAL(38, 0)",
    "UHUGEINT": "DECIMAL(38, 0)",
    "FLOAT": "DOUBLE",
    "DOUBLE": "DOUBLE",
    "VARCHAR": "TEXT",
    "JSON": "JSON",
    "TIMESTAMP": "TIMESTAMP",
    "TIMESTAMP WITH TIME ZONE": "TIMESTAMP",
    "TIMESTAMP_S": "TIMESTAMP",
    "TIMESTAMP_MS": "TIMESTAMP",
    "TIMESTAMP_NS": "TIMESTAMP",
    # Arroyo connection tables have no DATE, TIME or UUID: the text is kept as it came.
    "DATE": "TEXT",
    "TIME": "TEXT",
    "UUID": "TEXT",
}

#: Why a field got a type other than the obvious one (shown as a comment on its line).
_NOTES = {
    '"NULL"': "always null in the sample: JSON takes any value",
    "DATE": "dates in the sample (Arroyo has no DATE column type)",
    "UUID": "UUIDs in the sample",
}


@dataclass(frozen=True, slots=True)
class InferredColumn:
    """One top-level field: its JSON key, Arroyo SQL type and an optional note."""

    name: str
    sql_type: str
    note: str | None = None


def infer_columns(ndjson: bytes) -> tuple[list[InferredColumn], str | None]:
    """The columns of the records in ``ndjson`` (one JSON object per line), in first-seen key
    order, and the name of a column that looks like a primary key (or ``None``).

    A key is suggested when its name is ``id`` (or like ``order_id``, ``orderId``, ``uuid``,
    ``order_key``), its type
    is an integer or text, and it is present, non-null and distinct in every sample record.
    """
    import duckdb

    from arroyo_lite.formats import duck
    from arroyo_lite.infer.sample import InferError

    with tempfile.TemporaryDirectory(prefix="arroyo-lite-infer-") as tmp:
        path = Path(tmp, "sample.ndjson")
        path.write_bytes(ndjson)
        con = duck.cursor()
        try:
            con.execute(
                "CREATE TEMP TABLE sample AS SELECT * FROM read_json(?, "
                "format = 'newline_delimited', records = true, sample_size = -1, "
                "maximum_depth = -1, map_inference_threshold = -1)",
                [str(path)],
            )
            relation = con.sql("SELECT * FROM sample")
            columns = [
                _column(name, kind)
                for name, kind in zip(relation.columns, relation.types, strict=True)
            ]
            key = _primary_key(con, columns)
        except duckdb.Error as e:
            message = str(e).split("\n")[0]
            raise InferError(f"DuckDB could not infer the records' types: {message}") from e
        finally:
            con.close()
    return columns, key


def _column(name: str, kind: Any) -> InferredColumn:
    note = _NOTES.get(str(kind))
    return InferredColumn(name, arroyo_type(kind), note)


def arroyo_type(kind: Any) -> str:
    """The Arroyo SQL type for a DuckDB type (``DuckDBPyType``), recursively."""
    ident = kind.id
    if ident == "struct":
        fields = [(str(n), t) for n, t in kind.children]
        if not fields:
            return "JSON"
        inner = ", ".join(f"{quote_identifier(n)} {arroyo_type(t)}" for n, t in fields)
        return f"STRUCT<{inner}>"
    if ident in ("list", "array"):
        return f"{arroyo_type(dict(kind.children)['child'])}[]"
    if ident in ("map", "union"):
        return "JSON"
    return LEAF_TYPES.get(str(kind), "JSON")


#: ``id``, ``uuid``, ``order_id``, ``orderId``, ``orderID``, ``order_key``: not ``paid``.
_KEY_NAME = re.compile(r"^(?i:id|uuid|key)$|^.+(?i:_id|_uuid|_key)$|^.*[a-z](Id|ID)$")
_KEY_TYPES = {"BIGINT", "BIGINT UNSIGNED", "TEXT", "DECIMAL(38, 0)"}


def _primary_key(con: Any, columns: list[InferredColumn]) -> str | None:
    candidates = [c for c in columns if c.sql_type in _KEY_TYPES and _KEY_NAME.match(c.name)]
    # `id` itself first, then the other id-like names in the order they appear.
    candidates.sort(key=lambda c: c.name.lower() != "id")
    for column in candidates:
        ref = '"' + column.name.replace('"', '""') + '"'
        total, distinct, present = con.sql(
            f"SELECT count(*), count(DISTINCT {ref}), count({ref}) FROM sample"
        ).fetchall()[0]
        if present == total and distinct == total:
            return column.name
    return None


_PLAIN = re.compile(r"^[a-z_][a-z0-9_]*$")


@functools.cache
def quote_identifier(name: str) -> str:
    """``name`` as an Arroyo SQL identifier: bare when the dialect reads it back as the same
    name and DuckDB (which runs the queries) does not reserve it, else double-quoted
    (unquoted names fold to lower case, and JSON keys are case-sensitive)."""
    if _PLAIN.match(name) and name not in _duckdb_reserved() and _reads_back(name):
        return name
    return '"' + name.replace('"', '""') + '"'


@functools.cache
def _duckdb_reserved() -> frozenset[str]:
    from arroyo_lite.formats import duck

    con = duck.cursor()
    try:
        rows = con.sql(
            "SELECT keyword_name FROM duckdb_keywords() WHERE keyword_category = 'reserved'"
        ).fetchall()
    finally:
        con.close()
    return frozenset(str(row[0]).lower() for row in rows)


def _reads_back(name: str) -> bool:
    # Ask the parser itself, as a column and as a STRUCT field: keyword rules differ by place.
    import sqlglot
    from sqlglot import exp

    from arroyo_lite.sql.dialect import Arroyo

    try:
        tree = sqlglot.parse_one(
            f"CREATE TABLE t ({name} TEXT, s STRUCT<{name} TEXT>)", read=Arroyo
        )
    except sqlglot.errors.SqlglotError:
        return False
    defs = list(tree.find_all(exp.ColumnDef))
    return [d.name for d in defs] == [name, "s", name]
