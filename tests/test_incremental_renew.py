"""The per-group state moves to a new DuckDB database now and then (query/incremental.py,
"Memory"): DuckDB frees what merges into an in-memory table allocated only when its database
closes. A move must leave the state exactly as it was: the folded changelog still matches one
query over every row, DISTINCT aggregates included, whether the move is asked for or due."""

from __future__ import annotations

import collections
import math

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arroyo_lite.query import incremental
from arroyo_lite.query.incremental import AggregateState, compile_aggregate
from tests.test_incremental_agg import QUERIES, SCHEMA, batch, fold, reference, rows_st


@pytest.mark.parametrize("sql", QUERIES)
@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    batches=st.lists(rows_st, min_size=1, max_size=4),
    moves=st.lists(st.booleans(), min_size=4, max_size=4),
)
def test_a_renewed_state_goes_on_as_the_old_one_would(
    sql: str,
    batches: list[list[tuple[int | None, str | None, int | None, float | None]]],
    moves: list[bool],
) -> None:
    state = AggregateState(compile_aggregate(sql, frozenset({"t"})), SCHEMA)
    try:
        folded: collections.Counter[tuple[object, ...]] = collections.Counter()
        seen: list[pa.Table] = []
        for rows, move in zip(batches, moves, strict=False):
            data = batch(rows)
            seen.append(data)
            fold(folded, state.apply(data))
            if move:
                groups = state.groups
                state.renew()
                assert state.groups == groups
            assert folded == reference(sql, pa.concat_tables(seen))
        whole = state.result()
        assert collections.Counter(tuple(r.values()) for r in whole.to_pylist()) == folded
        assert state.renewals == sum(moves[: len(batches)])
    finally:
        state.close()


def test_apply_renews_the_database_when_due(monkeypatch: pytest.MonkeyPatch) -> None:
    # Each batch "keeps" one byte, and three are due: a move every third batch.
    monkeypatch.setattr(incremental, "KEPT_PER_APPLY", 1)
    monkeypatch.setattr(incremental, "KEPT_PER_ROW", 0)
    monkeypatch.setattr(incremental, "RENEW_MIN_BYTES", 3)
    monkeypatch.setattr(incremental, "RENEW_FACTOR", 0.0)
    sql = "SELECT k % 3 AS m, count(DISTINCT v) AS dv, sum(v) FROM t GROUP BY m"
    state = AggregateState(compile_aggregate(sql, frozenset({"t"})), SCHEMA)
    try:
        folded: collections.Counter[tuple[object, ...]] = collections.Counter()
        seen: list[pa.Table] = []
        for i in range(7):
            data = batch([(i, "a", i % 4, 0.5), (i + 1, None, None, None)])
            seen.append(data)
            fold(folded, state.apply(data))
            assert folded == reference(sql, pa.concat_tables(seen))
        # (the state's own construction applies one empty batch, which merges nothing)
        assert state.renewals == 2
    finally:
        state.close()


def test_renewal_is_due_by_the_bytes_kept_of_rows_merged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(incremental, "KEPT_PER_APPLY", 0)
    monkeypatch.setattr(incremental, "KEPT_PER_ROW", 1)
    monkeypatch.setattr(incremental, "RENEW_MIN_BYTES", 8)
    sql = "SELECT k, count(*) FROM t GROUP BY k"
    state = AggregateState(compile_aggregate(sql, frozenset({"t"})), SCHEMA)
    try:
        state.apply(batch([(1, None, None, None), (2, None, None, None)]))  # 2 groups merged
        assert state.renewals == 0 and state.kept == 2 and not state.renew_due()
        # 6 more: 8 rows merged since the state was made, the floor's 8 "bytes"
        state.apply(batch([(k, None, None, None) for k in range(3, 9)]))
        assert state.renewals == 1 and state.kept == 0
        assert sorted(r["k"] for r in state.result().to_pylist()) == list(range(1, 9))
    finally:
        state.close()


def test_a_larger_state_is_renewed_after_more_bytes_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    # Above the floor, a move is due once what DuckDB kept reaches RENEW_FACTOR times the
    # state's own size (its tables as Arrow at the last move): a big state is copied less
    # often, so a move's cost per row merged stays bounded.
    monkeypatch.setattr(incremental, "KEPT_PER_APPLY", 0)
    monkeypatch.setattr(incremental, "KEPT_PER_ROW", 1)
    monkeypatch.setattr(incremental, "RENEW_MIN_BYTES", 1)
    monkeypatch.setattr(incremental, "RENEW_FACTOR", 0.02)
    sql = "SELECT k, count(*) FROM t GROUP BY k"
    state = AggregateState(compile_aggregate(sql, frozenset({"t"})), SCHEMA)
    try:
        state.apply(batch([(k, None, None, None) for k in range(100)]))
        assert state.renewals == 1
        size = state.size
        assert size >= 100 * 16  # 100 rows of two 8-byte columns
        due = 0.02 * size  # (~50 batches of one row)
        merged = 0
        while state.renewals == 1:
            state.apply(batch([(merged % 100, None, None, None)]))  # one group merged
            merged += 1
        assert merged == math.ceil(due)
    finally:
        state.close()
