"""Number literals have DataFusion 48's types where they reach a result
(``arroyo_lite/sql/literals.py``), through a real ``Session`` and ``arroyo-lite run``.

DataFusion types ``1`` as Int64 and ``1.5`` as Float64 and widens the other operand: an INT
column plus ``1`` is an Int64, divided by ``2`` an Int64 division, times ``1.5`` a Float64.
DuckDB's ``1`` takes the other operand's type and its ``1.5`` is a DECIMAL.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from arroyo_lite import Session
from arroyo_lite.sql.transpile import to_duckdb


def test_arithmetic_with_literals_has_datafusions_types() -> None:
    with Session() as session:
        session.execute("CREATE TABLE t (i INT, s SMALLINT, u INT UNSIGNED, f REAL, d DOUBLE,"
                        " m DECIMAL(10, 2))")  # fmt: skip
        session.execute("INSERT INTO t VALUES (7, 7, 7, 1.5, 1.5, 2.50)")
        rows = session.query(
            "SELECT i + 1 AS a, i / 2 AS q, -i % 2 AS r, s * 3 AS p, u - 1 AS v, i * 1.5 AS x,"
            " f + 1 AS g, f * 2.5 AS h, d - 1 AS e, m * 0.5 AS n, 1 AS one, -2 AS neg,"
            " 2.5 AS half, CASE WHEN i > 1 THEN 1 ELSE 0 END AS flag FROM t"
        )
    types = {f.name: f.type for f in rows.schema}
    assert types == {
        "a": pa.int64(), "q": pa.int64(), "r": pa.int64(), "p": pa.int64(), "v": pa.int64(),
        "x": pa.float64(), "g": pa.float32(), "h": pa.float64(), "e": pa.float64(),
        "n": pa.float64(), "one": pa.int64(), "neg": pa.int64(), "half": pa.float64(),
        "flag": pa.int64(),
    }  # fmt: skip
    assert rows.to_pylist() == [
        {"a": 8, "q": 3, "r": -1, "p": 21, "v": 6, "x": 10.5, "g": 2.5, "h": 3.75, "e": 0.5,
         "n": 1.25, "one": 1, "neg": -2, "half": 2.5, "flag": 1}
    ]  # fmt: skip


def test_an_int_plus_a_literal_does_not_overflow_an_int() -> None:
    # DataFusion adds in Int64: 2147483647 + 1 is 2147483648 (DuckDB's INTEGER overflows).
    with Session() as session:
        session.execute("CREATE TABLE t (i INT)")
        session.execute("INSERT INTO t VALUES (2147483647)")
        [row] = session.query("SELECT i + 1 AS a, i * 2 AS b FROM t").to_pylist()
    assert row == {"a": 2147483648, "b": 4294967294}


@pytest.mark.parametrize(
    ("literal", "arrow_type"),
    [("9223372036854775807", pa.int64()), ("-9223372036854775808", pa.int64()),
     ("9223372036854775808", pa.uint64()), ("18446744073709551616", pa.float64()),
     ("1e3", pa.float64()), (".5", pa.float64())],
)  # fmt: skip
def test_a_literals_type_follows_its_value(literal: str, arrow_type: pa.DataType) -> None:
    # DataFusion's parse_sql_number: i64, else u64, else f64.
    with Session() as session:
        rows = session.query(f"SELECT {literal} AS v, ({literal}) AS p")
    assert rows.schema.field("v").type == arrow_type
    assert rows.schema.field("p").type == arrow_type


def test_unnamed_columns_keep_duckdbs_names() -> None:
    with Session() as session:
        session.execute("CREATE TABLE t (x INT, y INT)")
        session.execute("INSERT INTO t VALUES (1, 2)")
        rows = session.query(
            "SELECT x + 1 + y, (x + 1) * 2, abs(x - 1), 1, sum(x + 1), x / 2 FROM t GROUP BY x, y"
        )
    assert rows.schema.names == [
        "((x + 1) + y)", "((x + 1) * 2)", "abs((x - 1))", "1", "sum((x + 1))", "(x / 2)",
    ]  # fmt: skip
    assert [f.type for f in rows.schema] == [pa.int64()] * 6


def test_literals_that_decide_no_type_are_left_as_written() -> None:
    # Function arguments, LIMIT, ordinals, comparisons: DuckDB needs some as written
    # (round's digits are an INTEGER), and none decides a result's type.
    sql = "SELECT k, round(x, 2) AS r FROM t WHERE x > 1 GROUP BY 1 ORDER BY 1 LIMIT 10"
    assert "CAST(2 AS" not in to_duckdb(sql)
    assert "CAST(1 AS" not in to_duckdb(sql)
    assert to_duckdb("SELECT * FROM t WHERE x > 1") == "SELECT * FROM t WHERE x > 1"
    # An interval times a number is an interval either way: DuckDB's reading stays.
    assert "CAST" not in to_duckdb("SELECT ts - INTERVAL '1' HOUR * 2 AS t0 FROM t")


def test_run_writes_an_int_plus_one_as_a_number(tmp_path: Path) -> None:
    sql = tmp_path / "q.sql"
    sql.write_text(
        "CREATE TABLE ticks WITH (connector = 'impulse', event_rate = 100, message_count = 3);\n"
        "SELECT CAST(counter AS INT) + 1 AS n, counter / 2 AS h, counter * 0.5 AS f"
        " FROM ticks;\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", "from arroyo_lite.cli import main; main()", "run", str(sql),
         "--format", "jsonl"],  # fmt: skip
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["n"], r["h"], r["f"]) for r in rows] == [(1, 0, 0.0), (2, 0, 0.5), (3, 1, 1.0)]


@pytest.mark.parametrize(
    "first", ["1 AS fine", "x + 1 AS fine", "avg(x) / 2 AS fine", "sum(x) AS fine"]
)
def test_an_error_in_a_translated_query_points_at_the_users_text(first: str) -> None:
    # The translated text is not the user's: the error is positioned by binding the text
    # as written, which fails with the same message (query/duck.py as_written).
    from arroyo_lite.errors import QueryError

    with Session() as session:
        session.execute("CREATE TABLE t (x INT)")
        with pytest.raises(QueryError) as caught:
            session.query(f"SELECT {first},\n  nope FROM t")
    assert str(caught.value).startswith("<query>:2:3: error:")
    assert '"nope"' in str(caught.value)
