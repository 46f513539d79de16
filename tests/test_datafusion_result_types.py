"""Aggregates and division have DataFusion's result types in every path.

``sum`` (``functions-aggregate/src/sum.rs``): Int64 of signed integers, UInt64 of unsigned
ones, Float64 of floats, wrapping around on overflow as DataFusion's ``add_wrapping`` does;
``count``/``min``/``max``/``avg`` keep the types DuckDB already shares with DataFusion; ``/``
of two integers is DataFusion's integer division (``sum(x) / count(*)`` is an Int64). Through
the real engine: ``Session`` snapshot and updating queries, per-group state, and
``arroyo-lite run --format jsonl`` (numbers, not strings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest

from arroyo_lite import Session

_TYPES = [
    ("TINYINT", pa.int64()), ("SMALLINT", pa.int64()), ("INT", pa.int64()),
    ("BIGINT", pa.int64()), ("INT UNSIGNED", pa.uint64()), ("BIGINT UNSIGNED", pa.uint64()),
    ("REAL", pa.float64()), ("DOUBLE", pa.float64()),
]  # fmt: skip


@pytest.mark.parametrize(("sql_type", "arrow_type"), _TYPES)
def test_sum_has_datafusions_type(sql_type: str, arrow_type: pa.DataType) -> None:
    with Session() as session:
        session.execute(f"CREATE TABLE t (k TEXT, x {sql_type})")
        session.execute("INSERT INTO t VALUES ('a', 1), ('a', 2), ('a', 2), ('b', 5)")
        rows = session.query(
            "SELECT k, sum(x) AS s, sum(DISTINCT x) AS d, count(x) AS n, min(x) AS lo,"
            " avg(x) AS m FROM t GROUP BY k ORDER BY k"
        )
        total = session.query("SELECT sum(x) FROM t")
    assert rows.schema.field("s").type == arrow_type
    assert rows.schema.field("d").type == arrow_type
    assert rows.schema.field("n").type == pa.int64()
    assert rows.schema.field("m").type == pa.float64()
    assert rows.schema.field("lo").type == session_type(sql_type)
    assert [(r["s"], r["d"]) for r in rows.to_pylist()] == [(5, 3), (5, 5)]
    assert total.schema.field(0).type == arrow_type
    assert total.schema.names == ["sum(x)"]  # the name the user's text gives it
    assert total.column(0).to_pylist() == [10]


def session_type(sql_type: str) -> pa.DataType:
    return {
        "TINYINT": pa.int8(), "SMALLINT": pa.int16(), "INT": pa.int32(), "BIGINT": pa.int64(),
        "INT UNSIGNED": pa.uint32(), "BIGINT UNSIGNED": pa.uint64(), "REAL": pa.float32(),
        "DOUBLE": pa.float64(),
    }[sql_type]  # fmt: skip


def test_an_overflowing_sum_wraps_around_as_datafusions() -> None:
    # i64::MAX + 2 wraps to i64::MIN + 1 (Rust's wrapping_add); u64::MAX + 2 to 1.
    with Session() as session:
        session.execute("CREATE TABLE t (x BIGINT, u BIGINT UNSIGNED)")
        session.execute(
            "INSERT INTO t VALUES (9223372036854775807, 18446744073709551615), (2, 2)"
        )
        [row] = session.query("SELECT sum(x) AS s, sum(u) AS u FROM t").to_pylist()
    assert row == {"s": -9223372036854775807, "u": 1}


def test_an_updating_sum_keeps_its_type_and_wraps_across_batches() -> None:
    # Per-group state (query/incremental.py): partials of the result's type, merged by the
    # same wrapping sum, give what one sum over every row gives.
    from arroyo_lite.query.incremental import aggregate_state
    from arroyo_lite.sql.transpile import to_duckdb

    sql = to_duckdb(
        "SELECT k, sum(x) AS s, sum(DISTINCT x) AS d, sum(u) AS u FROM t GROUP BY k"
    )
    schema = pa.schema([("k", pa.int32()), ("x", pa.int64()), ("u", pa.uint8())])
    state = aggregate_state(sql, frozenset({"t"}), {"t": schema})
    assert state is not None  # kept as state, not re-evaluated
    batch = pa.table(
        {"k": pa.array([1, 1], pa.int32()), "x": pa.array([2**63 - 1, 5], pa.int64()),
         "u": pa.array([200, 100], pa.uint8())}  # fmt: skip
    )
    try:
        first = state.apply(batch)
        second = state.apply(batch)
        result = state.result()
    finally:
        state.close()
    for changes in (first, second, result):
        assert changes.schema.field("s").type == pa.int64()
        assert changes.schema.field("u").type == pa.uint64()
    assert first.to_pylist() == [
        {"k": 1, "s": -(2**63) + 4, "d": -(2**63) + 4, "u": 300, "_retract": False}
    ]
    # 2 * (2^63 - 1) + 10 = 2^64 + 8: wraps to 8; the distinct values are still {MAX, 5}.
    assert result.to_pylist() == [{"k": 1, "s": 8, "d": -(2**63) + 4, "u": 600}]


def _run(tmp_path: Path, query: str) -> list[str]:
    sql = tmp_path / "q.sql"
    sql.write_text(
        "CREATE TABLE ticks WITH (connector = 'impulse', event_rate = 100,"
        f" message_count = 5);\n{query}\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", "from arroyo_lite.cli import main; main()", "run", str(sql),
         "--format", "jsonl"],  # fmt: skip
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_run_prints_sums_as_numbers(tmp_path: Path) -> None:
    lines = _run(
        tmp_path, "SELECT count(*) AS c, sum(counter) AS s, sum(subtask_index) AS z FROM ticks;"
    )
    assert lines[-1] == '{"_op":"+","c":5,"s":10,"z":0}'


def test_a_query_whose_only_aggregate_is_a_sum_is_updating(tmp_path: Path) -> None:
    # The sum is a macro call in DuckDB's SQL; the query must still count as aggregating
    # (changes printed), not as a projection printing one row per input row.
    lines = _run(tmp_path, "SELECT sum(counter) AS s FROM ticks;")
    rows = [json.loads(line) for line in lines]
    assert all("_op" in row for row in rows), lines
    assert rows[-1] == {"_op": "+", "s": 10}


def test_a_view_of_a_sum() -> None:
    with Session() as session:
        session.execute("CREATE TABLE t (k TEXT, x INT)")
        session.execute("INSERT INTO t VALUES ('a', 1), ('a', 2), ('b', 5)")
        session.execute("CREATE VIEW v AS SELECT k, sum(x) AS s FROM t GROUP BY k")
        rows = session.query("SELECT k, s FROM v ORDER BY k")
    assert rows.schema.field("s").type == pa.int64()
    assert rows.to_pylist() == [{"k": "a", "s": 3}, {"k": "b", "s": 5}]


def test_run_prints_windowed_sums_as_numbers(tmp_path: Path) -> None:
    lines = _run(
        tmp_path,
        "SELECT tumble(interval '1 hour') AS w, sum(counter) AS s,"
        " sum(DISTINCT subtask_index) AS z, avg(counter) AS a FROM ticks GROUP BY w;",
    )
    rows = [json.loads(line) for line in lines]
    assert sum(r["s"] for r in rows) == 10
    assert all(isinstance(r["s"], int) and isinstance(r["z"], int) for r in rows)
    assert all(isinstance(r["a"], float) for r in rows)


def test_integer_division_is_datafusions() -> None:
    # DataFusion: Int64 / Int64 is an Int64, truncated toward zero (DuckDB's / is a DOUBLE).
    with Session() as session:
        session.execute("CREATE TABLE t (k TEXT, x BIGINT, f DOUBLE, r REAL)")
        session.execute("INSERT INTO t VALUES ('a', 7, 7.0, 7.0), ('a', -6, -6.0, -6.0),"
                        " ('b', 3, 3.0, 3.0)")  # fmt: skip
        rows = session.query(
            "SELECT k, sum(x) / count(*) AS q, sum(f) / count(*) AS qf, min(x) / 2 AS m,"
            " min(r) / min(r) AS rr, sum(x) / 2.0 AS d FROM t GROUP BY k ORDER BY k"
        )
        plain = session.query("SELECT x / 2, interval '1 hour' / 2 AS h FROM t ORDER BY x")
    assert [rows.schema.field(n).type for n in ("q", "qf", "m", "rr", "d")] == [
        pa.int64(), pa.float64(), pa.int64(), pa.float32(), pa.float64(),
    ]  # fmt: skip
    assert rows.to_pylist() == [
        {"k": "a", "q": 0, "qf": 0.5, "m": -3, "rr": 1.0, "d": 0.5},
        {"k": "b", "q": 3, "qf": 3.0, "m": 1, "rr": 1.0, "d": 1.5},
    ]
    assert plain.schema.names[0] == "(x / 2)"  # the name DuckDB gives a / b
    assert plain.column(0).to_pylist() == [-3, 1, 3]
    assert plain.column("h").to_pylist()[0].nanoseconds == 1800 * 10**9


def test_an_updating_quotient_of_aggregates_is_kept_as_state() -> None:
    from arroyo_lite.query.incremental import aggregate_state
    from arroyo_lite.sql.transpile import to_duckdb

    sql = to_duckdb("SELECT k, sum(x) / count(*) AS q FROM t GROUP BY k")
    schema = pa.schema([("k", pa.int32()), ("x", pa.int64())])
    state = aggregate_state(sql, frozenset({"t"}), {"t": schema})
    assert state is not None
    try:
        state.apply(pa.table({"k": pa.array([1, 1], pa.int32()), "x": pa.array([7, 0])}))
        state.apply(pa.table({"k": pa.array([1], pa.int32()), "x": pa.array([-9])}))
        result = state.result()
    finally:
        state.close()
    assert result.schema.field("q").type == pa.int64()
    assert result.to_pylist() == [{"k": 1, "q": 0}]  # -2 / 3 truncates toward zero


def test_run_prints_a_quotient_of_integers_as_an_integer(tmp_path: Path) -> None:
    lines = _run(tmp_path, "SELECT sum(counter) / count(*) AS q FROM ticks;")
    assert json.loads(lines[-1]) == {"_op": "+", "q": 2}


def test_an_unknown_column_in_a_sum_is_named(tmp_path: Path) -> None:
    # A typed macro hides its argument's bind error (every overload matches an unknown
    # type): the error must still be about the column, in the file and in a Session.
    sql = tmp_path / "q.sql"
    sql.write_text(
        "CREATE TABLE ticks WITH (connector = 'impulse', event_rate = 100);\n"
        "SELECT count(*) AS c,\n  sum(nope) AS s FROM ticks;\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", "from arroyo_lite.cli import main; main()", "validate",
         str(sql)],  # fmt: skip
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 1
    assert f"{sql}:3:7: error: column 'nope' not found" in done.stderr
    assert "overload" not in done.stderr
    from arroyo_lite.errors import QueryError

    with Session() as session:
        session.execute("CREATE TABLE t (x INT)")
        with pytest.raises(QueryError, match='column "nope" not found'):
            session.query("SELECT sum(DISTINCT nope) FROM t")
