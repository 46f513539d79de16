"""Arroyo's aggregates as DataFusion computes them (sql/aggregates.py FUNCTIONS), run on real
DuckDB through the session."""

from __future__ import annotations

import pytest

from arroyo_lite import Session


def test_approximations_and_var_compute_what_datafusion_does() -> None:
    with Session() as session:
        session.execute("CREATE TABLE t (x BIGINT)")
        session.execute("INSERT INTO t SELECT * FROM range(1, 11)")
        [row] = session.query(
            "SELECT approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY x) AS p,"
            " approx_percentile_cont(0.9) WITHIN GROUP (ORDER BY x DESC) AS low,"
            " approx_percentile_cont(x, 0.9) AS old, approx_median(x) AS m,"
            " var(x) AS v FROM t"
        ).to_pylist()
    # DataFusion's t-digest over 1..10 interpolates 5.5, 1.5 and 9.5; of a BIGINT input the
    # result is a BIGINT, truncated (Rust's `as`).
    assert (row["p"], row["m"], row["low"], row["old"]) == (5, 5, 1, 9)
    assert row["v"] == pytest.approx(55 / 6)


def test_a_weighted_percentile_ranks_by_row_count_as_datafusion_does() -> None:
    # DataFusion makes each row a digest of count 1 and weight w, then ranks q * (number of
    # rows) along the weights: with weights 1, 2, ..., 10 the "median" is where the running
    # weight passes 5 (of 55), at x = 3 (interpolated: 3 + (2/3 - 1/2)), not the weighted
    # median 7.
    with Session() as session:
        session.execute("CREATE TABLE t (x DOUBLE, w BIGINT)")
        session.execute("INSERT INTO t SELECT i, i FROM range(1, 11) r(i)")
        [row] = session.query(
            "SELECT approx_percentile_cont_with_weight(w, 0.5) WITHIN GROUP (ORDER BY x) AS p"
            " FROM t"
        ).to_pylist()
    assert row["p"] == pytest.approx(3 + 2 / 3 - 0.5)
