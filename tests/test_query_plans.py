"""Continuous-query plans: the kind of a query is decided once (query/shape.py) and picks the
plan object (query/continuous.py) that follows the tables."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pytest

from arroyo_lite.config import TIMESTAMP_COLUMN, TableKind
from arroyo_lite.query.continuous import (
    AggregatePlan,
    AppendPlan,
    ReevaluatedPlan,
    UpdatingPlan,
    WindowedPlan,
)
from arroyo_lite.query.engine import Engine
from arroyo_lite.query.shape import QueryKind
from arroyo_lite.runtime.store import Store

SCHEMA = pa.schema(
    [
        pa.field("x", pa.int64()),
        pa.field(TIMESTAMP_COLUMN, pa.timestamp("ns"), nullable=False),
    ]
)


def rows(start: int, n: int) -> pa.RecordBatch:
    values = pa.array(range(start, start + n), pa.int64())
    return pa.record_batch([values, values.view(pa.timestamp("ns"))], schema=SCHEMA)


@pytest.fixture()
def engine() -> Iterator[Engine]:
    store = Store()
    store.create("t", SCHEMA)
    store.create("u", SCHEMA)
    store.create("m", SCHEMA, kind=TableKind.MEMORY)
    engine = Engine(store)
    yield engine
    engine.close()
    store.close()


@pytest.mark.parametrize(
    ("sql", "kind", "plan"),
    [
        ("SELECT x FROM t WHERE x > 1", QueryKind.APPEND, AppendPlan),
        ("SELECT t.x FROM t JOIN m ON t.x = m.x", QueryKind.APPEND, AppendPlan),
        ("SELECT x FROM t UNION ALL SELECT x FROM u", QueryKind.APPEND, AppendPlan),
        ("SELECT count(*) FROM t", QueryKind.UPDATING, AggregatePlan),
        ("SELECT DISTINCT x FROM t", QueryKind.UPDATING, AggregatePlan),
        ("SELECT list(x) FROM t", QueryKind.UPDATING, UpdatingPlan),
        (
            "SELECT tumble(interval '1 second') AS w, count(*) AS n FROM t GROUP BY w",
            QueryKind.WINDOWED,
            WindowedPlan,
        ),
        ("SELECT t.x FROM t JOIN u ON t.x = u.x", QueryKind.REEVALUATED, ReevaluatedPlan),
        ("SELECT a.x FROM t a JOIN t b ON a.x = b.x", QueryKind.REEVALUATED, ReevaluatedPlan),
        ("SELECT * FROM arroyo_status", QueryKind.REEVALUATED, ReevaluatedPlan),
    ],
)
def test_the_kind_is_decided_once_and_picks_the_plan(
    engine: Engine, sql: str, kind: QueryKind, plan: type
) -> None:
    stream = engine.stream(sql, timeout=5)
    try:
        assert stream.plan.kind is kind
        assert type(stream.plan) is plan
        assert stream.incremental is (plan in (AppendPlan, WindowedPlan))
    finally:
        stream.close()


def test_append_plan_yields_each_new_row_once(engine: Engine) -> None:
    stream = engine.stream("SELECT x FROM t", timeout=30)
    engine.store.append("t", rows(0, 3))
    assert next(stream).column("x").to_pylist() == [0, 1, 2]
    engine.store.append("t", rows(3, 2))
    assert next(stream).column("x").to_pylist() == [3, 4]
    stream.close()


def test_reevaluated_plan_yields_whole_results(engine: Engine) -> None:
    stream = engine.stream("SELECT count(*) AS n FROM t", timeout=30)
    engine.store.append("t", rows(0, 3))
    assert next(stream).column("n").to_pylist() == [3]
    engine.store.append("t", rows(3, 2))
    assert next(stream).column("n").to_pylist() == [5]
    stream.close()


def test_finish_yields_what_arrived_then_stops(engine: Engine) -> None:
    stream = engine.stream("SELECT x FROM t", timeout=30)
    engine.store.append("t", rows(0, 4))
    stream.finish()
    assert [b.num_rows for b in stream] == [4]


def test_a_union_of_sources_yields_each_new_row_of_each_once(engine: Engine) -> None:
    stream = engine.stream("SELECT x, 't' AS s FROM t UNION ALL SELECT x, 'u' FROM u", timeout=30)
    engine.store.append("t", rows(0, 2))
    assert sorted(next(stream).to_pylist(), key=str) == [
        {"x": 0, "s": "t"},
        {"x": 1, "s": "t"},
    ]
    engine.store.append("u", rows(5, 1))
    engine.store.append("t", rows(2, 1))
    stream.finish()
    seen = [r for b in stream for r in b.to_pylist()]
    assert sorted(seen, key=str) == [{"x": 2, "s": "t"}, {"x": 5, "s": "u"}]


def test_an_updating_query_can_yield_its_changes(engine: Engine) -> None:
    stream = engine.stream("SELECT count(*) AS n FROM t", timeout=30, changelog=True)
    assert stream.incremental and stream.changelog
    engine.store.append("t", rows(0, 3))
    assert next(stream).to_pylist() == [{"n": 3, "_retract": False}]
    engine.store.append("t", rows(3, 2))
    assert next(stream).to_pylist() == [{"n": 3, "_retract": True}, {"n": 5, "_retract": False}]
    stream.close()
