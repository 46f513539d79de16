"""DataFusion's results for the functions whose DuckDB namesakes differ
(arroyo_lite/sql/aggregates.py), and the t-digest port (arroyo_lite/sql/tdigest.py) checked
against a line-by-line transcription of DataFusion's scan (``tdigest.rs``)."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pytest

from arroyo_lite import Session
from arroyo_lite.sql.tdigest import percentile


def _k_to_q(k: int, d: int) -> float:
    ratio = k / d
    if ratio >= 0.5:
        base = 1 - ratio
        return 1 - 2 * base * base
    return 2 * ratio * ratio


def _compress(points: list[tuple[float, float]], count: int, *, merged: bool) -> list[list[float]]:
    """TDigest::merge_digests (``merged``) or merge_sorted_f64 on an empty digest, as
    written in DataFusion: one centroid at a time."""
    k_limit = 1
    limit = _k_to_q(k_limit, 100) * count
    if not merged:
        k_limit += 1
    curr = list(points[0])
    so_far = curr[1]
    sums = weights = 0.0
    out: list[list[float]] = []
    for mean, weight in points[1:]:
        so_far += weight
        if so_far <= limit:
            sums += mean * weight
            weights += weight
        else:
            total = sums + curr[1] * curr[0]
            curr = [total / (curr[1] + weights), curr[1] + weights]
            out.append(curr)
            sums = weights = 0.0
            limit = _k_to_q(k_limit, 100) * count
            k_limit += 1
            curr = [mean, weight]
    total = sums + curr[1] * curr[0]
    out.append([total / (curr[1] + weights), curr[1] + weights])
    return sorted(out, key=lambda c: c[0])


def _estimate(cs: list[list[float]], count: int, low: float, high: float, q: float) -> float:
    rank = q * count
    if q > 0.5:
        pos, t = 0, float(count)
        for k in range(len(cs) - 1, -1, -1):
            t -= cs[k][1]
            if rank >= t:
                pos = k
                break
    else:
        pos, t = len(cs) - 1, 0.0
        for k, c in enumerate(cs):
            if rank < t + c[1]:
                pos = k
                break
            t += c[1]
    delta, lo, hi = 0.0, low, high
    if len(cs) > 1:
        if pos == 0:
            delta, hi = cs[1][0] - cs[0][0], cs[1][0]
        elif pos == len(cs) - 1:
            delta, lo = cs[pos][0] - cs[pos - 1][0], cs[pos - 1][0]
        else:
            delta = (cs[pos + 1][0] - cs[pos - 1][0]) / 2
            lo, hi = cs[pos - 1][0], cs[pos + 1][0]
    value = cs[pos][0] + ((rank - t) / cs[pos][1] - 0.5) * delta
    return min(max(value, lo), hi)


@pytest.mark.parametrize("weighted", [False, True])
def test_the_vectorised_digest_makes_datafusions_decisions(weighted: bool) -> None:
    rng = random.Random(12)
    for _ in range(150):
        n = rng.randint(1, 2500)
        values = [rng.choice([rng.randint(-50, 300), rng.random() * 100]) for _ in range(n)]
        weights = [float(rng.randint(1, 30)) if weighted else 1.0 for _ in range(n)]
        q = rng.choice([0.01, 0.25, 0.5, 0.75, 0.99, rng.random()])
        points = sorted(zip(values, weights, strict=True))
        expected = _estimate(
            _compress(points, n, merged=weighted), n, points[0][0], points[-1][0], q
        )
        got = percentile(np.array(values), np.array(weights), q, weighted=weighted)
        assert got == pytest.approx(expected, rel=1e-12, abs=1e-9), (n, q)


def _session_with(rows: dict[str, list[object]], types: str) -> Session:
    session = Session()
    session.execute(f"CREATE TABLE t ({types})")
    values = ", ".join(
        "(" + ", ".join(repr(v) for v in row) + ")" for row in zip(*rows.values(), strict=True)
    )
    session.execute(f"INSERT INTO t VALUES {values}")
    return session


def test_an_updating_aggregate_sees_each_distinct_input_once() -> None:
    # Arroyo's updating aggregate keeps a median's distinct inputs (DataFusion's median
    # cannot retract a row): 1, 1, 1, 2, 9 has the median 2 of {1, 2, 9} there, and of
    # integers the median stays an integer ((1 + 2) / 2 = 1 for {1, 2}).
    with _session_with({"k": ["a"] * 5 + ["b"] * 3, "x": [1, 1, 1, 2, 9, 1, 2, 2]},
                       "k TEXT, x BIGINT") as session:  # fmt: skip
        rows = session.query(
            "SELECT k, median(x) AS m, approx_distinct(x) AS d, round(sum(x), 1) AS r,"
            " count(*) AS n FROM t GROUP BY k ORDER BY k"
        )
    assert rows.to_pylist() == [
        {"k": "a", "m": 2, "d": 3, "r": 14.0, "n": 5},
        {"k": "b", "m": 1, "d": 2, "r": 5.0, "n": 3},
    ]
    assert rows.schema.field("m").type == pa.int64()  # DataFusion: the input's type
    assert rows.schema.field("d").type == pa.uint64()  # approx_distinct: UInt64
    assert rows.schema.field("r").type == pa.float64()  # round of an integer: Float64


def test_a_windowed_aggregate_sees_every_row() -> None:
    from arroyo_lite.sql.transpile import to_duckdb

    windowed = to_duckdb("SELECT tumble(interval '1 minute') AS w, median(x) FROM t GROUP BY w")
    updating = to_duckdb("SELECT k, median(x) FROM t GROUP BY k")
    assert "DISTINCT" not in windowed.upper()
    assert "LIST(DISTINCT X)" in updating.upper()


def test_a_median_of_floats_is_the_mean_of_the_middle_two() -> None:
    with _session_with({"x": [0.5, 2.0, 1.0, 3.0]}, "x DOUBLE") as session:
        [row] = session.query("SELECT median(x) AS m FROM t").to_pylist()
    assert row["m"] == 1.5
