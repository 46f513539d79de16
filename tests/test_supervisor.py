"""The supervisor is the one writer of an operator's lifecycle state, for sources and sinks."""

from __future__ import annotations

import asyncio

import pyarrow as pa
import pytest

from arroyo_lite.clock import ManualClock
from arroyo_lite.config import ColumnSpec, TableConfig, TableKind
from arroyo_lite.connectors.base import (
    Emit,
    SinkOperator,
    SourceContext,
    SourceOperator,
    SourceState,
)
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.runtime.loop import Runtime
from arroyo_lite.runtime.supervisor import Supervisor
from tests.support.threaded_server import wait_for

COLUMNS = (ColumnSpec("x", pa.int64(), "BIGINT"),)


def config(name: str, kind: TableKind = TableKind.SOURCE) -> TableConfig:
    return TableConfig(name=name, kind=kind, columns=COLUMNS, connector="test")


class Reporting(SourceOperator):
    """Reports running, then backoff, then fails: the states the supervisor writes."""

    seen: list[SourceState]

    async def run(self, emit: Emit) -> None:
        self.seen = [self.status.state]
        self.report(SourceState.RUNNING)
        self.seen.append(self.status.state)
        self.report(SourceState.BACKOFF)
        self.seen.append(self.status.state)
        raise FatalSourceError("gave up")


async def test_reports_become_states_and_a_fatal_error_is_final() -> None:
    clock = ManualClock()
    op = Reporting(config("r"), SourceContext(clock=clock))
    error = await Supervisor(op, clock=clock).run(lambda b: None)
    assert isinstance(error, FatalSourceError)
    assert op.seen == [SourceState.STARTING, SourceState.RUNNING, SourceState.BACKOFF]
    assert op.status.state is SourceState.FAILED
    assert (op.status.failures, op.status.last_error) == (1, "gave up")
    assert op.status.last_error_at_ns == clock.time_ns()
    op.report(SourceState.RUNNING)  # too late: failed is final
    assert op.status.state is SourceState.FAILED


async def test_an_operator_cannot_report_a_final_state() -> None:
    class Cheating(SourceOperator):
        async def run(self, emit: Emit) -> None:
            self.report(SourceState.FINISHED)

    op = Cheating(config("c"), SourceContext())
    await Supervisor(op).run(lambda b: None)
    # The ValueError is a bug in the operator: it fails its table, with the reason.
    assert op.status.state is SourceState.FAILED
    assert "cannot report 'finished'" in (op.status.last_error or "")


class Broken(SinkOperator):
    """A sink whose second write fails; records what the runtime called."""

    def __init__(self, config: TableConfig, context: SourceContext) -> None:
        super().__init__(config, context)
        self.calls: list[str] = []

    async def open(self) -> None:
        self.calls.append("open")

    async def write(self, batch: pa.RecordBatch) -> None:
        self.calls.append(f"write {batch.num_rows}")
        if len(self.calls) > 2:
            raise FatalSourceError("disk full")

    async def flush(self) -> None:
        self.calls.append("flush")

    async def close(self) -> None:
        self.calls.append("close")


def batch(n: int) -> pa.RecordBatch:
    return pa.record_batch([pa.array(range(n), pa.int64())], names=["x"])


def test_a_failing_sink_stops_alone_and_is_closed() -> None:
    runtime = Runtime()
    try:
        sink = Broken(config("out", TableKind.SINK), SourceContext())
        feed = runtime.start_sink(sink)
        assert feed.deliver(batch(2))
        wait_for(lambda: sink.calls[-1:] == ["flush"])
        assert runtime.statuses()[0].state is SourceState.RUNNING
        feed.deliver(batch(3))
        wait_for(lambda: runtime.statuses()[0].state is SourceState.FAILED)
        assert sink.calls == ["open", "write 2", "flush", "write 3", "close"]
        status = runtime.statuses()[0]
        assert (status.rows, status.polls, status.last_error) == (2, 1, "disk full")
        assert not feed.deliver(batch(1))  # the sink is gone: nothing more is taken
    finally:
        runtime.close()


def test_finish_writes_what_is_queued_then_closes() -> None:
    class Slow(Broken):
        async def write(self, batch: pa.RecordBatch) -> None:
            await asyncio.sleep(0.01)
            self.calls.append(f"write {batch.num_rows}")

    runtime = Runtime()
    try:
        sink = Slow(config("out", TableKind.SINK), SourceContext())
        feed = runtime.start_sink(sink)
        for n in (1, 2, 3):
            assert feed.deliver(batch(n))
        feed.finish()
        assert [c for c in sink.calls if c.startswith("write")] == ["write 1", "write 2", "write 3"]
        assert sink.calls[-1] == "close"
        assert runtime.statuses()[0].state is SourceState.FINISHED
    finally:
        runtime.close()


@pytest.mark.parametrize("state", [SourceState.RUNNING, SourceState.BACKOFF])
def test_without_a_supervisor_reports_change_nothing(state: SourceState) -> None:
    op = Reporting(config("r"), SourceContext())
    op.report(state)
    assert op.status.state is SourceState.STARTING
