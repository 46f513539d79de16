"""``query_proof.binds`` vouches only for queries DuckDB binds (what lets validate skip DuckDB).

Generated queries over one table of every kind of column (numbers, text, booleans,
timestamps, JSON, structs, lists): whenever :func:`binds` says a query binds, real DuckDB
binds its translation (:func:`arroyo_lite.sql.transpile.to_duckdb`) over an empty table of
the declared schema, as :mod:`arroyo_lite.sql.query_check` does, and returns the width
``binds`` was told. The generator makes many queries DuckDB rejects (unknown columns, text
compared with numbers, ungrouped columns), so both verdicts are exercised.
"""

from __future__ import annotations

import duckdb
import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from arroyo_lite.config import TIMESTAMP_COLUMN
from arroyo_lite.formats import cbor
from arroyo_lite.formats.pandas_free import empty_table
from arroyo_lite.sql import compile_sql
from arroyo_lite.sql.aggregates import install as install_functions
from arroyo_lite.sql.dialect import Arroyo
from arroyo_lite.sql.query_proof import TIMESTAMP, binds, kind_of
from arroyo_lite.sql.transpile import to_duckdb

TABLE = (
    "CREATE TABLE t (i INT, n BIGINT NOT NULL, f DOUBLE, d DECIMAL(10, 2), s TEXT, b BOOLEAN, "
    "ts TIMESTAMP, j JSON, st STRUCT<a INT>, l INT[]) WITH (connector = 'polling_http', "
    "endpoint = 'http://127.0.0.1:1/x', format = 'json');"
)
CONFIG = compile_sql(TABLE).tables[0]
KINDS = {
    "t": [(c.name, kind_of(c.column_type, c.is_json)) for c in CONFIG.columns]
    + [(TIMESTAMP_COLUMN, TIMESTAMP)]
}


@pytest.fixture(scope="module")
def con():
    connection = duckdb.connect(":memory:")
    connection.execute("SET python_enable_replacements = false")
    cbor.register(connection)
    install_functions(connection)  # what to_duckdb's translations call (arroyo_sum...)
    connection.register("t", empty_table(CONFIG.output_schema()))
    yield connection
    connection.close()


def duckdb_width(con: duckdb.DuckDBPyConnection, query: str) -> int | None:
    """DuckDB's verdict: the columns returned besides ``_timestamp``, ``None`` if rejected."""
    try:
        relation = con.sql(to_duckdb(query))
    except duckdb.Error:
        return None
    return len([c for c in relation.columns if c != TIMESTAMP_COLUMN])


columns = st.sampled_from(
    ["i", "n", "f", "d", "s", "b", "ts", "j", "st", "l", "_timestamp", "nope", "t.i", "x.s"]
)
literals = st.sampled_from(["1", "2.5", "'a'", "'2024-01-01'", "TRUE", "NULL", "-3"])
leaves = st.one_of(columns, literals)


def combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(
        children,
        st.sampled_from(["+", "-", "*", "/", "%", "||", "=", "<>", "<", ">=", "AND", "OR"]),
        children,
    ).map(lambda p: f"({p[0]} {p[1]} {p[2]})")
    unary = st.tuples(
        st.sampled_from(["NOT {}", "-({})", "{} IS NULL", "{} IS NOT NULL", "CAST({} AS BIGINT)",
                         "CAST({} AS TEXT)", "{} LIKE 'a%'", "{} BETWEEN 1 AND 2",
                         "{} IN (1, 2)", "{} IN ('a', 'b')", "upper({})"]),
        children,
    ).map(lambda p: "(" + p[0].format(p[1]) + ")")
    return st.one_of(binary, unary)


expressions = st.recursive(leaves, combine, max_leaves=4)
aggregates = st.tuples(
    st.sampled_from(["count({})", "sum({})", "avg({})", "min({})", "max({})",
                     "count(DISTINCT {})", "max(sum({}))"]),
    expressions,
).map(lambda p: p[0].format(p[1])) | st.just("count(*)")


@st.composite
def queries(draw: st.DrawFn) -> str:
    grouped = draw(st.booleans())
    items = draw(st.lists(st.one_of(expressions, aggregates) if grouped else expressions,
                          min_size=1, max_size=3))
    if draw(st.booleans()) and not grouped:
        items = ["*"]
    items = [f"{e} AS c{k}" if draw(st.booleans()) else e for k, e in enumerate(items)]
    sql = f"SELECT {'DISTINCT ' if draw(st.booleans()) else ''}{', '.join(items)} FROM t"
    if draw(st.booleans()):
        sql += f" WHERE {draw(expressions)}"
    if grouped and draw(st.booleans()):
        sql += " GROUP BY " + ", ".join(draw(st.lists(columns, min_size=1, max_size=2)))
        if draw(st.booleans()):
            sql += f" HAVING {draw(st.one_of(aggregates, expressions))} > 1"
    if draw(st.booleans()):
        sql += f" ORDER BY {draw(st.one_of(columns, st.just('1'), st.just('c0')))}"
    if draw(st.booleans()):
        sql += f" LIMIT {draw(st.sampled_from(['3', '0', '1 + 1']))}"
    return sql


@settings(max_examples=400, deadline=None)
@given(query=queries())
def test_what_binds_vouches_for_duckdb_binds(con, query):
    tree = sqlglot.parse_one(query, read=Arroyo)
    width = duckdb_width(con, query)
    if binds(tree, KINDS):
        assert width is not None, f"vouched for, DuckDB rejects: {query}"
        assert binds(tree, KINDS, insert_width=width)
        assert not binds(tree, KINDS, insert_width=width + 1)


VOUCHED = [
    "SELECT symbol, avg(price) FROM prices GROUP BY symbol",
    "SELECT * FROM prices WHERE price > 10 AND symbol <> 'X' LIMIT 5",
    "SELECT symbol, count(*) AS n, max(price) FROM prices AS p GROUP BY symbol "
    "HAVING count(*) > 1 ORDER BY symbol",
    "SELECT DISTINCT upper_bound FROM prices",
    "SELECT symbol, avg(price) AS mean FROM prices WHERE price > 0 GROUP BY symbol",
]


@pytest.mark.parametrize("query", VOUCHED)
def test_plain_queries_are_vouched_for(query):
    kinds = {"prices": [("symbol", "text"), ("price", "number"), ("upper_bound", "number"),
                        (TIMESTAMP_COLUMN, TIMESTAMP)]}
    assert binds(sqlglot.parse_one(query, read=Arroyo), kinds)


LEFT_TO_DUCKDB = [
    "SELECT nope FROM prices",  # unknown column: DuckDB words the error
    "SELECT symbol, price FROM prices GROUP BY symbol",  # ungrouped column
    "SELECT symbol FROM prices WHERE price > 'x'",  # number against text
    "SELECT sum(symbol) FROM prices",
    "SELECT a.symbol FROM prices AS b",
    "SELECT symbol FROM prices ORDER BY 3",
    "SELECT count(*) FROM prices JOIN prices AS q ON prices.symbol = q.symbol",
    "SELECT upper(symbol) FROM prices",  # functions other than the aggregates
    "SELECT symbol FROM (SELECT symbol FROM prices)",
    "SELECT symbol FROM other",
]


@pytest.mark.parametrize("query", LEFT_TO_DUCKDB)
def test_other_queries_are_left_to_duckdb(query):
    kinds = {"prices": [("symbol", "text"), ("price", "number"), (TIMESTAMP_COLUMN, TIMESTAMP)]}
    assert not binds(sqlglot.parse_one(query, read=Arroyo), kinds)
