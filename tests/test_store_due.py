"""The store's bookkeeping for many tables: only due tables are planned for compaction,
only tables with an age bound are trimmed by the store's thread, waiters are woken."""

from __future__ import annotations

import threading

import pyarrow as pa

from arroyo_lite.config import TIMESTAMP_COLUMN, RetentionSpec
from arroyo_lite.runtime.store import Store

SCHEMA = pa.schema(
    [
        pa.field("x", pa.int64()),
        pa.field(TIMESTAMP_COLUMN, pa.timestamp("ns"), nullable=False),
    ]
)


def batch(start: int, n: int = 1, ts: int = 0) -> pa.RecordBatch:
    return pa.record_batch(
        [
            pa.array(range(start, start + n), pa.int64()),
            pa.array([ts] * n, pa.int64()).view(pa.timestamp("ns")),
        ],
        schema=SCHEMA,
    )


def batch_count(store: Store, name: str) -> int:
    return len(store.snapshot([name])[name].batches)


def test_due_pass_plans_only_tables_with_fanin_new_batches() -> None:
    store = Store(compact=False, fanin=4)
    for name in ("due", "short"):
        store.create(name, SCHEMA)
    for i in range(4):
        store.append("due", batch(i))
    for i in range(3):
        store.append("short", batch(i))
    assert store.compact(due_only=True) == 1
    assert batch_count(store, "due") == 1
    assert batch_count(store, "short") == 3  # not due: left alone
    assert store.compact(due_only=True) == 0  # planned: not due again until 4 more
    for i in range(4, 8):
        store.append("due", batch(i))
    assert store.compact(due_only=True) == 1
    assert store.snapshot(["due"])["due"].to_table().column("x").to_pylist() == list(range(8))
    assert store.compact() == 0  # a full pass: "short" has fewer than fanin batches
    assert batch_count(store, "short") == 3


def test_dropped_due_table_is_not_planned_and_a_new_one_of_its_name_is() -> None:
    store = Store(compact=False, fanin=4)
    store.create("t", SCHEMA)
    for i in range(4):
        store.append("t", batch(i))
    store.drop("t")
    assert store.compact(due_only=True) == 0
    store.create("t", SCHEMA)
    for i in range(4):
        store.append("t", batch(i))
    assert store.compact(due_only=True) == 1
    assert batch_count(store, "t") == 1


def test_store_thread_trims_aged_tables_and_compacts_due_ones() -> None:
    now = [10**18]
    store = Store(fanin=4, time_ns=lambda: now[0])
    try:
        store.create("aged", SCHEMA, retention=RetentionSpec(max_age_seconds=1.0))
        store.create("plain", SCHEMA)
        store.append("aged", batch(0, 3, ts=now[0]))
        for i in range(4):
            store.append("plain", batch(i, ts=0))  # old rows, but no age bound
        now[0] += 5 * 10**9
        pause = threading.Event()
        for _ in range(200):  # the thread runs every half second, or when a table is due
            snap = store.snapshot(["plain"])["plain"]
            if len(snap.batches) == 1 and store.snapshot(["aged"])["aged"].num_rows == 0:
                break
            pause.wait(0.05)
        assert store.snapshot(["aged"])["aged"].num_rows == 0
        plain = store.snapshot(["plain"])["plain"]
        assert plain.num_rows == 4 and len(plain.batches) == 1
    finally:
        store.close()


def test_waiter_is_woken_by_an_append() -> None:
    store = Store(compact=False)
    store.create("t", SCHEMA)
    version = store.version
    seen: list[int] = []
    ready = threading.Event()

    def wait() -> None:
        ready.set()
        seen.append(store.wait_for_change(version, timeout=30))

    thread = threading.Thread(target=wait)
    thread.start()
    ready.wait()
    while not store._waiting:  # the waiter is inside wait_for_change
        threading.Event().wait(0.001)
    store.append("t", batch(0))
    thread.join(timeout=30)
    assert seen and seen[0] != version
