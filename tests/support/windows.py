"""Shared by the window tests: two live tables ``t`` and ``u`` of ``(k, _timestamp)`` rows
whose watermark is the event time itself (``WATERMARK FOR`` without delay), and batches of
rows given as (key, seconds)."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from arroyo_lite.config import TIMESTAMP_COLUMN
from arroyo_lite.query.engine import Engine
from arroyo_lite.runtime.store import Store

SCHEMA = pa.schema(
    [
        pa.field("k", pa.int64()),
        pa.field(TIMESTAMP_COLUMN, pa.timestamp("ns"), nullable=False),
    ]
)
SECOND = 1_000_000_000


def keyed(*rows: tuple[int, float]) -> pa.RecordBatch:
    """Rows of (key, event time in seconds)."""
    keys = pa.array([k for k, _ in rows], pa.int64())
    times = pa.array([round(s * SECOND) for _, s in rows], pa.int64()).view(pa.timestamp("ns"))
    return pa.record_batch([keys, times], schema=SCHEMA)


def two_tables() -> Iterator[Engine]:
    """An engine over ``t`` and ``u`` (use as a pytest fixture body)."""
    store = Store()
    store.create("t", SCHEMA)
    store.create("u", SCHEMA)
    engine = Engine(store)
    engine.watermarks.update(t='"_timestamp"', u='"_timestamp"')
    yield engine
    engine.close()
    store.close()
