"""The DuckDB engine over a store, driven directly (no sources): deterministic appends."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arroyo_lite.config import TIMESTAMP_COLUMN, TableKind
from arroyo_lite.errors import QueryError, SourcePosition
from arroyo_lite.query.continuous import ContinuousQuery
from arroyo_lite.query.engine import Engine
from arroyo_lite.query.shape import analyze
from arroyo_lite.runtime.store import Store

SCHEMA = pa.schema(
    [
        pa.field("k", pa.string()),
        pa.field("x", pa.int64()),
        pa.field(TIMESTAMP_COLUMN, pa.timestamp("ns"), nullable=False),
    ]
)


def rows(start: int, n: int) -> pa.RecordBatch:
    return pa.record_batch(
        [
            pa.array(["a" if i % 2 else "b" for i in range(start, start + n)]),
            pa.array(range(start, start + n), pa.int64()),
            pa.array(range(start, start + n), pa.int64()).view(pa.timestamp("ns")),
        ],
        schema=SCHEMA,
    )


def result_once(stream: ContinuousQuery, until: Callable[[list[int]], bool]) -> list[int]:
    """Column ``x`` of the stream's results, read until one satisfies ``until`` (the stream
    is then closed): the last result it gave."""
    last: list[int] = []
    for batch in stream:
        last = batch.column("x").to_pylist()
        if until(last):
            stream.close()
    return last


@pytest.fixture()
def engine() -> Iterator[Engine]:
    store = Store(fanin=4)
    store.create("t", SCHEMA)
    store.create("u", SCHEMA)
    engine = Engine(store)
    yield engine
    engine.close()
    store.close()


@pytest.mark.parametrize(
    ("sql", "tables", "aggregating"),
    [
        ("SELECT * FROM t WHERE x > 1", {"t"}, False),
        ("SELECT k, count(*) FROM t GROUP BY k", {"t"}, True),
        ("SELECT DISTINCT k FROM t", {"t"}, True),
        ("SELECT x, row_number() OVER (ORDER BY x) FROM t", {"t"}, True),
        ("SELECT * FROM t JOIN u USING (x)", {"t", "u"}, False),
        ("WITH w AS (SELECT * FROM t) SELECT * FROM w", {"t"}, False),
        ("SELECT sum(x) FROM t", {"t"}, True),
        ("SELECT x FROM t UNION ALL SELECT x FROM u", {"t", "u"}, False),
        ("SELECT x FROM t UNION SELECT x FROM u", {"t", "u"}, True),
        ("SELECT x FROM t EXCEPT ALL SELECT x FROM u", {"t", "u"}, True),
        ("SELECT x FROM t INTERSECT SELECT x FROM u", {"t", "u"}, True),
    ],
)
def test_analyze(sql: str, tables: set[str], aggregating: bool) -> None:
    shape = analyze(sql, {})
    assert shape.tables == frozenset(tables)
    assert shape.aggregating is aggregating


@pytest.mark.parametrize(
    ("sql", "rescanned"),
    [
        ("SELECT * FROM t WHERE x > 1", set()),
        ("WITH w AS (SELECT * FROM t) SELECT * FROM w", set()),
        ("SELECT a.x FROM t a JOIN t b ON a.x = b.x + 1", {"t"}),
        ("SELECT x FROM t WHERE x IN (SELECT x FROM t WHERE k = 'a')", {"t"}),
        ("WITH w AS (SELECT * FROM t) SELECT * FROM w a JOIN w b USING (x)", {"t"}),
        ("SELECT * FROM t JOIN u USING (x)", set()),
    ],
)
def test_analyze_counts_scans_of_each_table(sql: str, rescanned: set[str]) -> None:
    assert analyze(sql, {}).rescanned == frozenset(rescanned)


def test_a_self_join_is_re_evaluated_and_misses_no_match(engine: Engine) -> None:
    # New rows must meet old ones: evaluated on new rows only, the pairs that straddle two
    # appends would be lost. A view used twice is a self-join as well.
    engine.create_view("tv", "SELECT x FROM t")
    sql = "SELECT a.x FROM tv a JOIN tv b ON a.x = b.x + 1 ORDER BY 1"
    stream = engine.stream(sql, timeout=60)
    assert not stream.incremental
    engine.store.append("t", rows(0, 3))
    assert next(stream).column("x").to_pylist() == [1, 2]
    engine.store.append("t", rows(3, 3))
    # 3 pairs with 2, from the first append.
    assert result_once(stream, lambda x: len(x) == 5) == [1, 2, 3, 4, 5]


def test_aggregates_sqlglot_does_not_know_come_from_duckdb(engine: Engine) -> None:
    # bitstring_agg is a DuckDB aggregate that sqlglot parses as an anonymous function.
    stream = engine.stream("SELECT bitstring_agg(x, 0, 100) AS b FROM t")
    assert not stream.incremental
    stream.close()


def test_snapshot_query_sees_appends(engine: Engine) -> None:
    assert engine.query("SELECT count(*) AS n FROM t").column("n").to_pylist() == [0]
    engine.store.append("t", rows(0, 5))
    assert engine.query("SELECT count(*) AS n FROM t").column("n").to_pylist() == [5]
    engine.store.append("t", rows(5, 5))
    assert engine.query("SELECT sum(x) AS s FROM t").column("s").to_pylist() == [45]


def test_a_query_sees_one_moment_of_every_table_while_sources_append(engine: Engine) -> None:
    # t and u always get the same rows, t first: within one query, t is never behind u, is
    # at most one batch ahead, and two scans of t (directly and through a view) agree.
    engine.create_view("tv", "SELECT * FROM t")
    queries = 0
    stop = threading.Event()

    def writer() -> None:
        # Appends for as long as the queries run (bounded), so they overlap by construction.
        i = 0
        while not stop.is_set() and i < 3_000_000:
            engine.store.append("t", rows(i, 3))
            engine.store.append("u", rows(i, 3))
            i += 3

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while queries < 50 and thread.is_alive():
            row = engine.query(
                "SELECT (SELECT count(*) FROM t) AS a, (SELECT count(*) FROM tv) AS a2, "
                "(SELECT count(*) FROM u) AS b, (SELECT max(x) FROM t) AS top"
            ).to_pylist()[0]
            assert row["a"] == row["a2"] and row["a"] - row["b"] in (0, 3), row
            assert row["top"] is None or row["top"] == row["a"] - 1, row
            queries += 1
    finally:
        stop.set()
        thread.join()


def test_views_follow_the_live_table(engine: Engine) -> None:
    engine.create_view("big", "SELECT x FROM t WHERE x >= 3")
    engine.store.append("t", rows(0, 5))
    assert engine.query("SELECT x FROM big ORDER BY x").column("x").to_pylist() == [3, 4]
    engine.store.append("t", rows(5, 2))
    assert engine.query("SELECT count(*) AS n FROM big").column("n").to_pylist() == [4]


def test_view_name_clash_is_an_error(engine: Engine) -> None:
    with pytest.raises(QueryError, match="already defined"):
        engine.create_view("t", "SELECT 1")


def test_incremental_stream_sees_each_row_once_while_compaction_runs(engine: Engine) -> None:
    engine.create_view("odd", "SELECT x FROM t WHERE x % 2 = 1")
    stream = engine.stream("SELECT x FROM odd", timeout=60)
    assert stream.incremental
    total = 2000

    def writer() -> None:
        for i in range(0, total, 10):
            engine.store.append("t", rows(i, 10))

    thread = threading.Thread(target=writer)
    thread.start()
    seen: list[int] = []
    for batch in stream:
        seen.extend(batch.column("x").to_pylist())
        if len(seen) >= total // 2:
            stream.close()
    thread.join()
    assert seen == list(range(1, total, 2))


def test_join_of_two_sources_is_re_evaluated(engine: Engine) -> None:
    stream = engine.stream("SELECT t.x FROM t JOIN u USING (x) ORDER BY 1", timeout=60)
    assert not stream.incremental
    engine.store.append("t", rows(0, 3))
    engine.store.append("u", rows(1, 3))
    assert result_once(stream, lambda x: x == [1, 2]) == [1, 2]


def test_limit_picks_from_all_rows_so_far_not_per_batch(engine: Engine) -> None:
    stream = engine.stream("SELECT x FROM t ORDER BY x DESC LIMIT 2", timeout=60)
    assert not stream.incremental
    engine.store.append("t", rows(3, 2))
    assert next(stream).column("x").to_pylist() == [4, 3]
    # A later poll with smaller values: per batch it would print [0]; overall the top two stay.
    engine.store.append("t", rows(0, 1))
    assert next(stream).column("x").to_pylist() == [4, 3]
    stream.close()


def test_stream_with_timeout_ends(engine: Engine) -> None:
    stream = engine.stream("SELECT * FROM t", timeout=0.2)
    assert list(stream) == []


def test_union_with_a_memory_table_emits_a_value_once(engine: Engine) -> None:
    # UNION removes duplicates across all rows: applied per batch of new rows, the same x
    # arriving in two polls would be printed twice.
    engine.store.create("m", SCHEMA, kind=TableKind.MEMORY)
    engine.store.replace("m", pa.Table.from_batches([rows(0, 2)]))
    stream = engine.stream("SELECT x FROM t UNION SELECT x FROM m ORDER BY x", timeout=60)
    assert not stream.incremental
    engine.store.append("t", rows(1, 2))
    engine.store.append("t", rows(1, 3))
    def every_row_in(x: list[int]) -> bool:
        return engine.store.snapshot(["t"])["t"].num_rows == 5 and len(x) == 4

    assert result_once(stream, every_row_in) == [0, 1, 2, 3]


def test_memory_tables_are_registered_whole_in_incremental_mode(engine: Engine) -> None:
    engine.store.create("m", SCHEMA, kind=TableKind.MEMORY)
    engine.store.replace("m", pa.Table.from_batches([rows(0, 4)]))
    stream = engine.stream("SELECT t.x, m.k FROM t JOIN m USING (x)", timeout=60)
    assert stream.incremental
    engine.store.append("t", rows(2, 4))
    batch = next(stream)
    stream.close()
    assert sorted(batch.column("x").to_pylist()) == [2, 3]


def test_error_position_is_shifted_to_the_statement(engine: Engine) -> None:
    at = SourcePosition("f.sql", 10, 5)
    with pytest.raises(QueryError) as info:
        engine.query("SELECT x,\n  nope FROM t", position=at)
    assert info.value.position == SourcePosition("f.sql", 11, 3)
    with pytest.raises(QueryError) as info:
        engine.query("SELECT nope FROM t", position=at)
    assert info.value.position == SourcePosition("f.sql", 10, 12)
    assert info.value.hint is not None and "Candidate bindings" in info.value.hint


def test_translated_query_errors_carry_no_misleading_position(engine: Engine) -> None:
    with pytest.raises(QueryError) as info:
        engine.query("SELECT json_get_int(k, 'a') + nope FROM t")
    assert info.value.position is None
    assert "nope" in info.value.message


def test_status_table_without_sources(engine: Engine) -> None:
    table = engine.query("SELECT * FROM arroyo_status")
    assert table.num_rows == 0
    assert "last_poll_at" in table.column_names


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("CREATE VIEW v AS SELECT 1", "not CREATE"),
        ("DROP VIEW v", "not DROP"),
        ("COPY (SELECT 1) TO '/tmp/never.csv'", "not COPY"),
        ("SELECT 1; SELECT 2", "2 statements"),
    ],
)
def test_only_queries_run_through_query_and_stream(
    engine: Engine, sql: str, message: str
) -> None:
    with pytest.raises(QueryError, match=message):
        engine.query(sql)
    with pytest.raises(QueryError, match=message):
        engine.stream(sql)


@pytest.mark.parametrize("sql", ["DESCRIBE t", "SHOW TABLES", "EXPLAIN SELECT * FROM t"])
def test_read_only_statements_are_allowed(engine: Engine, sql: str) -> None:
    assert engine.query(sql).num_rows >= 1


@settings(max_examples=30, deadline=None)
@given(
    polls=st.lists(
        st.lists(
            st.tuples(
                st.text(max_size=8),
                st.one_of(st.none(), st.integers(min_value=-(2**62), max_value=2**62)),
            ),
            min_size=1,
            max_size=20,
        ),
        min_size=1,
        max_size=30,
    )
)
def test_rows_round_trip_through_store_and_duckdb(
    polls: list[list[tuple[str, int | None]]],
) -> None:
    store = Store(compact=False, fanin=3)
    store.create("t", SCHEMA)
    engine = Engine(store)
    try:
        expected: list[tuple[str, int | None]] = []
        for poll in polls:
            store.append(
                "t",
                pa.record_batch(
                    [
                        pa.array([k for k, _ in poll], pa.string()),
                        pa.array([x for _, x in poll], pa.int64()),
                        pa.array([0] * len(poll), pa.int64()).view(pa.timestamp("ns")),
                    ],
                    schema=SCHEMA,
                ),
            )
            expected.extend(poll)
        store.wait_compacted()
        got = engine.query("SELECT k, x FROM t").to_pylist()
        assert [(r["k"], r["x"]) for r in got] == expected
        total = engine.query("SELECT sum(x) AS s, count(x) AS c FROM t").to_pylist()[0]
        values = [x for _, x in expected if x is not None]
        # DataFusion's sum of Int64 is an Int64 that wraps around on overflow.
        wrapped = (sum(values) + 2**63) % 2**64 - 2**63
        assert total == {"s": wrapped if values else None, "c": len(values)}
    finally:
        engine.close()
        store.close()
