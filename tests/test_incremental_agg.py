"""Incremental aggregation (query/incremental.py): per-group state gives the results
re-evaluation gives.

The property tests feed random batches (NULL keys and NULL values included) to the state,
fold the changelog it emits into a multiset of rows (a retraction must remove a row that is
there), and compare it after every batch with one DuckDB query over every row so far.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator

import duckdb
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arroyo_lite.config import RETRACT_COLUMN, TIMESTAMP_COLUMN, RetentionSpec
from arroyo_lite.query.continuous import AggregatePlan, UpdatingPlan
from arroyo_lite.query.engine import Engine
from arroyo_lite.query.incremental import AggregateState, Unsupported, compile_aggregate
from arroyo_lite.runtime.store import Store

SCHEMA = pa.schema(
    [
        pa.field("k", pa.int64()),
        pa.field("g", pa.string()),
        pa.field("v", pa.int64()),
        pa.field("d", pa.float64()),
        pa.field(TIMESTAMP_COLUMN, pa.timestamp("ns"), nullable=False),
    ]
)

#: Shapes kept as state, each with what the suite and the issue use.
QUERIES = [
    "SELECT k, count(*), sum(v), avg(v) FROM t GROUP BY k",
    "SELECT k, g, count(v) AS n, min(v), max(v), min(g) AS first_g FROM t GROUP BY k, g",
    "SELECT k % 3 AS m, count(DISTINCT v) AS dv, sum(DISTINCT v), avg(DISTINCT v) "
    "FROM t WHERE v IS NULL OR v > -3 GROUP BY m",
    "SELECT count(*) AS n, sum(v) AS s, avg(v), min(g), max(d) FROM t",
    "SELECT * FROM (SELECT count(DISTINCT g) AS gs FROM t) WHERE gs >= 2",
    "SELECT DISTINCT g, k IS NULL AS nk FROM t WHERE d IS NOT NULL",
    "SELECT coalesce(g, '?') AS key, sum(v) * 2 + count(*) AS score FROM t "
    "GROUP BY coalesce(g, '?') HAVING count(*) > 1",
    "SELECT t.k AS key, avg(t.d) AS mean FROM t GROUP BY key",
    # Keys not in the result: equal rows of several groups (a multiset, not a set).
    "SELECT count(*) AS n, max(v IS NULL) AS some_null FROM t GROUP BY k, g",
]

rows_st = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(-3, 3)),
        st.one_of(st.none(), st.sampled_from(["a", "b", "c"])),
        st.one_of(st.none(), st.integers(-5, 5)),
        # Halves and small integers: exactly representable, so sums in any order agree.
        st.one_of(st.none(), st.integers(-8, 8).map(lambda n: n / 2)),
    ),
    max_size=12,
)


def batch(rows: list[tuple[int | None, str | None, int | None, float | None]]) -> pa.Table:
    columns = list(zip(*rows, strict=True)) if rows else [[], [], [], []]
    stamps = pa.array(range(len(rows)), pa.int64()).cast(pa.timestamp("ns"))
    arrays = [pa.array(c, f.type) for c, f in zip(columns, SCHEMA, strict=False)]
    return pa.Table.from_arrays([*arrays, stamps], schema=SCHEMA)


def reference(sql: str, everything: pa.Table) -> collections.Counter[tuple[object, ...]]:
    """The multiset of rows one DuckDB query over every row gives."""
    con = duckdb.connect()
    con.register("t", everything)
    return collections.Counter(tuple(r.values()) for r in con.sql(sql).to_arrow_table().to_pylist())


def fold(into: collections.Counter[tuple[object, ...]], changes: pa.Table) -> None:
    """Apply a change batch to a multiset of rows; a retraction must find its row."""
    for row in changes.to_pylist():
        retract = row.pop(RETRACT_COLUMN)
        key = tuple(row.values())
        if retract:
            assert into[key] > 0, f"retracted a row that is not there: {key}"
            into[key] -= 1
            if not into[key]:
                del into[key]
        else:
            into[key] += 1


@pytest.fixture(scope="module")
def states() -> Iterator[dict[str, AggregateState]]:
    """One state per query, reset by each example (a fresh one costs a connection)."""
    made: dict[str, AggregateState] = {}
    yield made
    for state in made.values():
        state.close()


@pytest.mark.parametrize("sql", QUERIES)
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(batches=st.lists(rows_st, min_size=1, max_size=4))
def test_the_folded_changelog_is_the_one_shot_result(
    states: dict[str, AggregateState],
    sql: str,
    batches: list[list[tuple[int | None, str | None, int | None, float | None]]],
) -> None:
    state = states.get(sql)
    if state is None:
        state = states[sql] = AggregateState(compile_aggregate(sql, frozenset({"t"})), SCHEMA)
    state.reset()
    folded: collections.Counter[tuple[object, ...]] = collections.Counter()
    seen: list[pa.Table] = []
    for rows in batches:
        data = batch(rows)
        seen.append(data)
        changes = state.apply(data)
        assert changes.schema.names == [*state.schema.names, RETRACT_COLUMN]
        fold(folded, changes)
        expected = reference(sql, pa.concat_tables(seen))
        assert folded == expected
    whole = state.result()
    assert whole.schema == state.schema
    assert collections.Counter(tuple(r.values()) for r in whole.to_pylist()) == expected


@pytest.mark.parametrize("sql", QUERIES)
def test_the_result_schema_is_the_queries_own(sql: str) -> None:
    state = AggregateState(compile_aggregate(sql, frozenset({"t"})), SCHEMA)
    con = duckdb.connect()
    con.register("t", SCHEMA.empty_table())
    assert state.schema == con.sql(sql).to_arrow_table().schema
    state.close()


def test_a_rebuild_gives_the_changes_to_the_result_over_the_rows_kept() -> None:
    sql = "SELECT k, min(v) AS low, count(*) AS n FROM t GROUP BY k"
    state = AggregateState(compile_aggregate(sql, frozenset({"t"})), SCHEMA)
    folded: collections.Counter[tuple[object, ...]] = collections.Counter()
    first = batch([(1, None, -5, None), (2, None, 0, None)])
    second = batch([(1, None, 3, None), (1, None, 4, None)])
    fold(folded, state.apply(first))
    fold(folded, state.apply(second))
    fold(folded, state.rebuild(second))  # the first batch has left the table
    assert folded == reference(sql, second) == collections.Counter({(1, 3, 2): 1})
    state.close()


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT t.k, count(*) FROM t JOIN u ON t.k = u.k GROUP BY t.k", "more than one"),
        ("SELECT k, count(*) FROM t GROUP BY k ORDER BY k", "ORDER"),
        ("SELECT k, count(*) FROM t GROUP BY k LIMIT 3", "LIMIT"),
        ("SELECT k, list(v) FROM t GROUP BY k", "aggregate"),
        ("SELECT k, count(*) FILTER (WHERE v > 0) FROM t GROUP BY k", "Filter"),
        ("SELECT k, v, count(*) FROM t GROUP BY k", "neither a key nor aggregated"),
        ("SELECT k FROM t GROUP BY ROLLUP (k)", "ROLLUP"),
        ("SELECT k, count(*) FROM t WHERE v IN (SELECT v FROM u) GROUP BY k", "table"),
        ("SELECT count(*) FROM (SELECT k FROM t GROUP BY k)", "outer layer"),
        ("SELECT k, count(*) FROM t WHERE _timestamp > now() - INTERVAL 1 HOUR GROUP BY k", "NOW"),
        ("SELECT k, sum(random()) FROM t GROUP BY k", "RANDOM|random"),
    ],
)
def test_other_shapes_are_left_to_re_evaluation(sql: str, reason: str) -> None:
    with pytest.raises(Unsupported, match=reason):
        compile_aggregate(sql, frozenset({"t", "u"}))


@pytest.fixture()
def engine() -> Iterator[Engine]:
    store = Store()
    store.create("t", SCHEMA)
    store.create("u", SCHEMA)
    store.create("r", SCHEMA, retention=RetentionSpec(max_rows=4))
    engine = Engine(store)
    yield engine
    engine.close()
    store.close()


def _batch(rows: list[tuple[int | None, str | None, int | None, float | None]]) -> pa.RecordBatch:
    (one,) = batch(rows).to_batches()
    return one


def test_a_stream_of_an_aggregate_yields_only_the_touched_groups(engine: Engine) -> None:
    stream = engine.stream(
        "SELECT k, count(*) AS n, sum(v) AS s FROM t GROUP BY k", timeout=60, changelog=True
    )
    assert type(stream.plan) is AggregatePlan
    assert stream.incremental and stream.changelog
    engine.store.append("t", _batch([(1, None, 1, None), (2, None, 2, None)]))
    first = next(stream).to_pylist()
    assert sorted(first, key=str) == sorted(
        [{"k": 1, "n": 1, "s": 1, "_retract": False}, {"k": 2, "n": 1, "s": 2, "_retract": False}],
        key=str,
    )
    engine.store.append("t", _batch([(2, None, 5, None)]))
    assert next(stream).to_pylist() == [
        {"k": 2, "n": 1, "s": 2, "_retract": True},
        {"k": 2, "n": 2, "s": 7, "_retract": False},
    ]  # group 1 is not touched, so not in the batch
    stream.close()


def test_without_changelog_each_batch_is_the_whole_result(engine: Engine) -> None:
    engine.store.append("t", _batch([(1, None, 1, None), (None, None, 2, None)]))
    stream = engine.stream("SELECT k, count(*) AS n FROM t GROUP BY k", timeout=60)
    assert type(stream.plan) is AggregatePlan and not stream.incremental
    assert sorted(next(stream).to_pylist(), key=str) == sorted(
        [{"k": 1, "n": 1}, {"k": None, "n": 1}], key=str
    )
    engine.store.append("t", _batch([(1, None, 1, None)]))
    stream.finish()
    last = [b for b in stream][-1]
    assert sorted(last.to_pylist(), key=str) == sorted(
        [{"k": 1, "n": 2}, {"k": None, "n": 1}], key=str
    )


def test_with_retention_the_result_is_over_the_rows_kept(engine: Engine) -> None:
    sql = "SELECT k, count(*) AS n, max(v) AS top FROM r GROUP BY k"
    stream = engine.stream(sql, timeout=60, changelog=True)
    folded: collections.Counter[tuple[object, ...]] = collections.Counter()
    engine.store.append("r", _batch([(1, None, 9, None), (1, None, 1, None), (2, None, 2, None)]))
    fold(folded, pa.Table.from_batches([next(stream)]))
    engine.store.append("r", _batch([(2, None, 3, None), (2, None, 4, None)]))  # drops one row
    stream.finish()
    for changes in stream:
        fold(folded, pa.Table.from_batches([changes]))
    kept = engine.store.snapshot(["r"])["r"].to_table()
    assert kept.num_rows == 4
    assert folded == reference(sql.replace(" r ", " t "), kept)


def test_a_join_is_still_re_evaluated(engine: Engine) -> None:
    stream = engine.stream(
        "SELECT t.k, count(*) FROM t JOIN u ON t.k = u.k GROUP BY t.k", timeout=5
    )
    assert type(stream.plan) is UpdatingPlan
    stream.close()


@pytest.mark.parametrize(
    "sql",
    [  # the updating aggregates of Arroyo's suite (aggregates, grouped_aggregates,
        # filter_updating_aggregates), as arroyo-lite runs them
        "SELECT MIN(v), MAX(v), SUM(v), COUNT(*), AVG(v) FROM t",
        "SELECT v % 5, min(v), max(v), sum(v), count(*), avg(v) FROM t GROUP BY 1",
        "SELECT * FROM (SELECT count(distinct k) as subtasks FROM t) WHERE subtasks >= 1",
    ],
)
def test_the_suites_updating_aggregates_keep_state(engine: Engine, sql: str) -> None:
    stream = engine.stream(sql, timeout=60, changelog=True)
    assert type(stream.plan) is AggregatePlan
    engine.store.append("t", _batch([(1, None, 7, None), (2, None, 3, None)]))
    stream.finish()
    folded: collections.Counter[tuple[object, ...]] = collections.Counter()
    for changes in stream:
        fold(folded, pa.Table.from_batches([changes]))
    assert folded == reference(sql, engine.store.snapshot(["t"])["t"].to_table())
