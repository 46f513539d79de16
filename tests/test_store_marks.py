"""A table's batch boundaries (``runtime/marks.py``): what a snapshot and a range read give,
the cap, and marks forgotten with the rows retention drops, through the real store."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from arroyo_lite.config import TIMESTAMP_COLUMN, RetentionSpec, TableKind
from arroyo_lite.query.windows import segments
from arroyo_lite.runtime.marks import CHUNK, MarkLog
from arroyo_lite.runtime.store import Store

SCHEMA = pa.schema([pa.field("x", pa.int64()), pa.field(TIMESTAMP_COLUMN, pa.timestamp("ns"))])


def batch(start: int, n: int) -> pa.RecordBatch:
    return pa.record_batch(
        [pa.array(range(start, start + n), pa.int64()), pa.array([0] * n, pa.timestamp("ns"))],
        schema=SCHEMA,
    )


@settings(max_examples=200, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 5), min_size=0, max_size=3 * CHUNK),
    low=st.integers(-1, 4 * CHUNK),
    span=st.integers(0, 4 * CHUNK),
)
def test_between_is_the_marks_of_the_range(sizes: list[int], low: int, span: int) -> None:
    log = MarkLog(cap=10 * CHUNK)
    marks, end = [], 0
    for size in sizes:
        end += size
        marks.append(end)
        log.append(end)
    view = log.view()
    assert list(view) == marks and len(view) == len(log) == len(marks)
    assert view.between(low, low + span) == [m for m in marks if low < m <= low + span]


def test_a_view_does_not_change_as_the_log_grows() -> None:
    log = MarkLog(cap=4 * CHUNK)
    for mark in range(1, CHUNK + 10):
        log.append(mark)
    view = log.view()
    for mark in range(CHUNK + 10, 3 * CHUNK):
        log.append(mark)
    assert list(view) == list(range(1, CHUNK + 10))


def test_the_log_keeps_about_cap_marks_and_drops_the_oldest() -> None:
    log = MarkLog(cap=2 * CHUNK)
    for mark in range(1, 10 * CHUNK + 1):
        log.append(mark)
    kept = list(log.view())
    assert 2 * CHUNK <= len(kept) <= 3 * CHUNK
    assert kept == list(range(10 * CHUNK - len(kept) + 1, 10 * CHUNK + 1))


def test_row_retention_forgets_the_marks_of_the_rows_it_drops() -> None:
    store = Store(compact=False)
    store.create("t", SCHEMA, kind=TableKind.SOURCE, retention=RetentionSpec(max_rows=100))
    for i in range(20 * CHUNK):
        store.append("t", batch(i, 1))
    snap = store.snapshot(["t"])["t"]
    assert snap.num_rows == 100
    kept = list(snap.marks)
    # Whole chunks are forgotten: at most the kept rows' marks and one chunk more.
    assert len(kept) <= 100 + CHUNK
    assert kept[-1] == snap.end_row
    # The kept rows still come as the source appended them: one batch per poll.
    assert [b.num_rows for b in snap.source_batches(snap.first_row)] == [1] * 100


def test_memory_table_replaced_forgets_every_mark() -> None:
    store = Store(compact=False)
    store.create("m", SCHEMA, kind=TableKind.MEMORY)
    for i in range(2 * CHUNK):
        store.append("m", batch(i, 1))
    store.replace("m", pa.Table.from_batches([batch(0, 3)]))
    snap = store.snapshot(["m"])["m"]
    assert list(snap.marks) == [] and snap.num_rows == 3


def test_segments_cut_a_delta_at_the_source_batches() -> None:
    store = Store(compact=False, fanin=4)
    store.create("t", SCHEMA, kind=TableKind.SOURCE)
    sizes = [3, 1, 4, 1, 5, 9, 2, 6]
    start = 0
    for size in sizes:
        store.append("t", batch(start, size))
        start += size
    store.wait_compacted()
    snap = store.snapshot(["t"])["t"]
    assert len(snap.batches) < len(sizes)  # compaction merged them...
    delta = snap.since(4)
    # ... and a delta from row 4 on is still cut where each source batch ended.
    assert [piece.num_rows for piece in segments(delta, 4, snap.marks)] == sizes[2:]
