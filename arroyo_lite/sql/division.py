"""DataFusion's ``/`` as a DuckDB macro (:data:`DIV`, defined by :data:`DIV_MACRO`).

Kept apart from :mod:`arroyo_lite.sql.aggregates` (which translates queries, with sqlglot)
because ``/`` is also evaluated outside queries: a virtual column's expression
(``GENERATED ALWAYS AS (a / b)``) runs on the decoders' database
(:mod:`arroyo_lite.formats.duck`), which defines the macro from here without importing
sqlglot.
"""

from __future__ import annotations

__all__ = ["DIV", "DIV_MACRO", "INTEGER_TYPES"]

#: The DuckDB types an integer input has: DataFusion's t-digest and median of those return
#: the same integer type, truncated (Rust's ``as``) rather than rounded; ``/`` of two of
#: them is an integer division.
INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT",
                 "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT", "UHUGEINT")  # fmt: skip

#: ``arroyo_div(a, b)``: DataFusion's ``a / b``. Of two integers it divides in their common
#: integer type, truncating toward zero (``Int64 / Int64`` is Int64: ``7 / 2`` is 3, ``-7 /
#: 2`` is -3), which is DuckDB's ``//``; DuckDB's ``/`` is a DOUBLE division. Of anything
#: else it is DuckDB's ``/``, in the type ``//`` has (FLOAT of two FLOATs, DOUBLE
#: otherwise: DataFusion's Float32 and Float64; a decimal quotient is DOUBLE here, a
#: Decimal128 in DataFusion). An integer division by zero fails, as DataFusion's does.
DIV = "arroyo_div"

_INTEGERS = ", ".join(repr(t) for t in INTEGER_TYPES)

#: The statement that defines :data:`DIV` on a connection (idempotent).
DIV_MACRO = (
    f"CREATE OR REPLACE MACRO {DIV}(a, b) AS CASE WHEN typeof(a) IN ({_INTEGERS}) "
    f"AND typeof(b) IN ({_INTEGERS}) THEN a // b ELSE cast_to_type(a / b, a // b) END"
)
