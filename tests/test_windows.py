"""Windowed plans: a tumble window is emitted once, when the watermark passes its end; rows
of a closed window are late and dropped; the end of input closes the rest. Watermarks follow
Arroyo's generator: per source batch, the minimum of the expression, emitted when the batch's
newest event is more than a second past the previous emission."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pytest

from arroyo_lite.config import TIMESTAMP_COLUMN
from arroyo_lite.query.continuous import ContinuousQuery, WindowedPlan
from arroyo_lite.query.engine import Engine
from arroyo_lite.runtime.store import Store

SCHEMA = pa.schema(
    [
        pa.field("k", pa.int64()),
        pa.field(TIMESTAMP_COLUMN, pa.timestamp("ns"), nullable=False),
    ]
)
SECOND = 1_000_000_000
QUERY = (
    "SELECT window.start AS s, count(*) AS n FROM "
    "(SELECT tumble(interval '10 seconds') AS window, count(*) AS c FROM t GROUP BY 1, k) "
    "GROUP BY 1"
)


def batch(*seconds: float) -> pa.RecordBatch:
    times = pa.array([int(s * SECOND) for s in seconds], pa.int64()).view(pa.timestamp("ns"))
    keys = pa.array(range(len(seconds)), pa.int64())
    return pa.record_batch([keys, times], schema=SCHEMA)


@pytest.fixture()
def store() -> Iterator[Store]:
    store = Store()
    store.create("t", SCHEMA)
    yield store
    store.close()


def results(stream: ContinuousQuery) -> list[tuple[int, object]]:
    """Every (window start in seconds, n) the stream yields for the rows stored so far."""
    rows = [row for b in stream for row in b.to_pylist()]
    return sorted((int(r["s"].timestamp()), r["n"]) for r in rows)


def test_windows_close_once_when_the_watermark_passes_them(store: Store) -> None:
    engine = Engine(store)
    engine.watermarks["t"] = '"_timestamp"'  # WATERMARK FOR: no delay
    stream = engine.stream(QUERY, timeout=30)
    assert isinstance(stream.plan, WindowedPlan)
    store.append("t", batch(1, 2, 3))  # watermark 1: nothing closes
    store.append("t", batch(11, 12))  # watermark 11: window [0, 10) closes, 3 keys
    store.append("t", batch(4))  # late: its window was emitted
    store.append("t", batch(13, 25))  # watermark 13: [10, 20) still open
    store.append("t", batch(31))  # watermark 31: [10, 20) and [20, 30) close
    stream.finish()  # a stop, not the end of input: [30, 40) stays open
    assert results(stream) == [(0, 3), (10, 2), (20, 1)]
    windows = stream.plan.windows
    assert windows is not None and windows.late_rows == 1
    assert windows.open_rows == 1
    again = engine.stream(QUERY, timeout=30)
    again.finish(end_of_input=True)  # the end of input closes every window
    assert results(again) == [(0, 3), (10, 2), (20, 1), (30, 1)]
    engine.close()


def test_the_watermark_is_emitted_per_batch_at_most_once_a_second_of_event_time(
    store: Store,
) -> None:
    engine = Engine(store)
    engine.watermarks["t"] = '"_timestamp"'
    stream = engine.stream(QUERY, timeout=30)
    store.append("t", batch(9))  # emitted: 9
    store.append("t", batch(9.5, 9.9))  # 9.9 is not more than 1 s past 9: none
    store.append("t", batch(12, 10.5))  # 12 is: the batch's minimum, 10.5, is emitted
    store.append("t", batch(8))  # late under 10.5 (its window [0, 10) closed)
    stream.finish()
    assert results(stream) == [(0, 2)]  # keys 0 and 1 (n counts keys of the window)
    plan = stream.plan
    assert isinstance(plan, WindowedPlan) and plan.watermark.current == int(10.5 * SECOND)
    assert plan.windows is not None and plan.windows.late_rows == 1
    engine.close()


def test_the_default_watermark_is_a_second_behind(store: Store) -> None:
    engine = Engine(store)  # no watermark set: Arroyo's default, _timestamp - 1 s
    stream = engine.stream(QUERY, timeout=30)
    store.append("t", batch(1, 2))
    store.append("t", batch(10.5))  # watermark 9.5: nothing closes
    store.append("t", batch(12))  # watermark 11: [0, 10) closes
    stream.finish()
    assert results(stream) == [(0, 2)]
    engine.close()
