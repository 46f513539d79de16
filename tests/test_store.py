"""The table store: append, compaction, retention, consistent snapshots."""

from __future__ import annotations

import threading

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arroyo_lite.config import TIMESTAMP_COLUMN, RetentionSpec, TableKind
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.runtime.store import Store, StoreError

SCHEMA = pa.schema(
    [
        pa.field("x", pa.int64()),
        pa.field(TIMESTAMP_COLUMN, pa.timestamp("ns"), nullable=False),
    ]
)


def batch(start: int, n: int, ts: int = 0) -> pa.RecordBatch:
    return pa.record_batch(
        [
            pa.array(range(start, start + n), pa.int64()),
            pa.array([ts] * n, pa.int64()).view(pa.timestamp("ns")),
        ],
        schema=SCHEMA,
    )


@pytest.fixture()
def store() -> Store:
    s = Store(compact=False, fanin=4)
    s.create("t", SCHEMA)
    return s


def xs(store: Store, name: str = "t") -> list[int]:
    values: list[int] = store.snapshot([name])[name].to_table().column("x").to_pylist()
    return values


def test_compaction_keeps_rows_in_order_and_bounds_batch_count(store: Store) -> None:
    for i in range(1000):
        store.append("t", batch(i * 3, 3))
    assert len(store.snapshot()["t"].batches) == 1000
    store.wait_compacted()
    snap = store.snapshot()["t"]
    assert xs(store) == list(range(3000))
    # LSM tiers of fanin 4: at most 3 leftovers per tier, a handful of tiers.
    assert len(snap.batches) <= 4 * 6
    assert (snap.first_row, snap.end_row) == (0, 3000)


def test_background_compaction_thread_compacts() -> None:
    store = Store(fanin=4)
    try:
        store.create("t", SCHEMA)
        for i in range(64):
            store.append("t", batch(i, 1))
        # The thread is woken by appends; wait (bounded) for it to fold the 64 batches.
        for _ in range(2000):
            if len(store.snapshot()["t"].batches) < 64:
                break
            threading.Event().wait(0.005)
        assert len(store.snapshot()["t"].batches) < 64
        assert xs(store) == list(range(64))
    finally:
        store.close()


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=200))
def test_compaction_round_trip(sizes: list[int]) -> None:
    store = Store(compact=False, fanin=3, max_batch_rows=200)
    store.create("t", SCHEMA)
    start = 0
    for n in sizes:
        store.append("t", batch(start, n))
        start += n
    store.wait_compacted()
    assert xs(store) == list(range(start))
    assert all(b.num_rows <= max(200, max(sizes)) for b in store.snapshot()["t"].batches)


def test_since_returns_only_newer_rows_across_compaction(store: Store) -> None:
    for i in range(10):
        store.append("t", batch(i * 10, 10))
    mark = store.snapshot()["t"].end_row
    for i in range(10, 20):
        store.append("t", batch(i * 10, 10))
    store.wait_compacted()
    newer = store.snapshot()["t"].since(mark)
    assert newer.column("x").to_pylist() == list(range(100, 200))
    assert store.snapshot()["t"].since(195).column("x").to_pylist() == list(range(195, 200))


def test_retention_max_rows_keeps_the_newest_rows() -> None:
    store = Store(compact=False, fanin=4)
    store.create("t", SCHEMA, retention=RetentionSpec(max_rows=25))
    for i in range(100):
        store.append("t", batch(i * 7, 7))
        assert store.snapshot()["t"].num_rows == min(25, (i + 1) * 7)
    assert xs(store) == list(range(700 - 25, 700))
    snap = store.snapshot()["t"]
    assert (snap.first_row, snap.end_row) == (675, 700)
    # A row older than retention is gone for since() too.
    assert snap.since(0).num_rows == 25


def test_retention_max_age_drops_old_rows() -> None:
    now = [10_000_000_000]
    store = Store(compact=False, time_ns=lambda: now[0])
    store.create("t", SCHEMA, retention=RetentionSpec(max_age_seconds=5))
    store.append("t", batch(0, 3, ts=1_000_000_000))  # 9 s old: expired at snapshot
    store.append("t", batch(3, 3, ts=8_000_000_000))  # 2 s old
    assert xs(store) == [3, 4, 5]
    now[0] = 14_000_000_000
    assert xs(store) == []


