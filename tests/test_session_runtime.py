"""The runtime under a session: supervision of failing sources, clean stop, injected clock."""

from __future__ import annotations

import asyncio
import logging

import pyarrow as pa
import pytest

from arroyo_lite import Session
from arroyo_lite.clock import ManualClock
from arroyo_lite.config import ColumnSpec, TableConfig, TableKind
from arroyo_lite.connectors.base import Emit, SourceContext, SourceOperator, SourceState
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.runtime.loop import Runtime
from arroyo_lite.runtime.store import Store
from arroyo_lite.secrets import Secrets
from tests.support.threaded_server import wait_for

COLUMNS = (ColumnSpec("x", pa.int64(), "BIGINT"),)


def config(name: str) -> TableConfig:
    return TableConfig(name=name, kind=TableKind.SOURCE, columns=COLUMNS, connector="test")


class Crashing(SourceOperator):
    """A test source whose run() fails with an unexpected exception carrying a secret."""

    async def run(self, emit: Emit) -> None:
        self.report(SourceState.RUNNING)
        await asyncio.sleep(0)
        raise RuntimeError("boom with s3cr3t-token inside")


class Fatal(SourceOperator):
    async def run(self, emit: Emit) -> None:
        raise FatalSourceError("bad data: row 3 is not an object")


class Forever(SourceOperator):
    """Emits one row per loop turn until cancelled; records that cancellation reached it."""

    cancelled = False

    async def run(self, emit: Emit) -> None:
        self.report(SourceState.RUNNING)
        n = 0
        try:
            while True:
                emit(
                    pa.record_batch(
                        [pa.array([n]), pa.array([0], pa.int64()).view(pa.timestamp("ns"))],
                        schema=self.config.output_schema(),
                    )
                )
                n += 1
                await asyncio.sleep(0.001)
        except asyncio.CancelledError:
            Forever.cancelled = True
            raise


def test_failures_stop_only_their_table_and_secrets_are_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = Store()
    runtime = Runtime()
    try:
        for name in ("crash", "fatal", "ok"):
            store.create(name, config(name).output_schema())
        secrets = Secrets.of(["s3cr3t-token"])
        with caplog.at_level(logging.ERROR, logger="arroyo_lite.runtime"):
            runtime.start_source(
                Crashing(config("crash"), SourceContext()),
                lambda b: store.append("crash", b),
                secrets=secrets,
            )
            runtime.start_source(
                Fatal(config("fatal"), SourceContext()), lambda b: store.append("fatal", b)
            )
            runtime.start_source(
                Forever(config("ok"), SourceContext()), lambda b: store.append("ok", b)
            )
            statuses = wait_for(
                lambda: (s := {x.table: x for x in runtime.statuses()})
                and s["crash"].state is SourceState.FAILED
                and s["fatal"].state is SourceState.FAILED
                and s
            )
        assert statuses["crash"].last_error == "internal error: RuntimeError: boom with **** inside"
        assert statuses["fatal"].last_error == "bad data: row 3 is not an object"
        assert "s3cr3t" not in caplog.text
        assert "Traceback" in caplog.text  # the crash is logged with its traceback
        before = store.snapshot()["ok"].num_rows
        wait_for(lambda: store.snapshot()["ok"].num_rows > before + 10)
        assert {s.table: s.state for s in runtime.statuses()}["ok"] is SourceState.RUNNING
    finally:
        runtime.close()
        store.close()
    assert Forever.cancelled
    assert {s.table: s.state for s in runtime.statuses()}["ok"] is SourceState.STOPPED


def test_session_with_a_manual_clock_is_deterministic() -> None:
    clock = ManualClock()
    with Session(clock=clock) as session:
        session.execute("CREATE TABLE imp WITH (connector = 'impulse', event_rate = '10');")
        # Wait until the impulse source sleeps on the clock, then move time by exactly 2 s.
        wait_for(lambda: session.runtime.run_sync(lambda: clock.sleepers) >= 1)
        session.runtime.call(clock.advance(2.0))
        rows = session.query("SELECT counter FROM imp ORDER BY counter")
        assert rows.column("counter").to_pylist() == list(range(21))
        status = session.status()[0]
        assert status.last_poll_at_ns == clock.time_ns()
