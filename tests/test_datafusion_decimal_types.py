"""``sum`` and ``avg`` of decimals, and ``sum(...) OVER (...)``, have DataFusion 48's result
types and values (``arroyo_lite/sql/result_types.py``), through a real ``Session``.

DataFusion: ``sum`` of ``DECIMAL(p, s)`` is ``DECIMAL(min(38, p + 10), s)`` (DuckDB's
``DECIMAL(38, s)``); ``avg`` is ``DECIMAL(min(38, p + 4), min(38, s + 4))``, the sum's
unscaled integer times ``10^(scale gain)`` divided by the count, truncated toward zero, an
error past the target precision (DuckDB's is a DOUBLE); a window's ``sum`` has the plain
sum's type (DuckDB's is a HUGEINT of integers).
"""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pytest

from arroyo_lite import Session
from arroyo_lite.errors import QueryError

# The widths around DuckDB's own boundaries: 18 digits (an int64 decimal; its product of
# two of those is capped at 18 digits, the reason the macros name the type instead of
# computing it), 28 (p + 10 = 38), 34 (p + 4 = 38) and 38 (DECIMAL alone is (38, 10)).
_TYPES = [(1, 0), (10, 2), (15, 2), (18, 0), (18, 18), (19, 3), (28, 5), (30, 2), (34, 30),
          (35, 3), (38, 10), (38, 0), (38, 34), (38, 36)]  # fmt: skip


@pytest.mark.parametrize(("p", "s"), _TYPES)
def test_decimal_sum_and_avg_have_datafusions_types(p: int, s: int) -> None:
    with Session() as session:
        session.execute(f"CREATE TABLE t (k TEXT, x DECIMAL({p}, {s}))")
        zero = f"CAST(0 AS DECIMAL({p}, {s}))"
        session.execute(f"INSERT INTO t VALUES ('a', {zero}), ('a', {zero}), ('b', NULL)")
        rows = session.query(
            "SELECT k, sum(x) AS s, sum(DISTINCT x) AS sd, avg(x) AS a, avg(DISTINCT x) AS ad,"
            " min(x) AS lo, count(x) AS n FROM t GROUP BY k ORDER BY k"
        )
    total = pa.decimal128(min(38, p + 10), s)
    mean = pa.decimal128(min(38, p + 4), min(38, s + 4))
    schema = rows.schema
    assert [schema.field(n).type for n in ("s", "sd", "a", "ad")] == [total, total, mean, mean]
    assert schema.field("lo").type == pa.decimal128(p, s)  # min keeps its input's type
    assert schema.field("n").type == pa.int64()
    assert rows.to_pylist() == [
        {"k": "a", "s": 0, "sd": 0, "a": 0, "ad": 0, "lo": 0, "n": 2},
        {"k": "b", "s": None, "sd": None, "a": None, "ad": None, "lo": None, "n": 0},
    ]


def test_a_decimal_average_truncates_toward_zero() -> None:
    # 2.00 / 3 = 0.666666 at scale 6 (DuckDB's DOUBLE cast to the type would be 0.666667).
    with Session() as session:
        session.execute("CREATE TABLE t (k TEXT, x DECIMAL(10, 2))")
        session.execute(
            "INSERT INTO t VALUES ('a', 1), ('a', 1), ('a', 0), ('b', -1), ('b', 0), ('b', 0),"
            " ('c', 0.05), ('c', 0)"
        )
        rows = session.query("SELECT k, avg(x) AS a FROM t GROUP BY k ORDER BY k").to_pylist()
    assert rows == [
        {"k": "a", "a": Decimal("0.666666")},
        {"k": "b", "a": Decimal("-0.333333")},
        {"k": "c", "a": Decimal("0.025000")},
    ]


def test_a_decimal_average_is_exact_past_a_doubles_digits() -> None:
    # DECIMAL alone is DECIMAL(38, 10): its average is a DECIMAL(38, 14), exact to the last
    # digit where a DOUBLE keeps 16.
    big, bigger = "123456789012345678901.0000000001", "123456789012345678902.0000000001"
    with Session() as session:
        session.execute("CREATE TABLE t (x DECIMAL)")
        session.execute(
            "INSERT INTO t SELECT CAST(v AS DECIMAL(38, 10))"
            f" FROM (VALUES ('{big}'), ('{big}'), ('{bigger}')) AS v(v)"
        )
        rows = session.query("SELECT avg(x) AS a, sum(x) AS s FROM t")
    assert rows.schema.field("a").type == pa.decimal128(38, 14)
    assert rows.schema.field("s").type == pa.decimal128(38, 10)
    [row] = rows.to_pylist()
    assert row == {
        "a": Decimal("123456789012345678901.33333333343333"),
        "s": Decimal("370370367037037036704.0000000003"),
    }


def test_a_decimal_average_past_its_precision_fails_as_datafusions() -> None:
    # DataFusion ("Arithmetic Overflow in AvgAccumulator"): a DECIMAL(38, 36) averages into
    # scale 38, so 6.2 is 6.2 * 10^38 unscaled, past the 128-bit integer it multiplies in;
    # 1.55 fits that integer but not 38 digits; 10^34 does not fit a DECIMAL(36, 0)'s
    # average type, DECIMAL(38, 4).
    big = 10**34
    with Session() as session:
        session.execute("CREATE TABLE t (k INT, x DECIMAL(38, 36), y DECIMAL(36, 0))")
        session.execute(f"INSERT INTO t VALUES (1, 6.2, 1), (2, 1.55, {big}), (3, 0.5, 1)")
        sums = session.query("SELECT k, sum(x) AS s FROM t GROUP BY k ORDER BY k").to_pylist()
        assert [r["s"] for r in sums] == [Decimal("6.2"), Decimal("1.55"), Decimal("0.5")]
        [row] = session.query("SELECT avg(x) AS a FROM t WHERE k = 3").to_pylist()
        assert row == {"a": Decimal("0.5")}
        with pytest.raises(QueryError, match="(?i)overflow"):
            session.query("SELECT avg(x) FROM t WHERE k = 1")
        with pytest.raises(QueryError, match=r"DECIMAL\(38,38\)"):
            session.query("SELECT avg(x) FROM t WHERE k = 2")
        with pytest.raises(QueryError, match=r"DECIMAL\(38,4\)"):
            session.query("SELECT avg(y) FROM t WHERE k = 2")


