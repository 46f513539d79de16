"""The impulse operator under its supervisor, driven by a ManualClock (no real sleeping)."""

from __future__ import annotations

import asyncio

import pyarrow as pa
import pytest

from arroyo_lite.clock import ManualClock
from arroyo_lite.config import ColumnSpec, TableConfig, TableKind
from arroyo_lite.connectors.base import SourceContext, SourceState
from arroyo_lite.connectors.impulse.operator import ImpulseOperator
from arroyo_lite.connectors.impulse.options import ImpulseOptions
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.runtime.supervisor import Supervisor


def impulse_config(
    rate: float, count: int | None = None, interval: int | None = None
) -> TableConfig:
    return TableConfig(
        name="imp",
        kind=TableKind.SOURCE,
        columns=(
            ColumnSpec("counter", pa.int64(), "BIGINT", nullable=False),
            ColumnSpec("subtask_index", pa.int64(), "BIGINT", nullable=False),
        ),
        connector="impulse",
        connector_options=ImpulseOptions(
            event_rate=rate, message_count=count, event_time_interval_micros=interval
        ),
    )


async def wait_for_sleepers(clock: ManualClock) -> None:
    for _ in range(1000):
        if clock.sleepers:
            return
        await asyncio.sleep(0)
    raise AssertionError("operator never slept")


async def test_emits_batches_at_the_event_rate() -> None:
    clock = ManualClock()
    op = ImpulseOperator(impulse_config(rate=100), SourceContext(clock=clock))
    batches: list[pa.RecordBatch] = []
    task = asyncio.create_task(Supervisor(op, clock=clock).run(batches.append))
    await wait_for_sleepers(clock)
    assert sum(b.num_rows for b in batches) == 1  # the first row is due at once
    await clock.advance(1.0)
    rows = sum(b.num_rows for b in batches)
    assert rows == 101  # rows 0..100 are due at t=1s
    # batched: far fewer batches than rows
    assert len(batches) <= 1 + 1.0 / 0.05 + 1
    table = pa.Table.from_batches(batches)
    assert table.column("counter").to_pylist() == list(range(101))
    assert set(table.column("subtask_index").to_pylist()) == {0}
    assert table.schema == op.config.output_schema()
    assert op.status.rows == 101 and op.status.state is SourceState.RUNNING
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_stops_after_message_count() -> None:
    clock = ManualClock()
    op = ImpulseOperator(impulse_config(rate=10, count=25), SourceContext(clock=clock))
    batches: list[pa.RecordBatch] = []
    task = asyncio.create_task(Supervisor(op, clock=clock).run(batches.append))
    await wait_for_sleepers(clock)
    await clock.advance(10.0)
    await asyncio.wait_for(task, timeout=30)
    counters = pa.Table.from_batches(batches).column("counter").to_pylist()
    assert counters == list(range(25))
    assert op.status.state is SourceState.FINISHED


async def test_event_time_interval_spaces_timestamps() -> None:
    clock = ManualClock()
    config = impulse_config(rate=1000, count=5, interval=1_000_000)
    op = ImpulseOperator(config, SourceContext(clock=clock))
    batches: list[pa.RecordBatch] = []
    task = asyncio.create_task(Supervisor(op, clock=clock).run(batches.append))
    await wait_for_sleepers(clock)
    await clock.advance(1.0)
    await asyncio.wait_for(task, timeout=30)
    ts = pa.Table.from_batches(batches).column("_timestamp").cast(pa.int64()).to_pylist()
    assert [b - a for a, b in zip(ts, ts[1:], strict=False)] == [1_000_000_000] * 4


async def test_resumes_counter_from_state() -> None:
    clock = ManualClock()
    context = SourceContext(clock=clock, state={"counter": (7).to_bytes(8, "big")})
    op = ImpulseOperator(impulse_config(rate=10, count=10), context)
    batches: list[pa.RecordBatch] = []
    task = asyncio.create_task(Supervisor(op, clock=clock).run(batches.append))
    await wait_for_sleepers(clock)
    await clock.advance(5.0)
    await asyncio.wait_for(task, timeout=30)
    assert pa.Table.from_batches(batches).column("counter").to_pylist() == [7, 8, 9]


def test_bad_rate_is_a_fatal_source_error() -> None:
    with pytest.raises(FatalSourceError, match="event_rate"):
        ImpulseOperator(impulse_config(rate=0), SourceContext())