def test_memory_table_replace(store: Store) -> None:
    store.create("m", SCHEMA, kind=TableKind.MEMORY)
    store.replace("m", pa.Table.from_batches([batch(5, 2)]))
    assert xs(store, "m") == [5, 6]
    assert store.kind("M") is TableKind.MEMORY  # names are case-insensitive


def test_wrong_schema_is_a_fatal_source_error(store: Store) -> None:
    other = pa.record_batch([pa.array(["a"])], names=["y"])
    with pytest.raises(FatalSourceError, match="expected"):
        store.append("t", other)


def test_metadata_only_differences_are_relabelled(store: Store) -> None:
    b = batch(0, 2)
    relabelled = pa.RecordBatch.from_arrays(
        b.columns, schema=SCHEMA.with_metadata({"source": "x"})
    )
    store.append("t", relabelled)
    assert store.snapshot()["t"].batches[0].schema.equals(SCHEMA, check_metadata=True)


def test_unknown_and_duplicate_tables(store: Store) -> None:
    with pytest.raises(StoreError, match="does not exist"):
        store.append("nope", batch(0, 1))
    with pytest.raises(StoreError, match="already exists"):
        store.create("T", SCHEMA)


def test_snapshots_are_consistent_under_concurrent_appends() -> None:
    store = Store(fanin=4)
    store.create("a", SCHEMA)
    store.create("b", SCHEMA)
    done = threading.Event()

    def writer() -> None:
        for i in range(3000):
            # a and b always get the same rows, a first: a snapshot may see a one ahead.
            store.append("a", batch(i, 1))
            store.append("b", batch(i, 1))
        done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while not done.is_set():
            snap = store.snapshot()
            a, b = snap["a"].to_table(), snap["b"].to_table()
            assert a.num_rows in (b.num_rows, b.num_rows + 1)
            assert a.column("x").to_pylist() == list(range(a.num_rows))
    finally:
        thread.join()
        store.close()
    assert xs(store, "b") == list(range(3000))


def test_age_retention_slices_an_ordered_prefix_without_copying() -> None:
    now = [100_000_000_000]
    store = Store(compact=False, time_ns=lambda: now[0])
    store.create("t", SCHEMA, retention=RetentionSpec(max_age_seconds=10))
    times = pa.array([85, 88, 91, 95, 99], pa.int64())
    big = pa.record_batch(
        [
            pa.array(range(5), pa.int64()),
            pc.multiply(times, 1_000_000_000).view(pa.timestamp("ns")),
        ],
        schema=SCHEMA,
    )
    store.append("t", big)
    snap = store.snapshot()["t"]
    assert snap.to_table().column("x").to_pylist() == [2, 3, 4]  # 91, 95, 99 are within 10 s
    kept = snap.batches[0]
    # A slice shares the original buffers: no copy was made.
    assert kept.column("x").buffers()[1].address == big.column("x").buffers()[1].address
    assert (snap.first_row, snap.end_row) == (2, 5)


@pytest.mark.parametrize(
    "sizes",
    [
        [10, 20] * 1500,  # polls straddling a tier boundary (fanin 16: tiers 0 and 1)
        [10] * 500 + [300] * 200 + [10] * 2000,  # a burst of big polls, then small ones again
        [12, 15, 30, 8, 17, 40] * 500,
    ],
    ids=["alternating", "burst", "mixed"],
)
def test_compaction_bounds_the_batch_count_when_poll_sizes_vary(sizes: list[int]) -> None:
    # Under load poll sizes vary; batches must not be stranded between bigger ones for good
    # (a table grew from 33 to 433 batches in 3 minutes that way).
    store = Store(compact=False, fanin=16, max_batch_rows=1 << 20)
    store.create("t", SCHEMA)
    start = 0
    for i, n in enumerate(sizes):
        store.append("t", batch(start, n))
        start += n
        if i % 16 == 15:
            store.compact()  # as the store's thread does while rows keep arriving
    store.wait_compacted()
    assert xs(store) == list(range(start))
    assert len(store.snapshot()["t"].batches) <= 64