def test_a_window_sum_has_the_plain_sums_type_and_wraps() -> None:
    with Session() as session:
        session.execute("CREATE TABLE t (k TEXT, i INT, b BIGINT, u INT UNSIGNED, d DECIMAL(12, 3),"
                        " f DOUBLE)")  # fmt: skip
        session.execute(
            "INSERT INTO t VALUES ('a', 1, 9223372036854775807, 1, 1.5, 0.5),"
            " ('a', 2, 2, 2, 2.25, 0.25), ('b', 5, 5, 5, 5, 5)"
        )
        rows = session.query(
            "SELECT k, sum(i) OVER (PARTITION BY k) AS si, sum(b) OVER (PARTITION BY k) AS sb,"
            " sum(u) OVER (PARTITION BY k) AS su, sum(d) OVER (PARTITION BY k) AS sd,"
            " sum(f) OVER (PARTITION BY k), sum(i) OVER (ORDER BY i) AS running"
            " FROM t ORDER BY k, i"
        )
    schema = rows.schema
    assert [f.type for f in schema][1:] == [
        pa.int64(), pa.int64(), pa.uint64(), pa.decimal128(22, 3), pa.float64(), pa.int64(),
    ]  # fmt: skip
    assert schema.names[5] == "sum(f) OVER (PARTITION BY k)"  # the name DuckDB gives it
    first = rows.to_pylist()[0]
    # i64::MAX + 2 wraps as DataFusion's add_wrapping does.
    assert (first["si"], first["sb"], first["su"], first["sd"]) == (
        3, -9223372036854775807, 3, Decimal("3.750"),
    )  # fmt: skip
    assert [r["running"] for r in rows.to_pylist()] == [1, 3, 8]


def test_a_window_sum_over_an_aggregate_keeps_duckdbs_type() -> None:
    # A known divergence (README): DuckDB cannot choose a macro overload by an aggregate's
    # type, so the window's sum stays DuckDB's HUGEINT (Int64 in DataFusion); its value is
    # the same.
    with Session() as session:
        session.execute("CREATE TABLE t (k TEXT, x INT)")
        session.execute("INSERT INTO t VALUES ('a', 1), ('a', 2), ('b', 5)")
        rows = session.query(
            "SELECT k, sum(x) AS s, sum(sum(x)) OVER () AS total FROM t GROUP BY k ORDER BY k"
        )
    assert rows.schema.field("s").type == pa.int64()
    assert rows.to_pylist() == [{"k": "a", "s": 3, "total": 8}, {"k": "b", "s": 5, "total": 8}]


def test_sum_and_avg_of_a_non_number_are_errors() -> None:
    # DataFusion's sum and avg take numbers (its avg also a Duration, DuckDB's an INTERVAL).
    with Session() as session:
        session.execute("CREATE TABLE t (b BOOLEAN, s TEXT, i INTERVAL)")
        session.execute("INSERT INTO t VALUES (true, 'a', INTERVAL '1' HOUR)")
        for query in ("SELECT sum(b) FROM t", "SELECT avg(b) FROM t", "SELECT sum(s) FROM t"):
            with pytest.raises(QueryError):
                session.query(query)
        [row] = session.query("SELECT avg(i) AS a FROM t").to_pylist()
    assert row["a"].nanoseconds == 3600 * 10**9  # an interval (month, day, nanoseconds)


def test_an_average_from_merged_partials_is_datafusions() -> None:
    # What a per-group state needs (arroyo_avg_of): partial sums and counts of two batches,
    # merged by sum, with one value of the input as the type's sample, end in DataFusion's
    # average: the decimal truncated in its type, a DOUBLE of integers and floats.
    import duckdb

    from arroyo_lite.sql.aggregates import install

    con = duckdb.connect()
    install(con)
    con.execute(
        "CREATE TABLE batches AS SELECT * FROM (VALUES (1, 1.00::DECIMAL(10, 2), 7::INT),"
        " (1, 1.00, 1), (2, 0.00, 2)) AS v(batch, x, i)"
    )
    con.execute(
        "CREATE TABLE state AS SELECT sum(t) AS t, sum(n)::BIGINT AS n, min(m) AS m,"
        " sum(ti) AS ti, sum(ni)::BIGINT AS ni, min(mi) AS mi FROM (SELECT batch, sum(x) AS t,"
        " count(x) AS n, min(x) AS m, sum(i) AS ti, count(i) AS ni, min(i) AS mi FROM batches"
        " GROUP BY batch)"
    )
    table = con.sql(
        "SELECT arroyo_avg_of(t, n, m) AS a, arroyo_avg_of(ti, ni, mi) AS b,"
        " arroyo_avg_of(t, 0, m) AS none FROM state"
    ).to_arrow_table()
    con.close()
    assert table.schema.field("a").type == pa.decimal128(14, 6)
    assert table.schema.field("b").type == pa.float64()
    assert table.to_pylist() == [{"a": Decimal("0.666666"), "b": 10 / 3, "none": None}]
