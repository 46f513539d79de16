"""Per-source status as an Arrow table, queryable with SQL as ``arroyo_status``.

The runtime collects :class:`~arroyo_lite.connectors.base.SourceStatus` snapshots; this module
only gives them a fixed table shape (one row per source) so ``SELECT * FROM arroyo_status``
works like any other table. Times are ``TIMESTAMP`` (UTC wall clock, microseconds).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from arroyo_lite.config import STATUS_TABLE
from arroyo_lite.connectors.base import SourceStatus

__all__ = ["STATUS_SCHEMA", "STATUS_TABLE", "status_table"]

# Microseconds, not nanoseconds: pyarrow turns these into datetime objects without pandas.
_TS = pa.timestamp("us")

_FIELDS: list[pa.Field[Any]] = [
    pa.field("table", pa.string(), nullable=False),
    pa.field("connector", pa.string(), nullable=False),
    pa.field("state", pa.string(), nullable=False),
    pa.field("polls", pa.int64(), nullable=False),
    pa.field("failures", pa.int64(), nullable=False),
    pa.field("consecutive_failures", pa.int64(), nullable=False),
    pa.field("rows", pa.int64(), nullable=False),
    pa.field("bytes", pa.int64(), nullable=False),
    pa.field("dropped_rows", pa.int64(), nullable=False),
    pa.field("unchanged_polls", pa.int64(), nullable=False),
    pa.field("deduplicated_rows", pa.int64(), nullable=False),
    pa.field("updated_rows", pa.int64(), nullable=False),
    pa.field("deleted_rows", pa.int64(), nullable=False),
    pa.field("state_keys", pa.int64(), nullable=False),
    pa.field("state_bytes", pa.int64(), nullable=False),
    pa.field("last_status_code", pa.int32()),
    pa.field("last_error", pa.string()),
    pa.field("last_error_at", _TS),
    pa.field("last_poll_at", _TS),
    pa.field("next_poll_at", _TS),
    pa.field("lag_ms", pa.float64()),
    pa.field("rate_limited_until", _TS),
]
STATUS_SCHEMA = pa.schema(_FIELDS)


def status_table(statuses: Sequence[SourceStatus]) -> pa.Table:
    """One row per source, in the order given, with :data:`STATUS_SCHEMA`."""
    columns: dict[str, list[Any]] = {
        "table": [s.table for s in statuses],
        "connector": [s.connector for s in statuses],
        "state": [str(s.state) for s in statuses],
        "polls": [s.polls for s in statuses],
        "failures": [s.failures for s in statuses],
        "consecutive_failures": [s.consecutive_failures for s in statuses],
        "rows": [s.rows for s in statuses],
        "bytes": [s.bytes for s in statuses],
        "dropped_rows": [s.dropped_rows for s in statuses],
        "unchanged_polls": [s.unchanged_polls for s in statuses],
        "deduplicated_rows": [s.deduplicated_rows for s in statuses],
        "updated_rows": [s.updated_rows for s in statuses],
        "deleted_rows": [s.deleted_rows for s in statuses],
        "state_keys": [s.state_keys for s in statuses],
        "state_bytes": [s.state_bytes for s in statuses],
        "last_status_code": [s.last_status_code for s in statuses],
        "last_error": [s.last_error for s in statuses],
        "last_error_at": [_micros(s.last_error_at_ns) for s in statuses],
        "last_poll_at": [_micros(s.last_poll_at_ns) for s in statuses],
        "next_poll_at": [_micros(s.next_poll_at_ns) for s in statuses],
        "lag_ms": [s.lag_ms for s in statuses],
        "rate_limited_until": [_micros(s.rate_limited_until_ns) for s in statuses],
    }
    return pa.table(
        [pa.array(columns[f.name], f.type) for f in STATUS_SCHEMA], schema=STATUS_SCHEMA
    )


def _micros(ns: int | None) -> int | None:
    return None if ns is None else ns // 1_000
