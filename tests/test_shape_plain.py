"""A plain one-table query is analyzed from the Arroyo dialect's tree (query/shape.py).

Its contract: whenever :func:`_plain_tree` gives a tree, it is the very tree sqlglot's
DuckDB dialect reads from the same text (so the shape cannot differ); anything else (a
function, a join, a subquery, GROUP BY, a string with a backslash or ``$``) gets ``None``
and is read with DuckDB's dialect as before.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
import sqlglot
from hypothesis import given, settings
from hypothesis import strategies as st

from arroyo_lite.query.shape import _plain_tree, analyze, classify

PLAIN = [
    "SELECT counter FROM t",
    "select counter from t;",
    'SELECT "Counter", b AS "x y" FROM "T" WHERE a > 1 AND NOT (b = \'x\' OR c IS NULL)',
    "SELECT * FROM t WHERE a <> 2 - -1 * 3 % 5",
    "SELECT a || 'b' AS ab FROM t AS x WHERE x.a >= 1.5e3",
    "SELECT window FROM t",
    "SELECT a FROM t -- a comment\nWHERE b < 2 /* another */",
    "SELECT 1",
    "SELECT TRUE, NULL FROM t WHERE a IS NOT NULL",
]

NOT_PLAIN = [
    "SELECT count(*) FROM t",
    "SELECT a FROM t GROUP BY a",
    "SELECT DISTINCT a FROM t",
    "SELECT a FROM t LIMIT 3",
    "SELECT a FROM t ORDER BY a",
    "SELECT a FROM t JOIN u ON t.a = u.a",
    "SELECT a FROM t, u",
    "SELECT a FROM (SELECT a FROM t)",
    "SELECT a FROM t WHERE a IN (SELECT a FROM u)",
    "SELECT a FROM t UNION ALL SELECT a FROM u",
    "WITH c AS (SELECT a FROM t) SELECT a FROM c",
    "SELECT CAST(a AS BIGINT) FROM t",
    "SELECT lower(a) FROM t",
    "SELECT a FROM t WHERE b = 'it\\'s'",
    "SELECT $$x$$ FROM t",
    "SELECT a FROM t WHERE a LIKE 'x%'",
    "SELECT a FROM t WHERE a BETWEEN 1 AND 2",
    "SELECT row_number() OVER () FROM t",
    "FROM t SELECT a",
    "SELECT a FROM",
    "SELECT a / 2 FROM t",
]


@pytest.mark.parametrize("sql", PLAIN)
def test_a_plain_query_gets_the_tree_duckdbs_dialect_reads(sql: str) -> None:
    tree = _plain_tree(sql)
    assert tree is not None
    assert tree == sqlglot.parse_one(sql, read="duckdb")


@pytest.mark.parametrize("sql", NOT_PLAIN)
def test_any_other_query_is_left_to_duckdbs_dialect(sql: str) -> None:
    assert _plain_tree(sql) is None


def test_the_shape_of_a_plain_query_is_that_of_an_appending_one() -> None:
    shape = analyze("SELECT counter FROM t WHERE counter > 1", {}, ["t"])
    assert shape.tables == frozenset({"t"})
    assert not shape.aggregating and not shape.joins and not shape.windowed
    assert dict(shape.scans) == {"t": 1}
    assert classify(shape, frozenset({"t"})).value == "append"
    status = analyze("SELECT * FROM arroyo_status", {}, ["t"])
    assert status.reads_status and status.aggregating and status.tables == frozenset()


_names = st.sampled_from(["a", "b", "t", "x", "counter", '"Mixed Case"', "window", "value"])
_literals = st.sampled_from(["1", "2.5", "'x'", "''''", "NULL", "TRUE", "-3", "1e3"])
_operators = st.sampled_from(["+", "-", "*", "/", "%", "||", "=", "<>", "<", ">=", "AND", "OR"])


@st.composite
def _expressions(draw: st.DrawFn, depth: int = 0) -> str:
    kind = draw(st.integers(0, 4 if depth < 3 else 1))
    if kind == 0:
        return draw(_names)
    if kind == 1:
        return draw(_literals)
    if kind == 2:
        return f"({draw(_expressions(depth + 1))})"
    if kind == 3:
        return f"NOT {draw(_expressions(depth + 1))}"
    left, right = draw(_expressions(depth + 1)), draw(_expressions(depth + 1))
    return f"{left} {draw(_operators)} {right}"


@st.composite
def _queries(draw: st.DrawFn) -> str:
    columns = draw(st.lists(_expressions(), min_size=1, max_size=3))
    select = ", ".join(f"{c} AS {draw(_names)}" if draw(st.booleans()) else c for c in columns)
    sql = f"SELECT {select} FROM {draw(_names)}"
    if draw(st.booleans()):
        sql += f" WHERE {draw(_expressions())}"
    return sql


@settings(max_examples=300, deadline=None)
@given(_queries())
def test_generated_plain_queries_get_duckdbs_tree(sql: str) -> None:
    tree = _plain_tree(sql)
    try:
        duck = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.SqlglotError:
        duck = None
    if tree is not None:
        assert tree == duck


def test_a_plain_continuous_query_does_not_load_sqlglots_duckdb_dialect() -> None:
    # A fresh interpreter: what one import loaded stays in sys.modules.
    script = (
        "import sys\n"
        "from arroyo_lite import Session\n"
        "with Session() as s:\n"
        "    s.execute(\"CREATE TABLE t WITH (connector = 'impulse', event_rate = 10);\")\n"
        "    q = s.stream('SELECT counter FROM t WHERE counter >= 0', timeout=60)\n"
        "    print(next(q).column('counter').to_pylist())\n"
        "    q.close()\n"
        "print(sorted(m for m in sys.modules if m.startswith('sqlglot.dialects.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    *rows, loaded = done.stdout.strip().splitlines()
    assert rows[0].startswith("[0")
    assert "sqlglot.dialects.duckdb" not in loaded
    assert "sqlglot.dialects.risingwave" in loaded
