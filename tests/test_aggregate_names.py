"""Arroyo's aggregates under DuckDB's names (sql/transpile.py AGGREGATE_NAMES), run on real
DuckDB through the session; one DuckDB lacks is refused by name."""

from __future__ import annotations

import pytest

from arroyo_lite import Session
from arroyo_lite.errors import QueryError


def test_approximations_and_var_run_as_duckdb_aggregates() -> None:
    with Session() as session:
        session.execute("CREATE TABLE t (x BIGINT)")
        session.execute("INSERT INTO t SELECT * FROM range(1, 11)")
        [row] = session.query(
            "SELECT approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY x) AS p,"
            " approx_percentile_cont(0.9) WITHIN GROUP (ORDER BY x DESC) AS low,"
            " approx_percentile_cont(x, 0.9) AS old, approx_median(x) AS m,"
            " var(x) AS v FROM t"
        ).to_pylist()
    assert row["p"] == 5.5 and row["m"] == 5.5
    assert row["low"] == pytest.approx(1.9)  # DESC: the 10th percentile
    assert row["old"] == pytest.approx(9.1)
    assert row["v"] == pytest.approx(55 / 6)


def test_a_weighted_percentile_is_refused_by_name() -> None:
    with Session() as session:
        session.execute("CREATE TABLE t (x BIGINT, w BIGINT)")
        with pytest.raises(QueryError, match="approx_percentile_cont_with_weight"):
            session.query(
                "SELECT approx_percentile_cont_with_weight(w, 0.5) WITHIN GROUP (ORDER BY x)"
                " FROM t"
            )
