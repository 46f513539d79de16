"""Hop and session windows, windows over windows and windowed joins of two sources: each
window is emitted once, when the watermark passes its end (Arroyo's sliding and session
window operators), late rows are dropped, and the state of closed windows is dropped. Real
DuckDB over a real store; watermarks follow the table's expression (here ``_timestamp``
itself: no delay), per source batch."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

from arroyo_lite.errors import QueryError
from arroyo_lite.query.continuous import ContinuousQuery, WindowedPlan
from arroyo_lite.query.engine import Engine
from arroyo_lite.sql.transpile import to_duckdb
from arroyo_lite.sql.windows import WindowSpec, rust_duration
from tests.support.windows import SCHEMA, SECOND, keyed, two_tables

batch = keyed


@pytest.fixture()
def engine() -> Iterator[Engine]:
    yield from two_tables()


def planned(engine: Engine, sql: str) -> tuple[ContinuousQuery, WindowedPlan]:
    """A stream of ``sql`` and its plan, which must be a windowed one."""
    stream = engine.stream(sql, timeout=30)
    assert isinstance(stream.plan, WindowedPlan)
    return stream, stream.plan


def drain(stream: ContinuousQuery) -> list[dict[str, Any]]:
    """What the stream yields for the rows stored so far (it is finished first)."""
    stream.finish()
    return [row for b in stream for row in b.to_pylist()]


def secs(value: Any) -> float:
    return float(value.timestamp())


HOP = (
    "SELECT window.start AS s, window.end AS e, n FROM (SELECT hop(interval '2 seconds', "
    "interval '4 seconds') AS window, count(*) AS n FROM t GROUP BY 1)"
)


def test_hop_windows_close_once_each_and_late_rows_are_dropped(engine: Engine) -> None:
    store = engine.store
    stream, plan = planned(
        engine,
        "SELECT hop(interval '2 seconds', interval '4 seconds') AS window, count(*) AS n "
        "FROM t GROUP BY 1",
    )
    assert plan.assigner.spec == WindowSpec("hop", 4 * SECOND, 2 * SECOND)
    store.append("t", batch((0, 1), (0, 3)))  # watermark 1: nothing closes
    store.append("t", batch((0, 5)))  # watermark 5 (bin 4): windows ending at 2 and 4 close
    first = sorted((secs(r["window"]["start"]), r["n"]) for r in drain(stream))
    # [-2, 2) holds 1; [0, 4) holds 1 and 3.
    assert first == [(-2.0, 1), (0.0, 2)]
    again = engine.stream(HOP, timeout=30)
    store.append("t", batch((0, 2.5)))  # late: before the watermark's bin (4)
    store.append("t", batch((0, 7)))  # watermark 7 (bin 6): the window ending at 6 closes
    rows = drain(again)
    assert sorted((secs(r["s"]), secs(r["e"]), r["n"]) for r in rows) == [
        (-2.0, 2.0, 1),
        (0.0, 4.0, 2),
        (2.0, 6.0, 2),  # 3 and 5: the late 2.5 is not counted
    ]
    plan = again.plan
    assert isinstance(plan, WindowedPlan) and plan.windows is not None
    assert plan.windows.late_rows == 1
    # Rows in no open window are dropped: 5 and 7 remain (windows ending at 8 and 10).
    assert plan.windows.open_rows == 2


def test_the_end_of_input_closes_the_open_hop_windows(engine: Engine) -> None:
    engine.store.append("t", batch((0, 1), (0, 3)))
    stream = engine.stream(HOP, timeout=30)
    stream.finish(end_of_input=True)
    rows = [row for b in stream for row in b.to_pylist()]
    assert sorted((secs(r["s"]), r["n"]) for r in rows) == [(-2.0, 1), (0.0, 2), (2.0, 1)]


SESSIONS = (
    "SELECT k, window.start AS s, window.end AS e, n FROM (SELECT session(interval "
    "'10 seconds') AS window, k, count(*) AS n FROM t GROUP BY window, k)"
)


def test_sessions_close_when_the_watermark_passes_their_last_row_plus_the_gap(
    engine: Engine,
) -> None:
    store = engine.store
    stream = engine.stream(
        "SELECT k, session(interval '10 seconds') AS window, count(*) AS n FROM t GROUP BY 1, 2",
        timeout=30,
    )
    assert isinstance(stream.plan, WindowedPlan)
    assert stream.plan.assigner.spec.kind == "session"
    store.append("t", batch((1, 0), (2, 1), (1, 5)))  # key 1: 0, 5; key 2: 1
    store.append("t", batch((2, 12)))  # watermark 12: key 2's session [1, 11) closes
    store.append("t", batch((1, 14)))  # joins key 1's session (14 < 5 + 10): still open
    store.append("t", batch((1, 13.5)))  # late: before the watermark (14)
    first = [
        (r["k"], secs(r["window"]["start"]), secs(r["window"]["end"]), r["n"])
        for r in drain(stream)
    ]
    assert first == [(2, 1.0, 11.0, 1)]
    again = engine.stream(SESSIONS, timeout=30)
    store.append("t", batch((3, 30)))  # watermark 30: key 1's [0, 24) and key 2's [12, 22)
    rows = sorted((r["k"], secs(r["s"]), secs(r["e"]), r["n"]) for r in drain(again))
    assert rows == [(1, 0.0, 24.0, 3), (2, 1.0, 11.0, 1), (2, 12.0, 22.0, 1)]
    plan = again.plan
    assert isinstance(plan, WindowedPlan) and plan.windows is not None
    assert plan.windows.late_rows == 1
    assert plan.windows.open_rows == 1  # closed sessions' rows are dropped: key 3's remains
    final = engine.stream(SESSIONS, timeout=30)
    final.finish(end_of_input=True)  # key 3's session is still open: the end closes it
    rows = sorted((r["k"], secs(r["s"]), r["n"]) for b in final for r in b.to_pylist())
    assert rows == [(1, 0.0, 3), (2, 1.0, 1), (2, 12.0, 1), (3, 30.0, 1)]


def test_a_gap_of_exactly_the_session_gap_starts_a_new_session(engine: Engine) -> None:
    # Arroyo's session operator: a row joins while it is before data_end + gap.
    engine.store.append("t", batch((0, 0), (0, 10), (0, 19.5)))
    result = engine.query(SESSIONS).to_pylist()
    assert sorted((secs(r["s"]), secs(r["e"]), r["n"]) for r in result) == [
        (0.0, 10.0, 1),
        (10.0, 29.5, 2),
    ]


def test_a_window_function_over_hop_windows_sees_whole_windows(engine: Engine) -> None:
    store = engine.store
    stream = engine.stream(
        "SELECT k, window.start AS s, n FROM (SELECT *, row_number() OVER "
        "(PARTITION BY window ORDER BY n DESC, k DESC) AS rn FROM "
        "(SELECT k, hop(interval '2 seconds', interval '4 seconds') AS window, count(*) AS n "
        "FROM t GROUP BY 1, 2)) WHERE rn = 1",
        timeout=30,
    )
    store.append("t", batch((1, 0.5), (2, 1), (2, 1.5)))
    store.append("t", batch((1, 2.5), (1, 3)))
    store.append("t", batch((3, 9)))  # closes the windows ending at 2, 4, 6 and 8
    rows = sorted((secs(r["s"]), r["k"], r["n"]) for r in drain(stream))
    # [-2, 2): key 2 (2 rows); [0, 4): key 1 (3 rows to 2); [2, 6): key 1 (2 rows).
    assert rows == [(-2.0, 2, 2), (0.0, 1, 3), (2.0, 1, 2)]


def test_a_tumble_over_a_tumble_groups_by_the_inner_windows_end(engine: Engine) -> None:
    # Arroyo gives a window's rows the time `end - 1 ns`: they stay in their own window.
    store = engine.store
    query = (
        "SELECT window.start AS s, count(*) AS keys FROM (SELECT tumble(interval '10 seconds') "
        "AS window FROM (SELECT k, count(*) AS n FROM t "
        "GROUP BY k, tumble(interval '10 seconds'))) GROUP BY 1"
    )
    stream = engine.stream(query, timeout=30)
    store.append("t", batch((1, 1), (2, 9.5), (1, 5)))
    store.append("t", batch((1, 12)))  # closes [0, 10): keys 1 and 2
    store.append("t", batch((1, 25)))  # closes [10, 20)
    assert sorted((secs(r["s"]), r["keys"]) for r in drain(stream)) == [(0.0, 2), (10.0, 1)]


def test_a_windowed_join_of_two_sources_waits_for_the_slower_watermark(engine: Engine) -> None:
    store = engine.store
    stream = engine.stream(
        "SELECT a.window.start AS s, a.n AS left_n, b.n AS right_n FROM "
        "(SELECT tumble(interval '10 seconds') AS window, count(*) AS n FROM t GROUP BY 1) a "
        "JOIN (SELECT tumble(interval '10 seconds') AS window, count(*) AS n FROM u GROUP BY 1) b "
        "ON a.window = b.window",
        timeout=30,
    )
    assert isinstance(stream.plan, WindowedPlan)
    store.append("t", batch((0, 1), (0, 2)))
    store.append("t", batch((0, 21)))  # t's watermark is 21, u has none yet: nothing closes
    store.append("u", batch((0, 3)))
    store.append("u", batch((0, 15)))  # u's watermark 15: [0, 10) closes on both sides
    first = drain(stream)
    assert [(secs(r["s"]), r["left_n"], r["right_n"]) for r in first] == [(0.0, 2, 1)]
    final = engine.stream(
        "SELECT a.window.start AS s, a.n AS left_n, b.n AS right_n FROM "
        "(SELECT tumble(interval '10 seconds') AS window, count(*) AS n FROM t GROUP BY 1) a "
        "JOIN (SELECT tumble(interval '10 seconds') AS window, count(*) AS n FROM u GROUP BY 1) b "
        "ON a.window = b.window",
        timeout=30,
    )
    final.finish(end_of_input=True)
    rows = sorted((secs(r["s"]), r["left_n"], r["right_n"]) for b in final for r in b.to_pylist())
    assert rows == [(0.0, 2, 1)]  # t's [20, 30) and u's [10, 20) have no partner


def test_a_hop_width_must_be_a_multiple_of_its_slide_with_arroyos_message() -> None:
    with pytest.raises(QueryError) as caught:
        to_duckdb("SELECT hop(interval '40 minutes', interval '1 hour') AS w FROM t GROUP BY 1")
    assert caught.value.message == (
        "Error during planning: hop() width 3600s currently must be a multiple of slide 2400s"
    )
    assert [rust_duration(n) for n in (1_500_000_000, 200_000_000, 1_000, 7)] == [
        "1.5s",
        "200ms",
        "1µs",
        "7ns",
    ]


def test_a_hop_whose_slide_is_its_width_is_a_tumble(engine: Engine) -> None:
    stream, plan = planned(
        engine,
        "SELECT hop(interval '5 seconds', interval '5 seconds') AS w, count(*) AS n "
        "FROM t GROUP BY 1",
    )
    assert plan.assigner.spec == WindowSpec("tumble", 5 * SECOND, 5 * SECOND)
    stream.close()


def test_a_windows_last_nanosecond_stays_in_it(engine: Engine) -> None:
    # DuckDB's time_bucket works in microseconds; the bucket must truncate, never round.
    last = pa.array([10 * SECOND - 1], pa.int64()).view(pa.timestamp("ns"))
    engine.store.append("t", pa.record_batch([pa.array([0]), last], schema=SCHEMA))
    rows = engine.query(
        "SELECT tumble(interval '10 seconds') AS w, count(*) AS n FROM t GROUP BY 1"
    ).to_pylist()
    assert [secs(r["w"]["start"]) for r in rows] == [0.0]


def test_a_window_over_a_windowed_view_closes_once_per_outer_window(engine: Engine) -> None:
    # Arroyo: a view of windowed results has rows timed at `window end - 1 ns`.
    engine.create_view(
        "per_key",
        "SELECT k, tumble(interval '10 seconds') AS window, count(*) AS n FROM t GROUP BY 1, 2",
    )
    stream = engine.stream(
        "SELECT tumble(interval '20 seconds') AS w, count(*) AS groups, sum(n) AS n "
        "FROM per_key GROUP BY 1",
        timeout=30,
    )
    assert isinstance(stream.plan, WindowedPlan)
    assert stream.plan.assigner.spec.width_ns == 20 * SECOND  # the widest closes
    store = engine.store
    store.append("t", batch((1, 1), (2, 9.5), (1, 15)))
    store.append("t", batch((1, 19.9)))  # watermark 19.9: nothing closes yet
    store.append("t", batch((3, 21)))  # closes [0, 20): groups (1,[0,10)) (2,..) (1,[10,20))
    rows = [(secs(r["w"]["start"]), r["groups"], r["n"]) for r in drain(stream)]
    assert rows == [(0.0, 3, 4)]


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ("tumble(interval '1 month')", "Windows do not support durations specified as months"),
        ("tumble(width)", "unsupported Duration expression, expect duration literal, not width"),
        ("hop(interval '1 second')", "hop() takes 2 argument(s) (slide, width), got 1"),
    ],
)
def test_window_arguments_are_checked_as_arroyo_checks_them(window: str, message: str) -> None:
    with pytest.raises(QueryError) as caught:
        to_duckdb(f"SELECT {window} AS w, count(*) FROM t GROUP BY 1")
    assert caught.value.message == message


def test_intervals_of_several_units_add_up(engine: Engine) -> None:
    _, plan = planned(engine, "SELECT tumble(interval '1 hour 30 minutes') AS w FROM t GROUP BY 1")
    assert plan.assigner.spec.width_ns == 90 * 60 * SECOND


def test_a_join_of_windowed_inputs_matches_rows_of_the_same_window_only(engine: Engine) -> None:
    # Arroyo's instant join: the join key alone (k) does not match windows of other times.
    query = (
        "SELECT a.window.start AS s, a.k AS k FROM "
        "(SELECT tumble(interval '10 seconds') AS window, k FROM t GROUP BY 1, 2) a "
        "JOIN (SELECT tumble(interval '10 seconds') AS window, k FROM u GROUP BY 1, 2) b "
        "ON a.k = b.k"
    )
    engine.store.append("t", batch((1, 1), (2, 12)))  # key 1 in [0, 10), key 2 in [10, 20)
    engine.store.append("u", batch((2, 2), (1, 13)))  # the other way round
    engine.store.append("u", batch((3, 14)))
    stream = engine.stream(query, timeout=30)
    stream.finish(end_of_input=True)
    assert [r for b in stream for r in b.to_pylist()] == []  # no key shares a window
    engine.store.append("t", batch((3, 15)))
    again = engine.stream(query, timeout=30)
    again.finish(end_of_input=True)
    assert [(secs(r["s"]), r["k"]) for b in again for r in b.to_pylist()] == [(10.0, 3)]
