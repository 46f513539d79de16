"""Run a push source (sse, websocket) built from real SQL against a real server.

:func:`source_table` compiles one ``CREATE TABLE`` with the SQL front end;
:class:`RunningStream` runs the connector's operator under a
:class:`~arroyo_lite.runtime.supervisor.Supervisor` (as the runtime does, so ``status.state``
is set as in production) as a task, collects its batches, and cancels it on exit. The task's
result is the failure that stopped the source (``None`` if none). The clock is the real one
unless a test passes a ``ManualClock``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import pyarrow as pa

from arroyo_lite.clock import Clock, SystemClock
from arroyo_lite.config import TIMESTAMP_COLUMN, TableConfig
from arroyo_lite.connectors.base import SourceContext, SourceOperator
from arroyo_lite.connectors.registry import get_connector
from arroyo_lite.errors import SourceError
from arroyo_lite.runtime.supervisor import Supervisor
from arroyo_lite.sql import compile_sql


def source_table(sql: str, env: Mapping[str, str] | None = None) -> TableConfig:
    """The one source table ``sql`` declares (validated by the real front end)."""
    program = compile_sql(sql + "\nSELECT 1;", env=dict(env or {}))
    (table,) = program.tables
    return table


@dataclass
class RunningStream:
    """``async with RunningStream(config) as src:`` runs the source until the block ends."""

    config: TableConfig
    clock: Clock = field(default_factory=SystemClock)
    state: MutableMapping[str, bytes] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    batches: list[pa.RecordBatch] = field(default_factory=list)
    #: Called with each batch before it is kept (a test's slow consumer).
    on_batch: Callable[[pa.RecordBatch], None] | None = None

    def __post_init__(self) -> None:
        context = SourceContext(clock=self.clock, state=self.state, env=self.env)
        assert self.config.connector is not None
        self.operator: SourceOperator = get_connector(self.config.connector).make_operator(
            self.config, context
        )
        self.supervisor = Supervisor(self.operator, clock=self.clock)
        self.task: asyncio.Task[SourceError | None] | None = None

    @property
    def status(self) -> Any:
        return self.operator.status

    def _emit(self, batch: pa.RecordBatch) -> None:
        if self.on_batch is not None:
            self.on_batch(batch)
        self.batches.append(batch)

    def rows(self) -> list[dict[str, Any]]:
        return [r for b in self.batches for r in b.drop_columns([TIMESTAMP_COLUMN]).to_pylist()]

    def column(self, name: str) -> list[Any]:
        return [v for b in self.batches for v in b.column(name).to_pylist()]

    async def __aenter__(self) -> RunningStream:
        self.task = asyncio.create_task(self.supervisor.run(self._emit))
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self.task is not None
        if not self.task.done():
            self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
