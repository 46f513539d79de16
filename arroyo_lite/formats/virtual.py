"""Virtual columns (``GENERATED ALWAYS AS (expr)``), computed per batch with DuckDB.

Each expression is Arroyo SQL text over the physical columns. It is translated to DuckDB once,
when the decoder is built, and evaluated over the whole decoded batch in one query, so no
Python runs per row. Every evaluation opens its own cursor on the decoders' shared database
(:mod:`.duck`) and registers the batch there, so evaluations from several threads never share
a registration.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from arroyo_lite.config import ColumnSpec
from arroyo_lite.errors import SqlError
from arroyo_lite.formats.duck import cursor as duck_cursor
from arroyo_lite.formats.result import bounded

#: Name the decoded batch is registered under while virtual columns are computed.
_BATCH = "__arroyo_lite_batch"


def to_duckdb_sql(expression: str) -> str:
    """Translate one Arroyo SQL expression to DuckDB SQL.

    Uses the front end's translator (``arroyo_lite.sql.transpile.to_duckdb``) when it is
    available, else sqlglot from a Postgres-family dialect (Arroyo's SQL is Postgres-like).
    """
    try:
        from arroyo_lite.sql.transpile import to_duckdb  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        import sqlglot

        return str(sqlglot.transpile(expression, read="postgres", write="duckdb")[0])
    return str(to_duckdb(expression))


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class VirtualColumns:
    """Computes a table's virtual columns over decoded batches of its physical columns."""

    def __init__(self, columns: Sequence[ColumnSpec]) -> None:
        """Translate every expression now. Raises :class:`SqlError` if one cannot be."""
        self.columns = tuple(columns)
        selects = []
        for column in self.columns:
            assert column.generated is not None
            try:
                sql = to_duckdb_sql(column.generated)
            except Exception as e:  # sqlglot raises several types; all mean "cannot translate"
                raise SqlError(
                    f"cannot translate the expression of virtual column '{column.name}': {e}",
                    position=column.position,
                ) from e
            selects.append(f"({sql}) AS {_quote(column.name)}")
        self._query = f"SELECT {', '.join(selects)} FROM {_BATCH}"


    def compute(self, batch: pa.RecordBatch) -> list[pa.Array[Any]]:
        """One array per virtual column, in declaration order, cast to the column's type.

        Raises :class:`ValueError` with a bounded message when DuckDB or the cast rejects the
        batch (a bad value in some row); the caller decides whether that fails or drops.
        """
        if not self.columns:
            return []
        cur = duck_cursor()
        try:
            cur.register(_BATCH, batch)
            table = cur.sql(self._query).to_arrow_table()
        except duckdb.Error as e:
            raise ValueError(bounded(f"virtual column failed: {e}")) from e
        finally:
            cur.close()
        out: list[pa.Array[Any]] = []
        for column, chunked in zip(self.columns, table.columns, strict=True):
            array = chunked.combine_chunks()
            try:
                out.append(array.cast(column.data_type))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
                raise ValueError(
                    bounded(f"virtual column '{column.name}' cannot be {column.sql_type}: {e}")
                ) from e
        return out
