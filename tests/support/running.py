"""Running one source operator under its supervisor (as the runtime does) as a task, for tests.

:class:`RunningOperator` is the part every source test shares: ``async with`` starts the
operator's :class:`~arroyo_lite.runtime.supervisor.Supervisor` as a task (so ``status.state``
is set as in production), collects the batches it emits, and on exit cancels the task and
waits for it. The task's result is the failure that stopped the source (``None`` if none).
Subclasses say how the operator is built (:meth:`RunningOperator.make_operator`) and which
clock is the default: :class:`tests.support.polling.RunningSource`,
:class:`tests.support.stream_source.RunningStream`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import pyarrow as pa

from arroyo_lite.clock import Clock, ManualClock, SystemClock
from arroyo_lite.config import TIMESTAMP_COLUMN, TableConfig
from arroyo_lite.connectors.base import SourceContext, SourceOperator
from arroyo_lite.errors import SourceError
from arroyo_lite.runtime.supervisor import Supervisor
from tests.support.http_app import wait_until


@dataclass
class RunningOperator:
    """``async with RunningOperator(config) as src:`` runs the source until the block ends."""

    config: TableConfig
    clock: Clock = field(default_factory=SystemClock)
    state: MutableMapping[str, bytes] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    batches: list[pa.RecordBatch] = field(default_factory=list)
    #: Called with each batch before it is kept (a test's slow consumer).
    on_batch: Callable[[pa.RecordBatch], None] | None = None

    def __post_init__(self) -> None:
        context = SourceContext(clock=self.clock, state=self.state, env=self.env)
        self.operator = self.make_operator(context)
        self.supervisor = Supervisor(self.operator, clock=self.clock)
        self.task: asyncio.Task[SourceError | None] | None = None

    def make_operator(self, context: SourceContext) -> SourceOperator:
        """The operator to run for :attr:`config`."""
        raise NotImplementedError

    @property
    def status(self) -> Any:
        return self.operator.status

    def _emit(self, batch: pa.RecordBatch) -> None:
        if self.on_batch is not None:
            self.on_batch(batch)
        self.batches.append(batch)

    def rows(self) -> list[dict[str, Any]]:
        """Emitted rows as dicts, without ``_timestamp``."""
        return [r for b in self.batches for r in b.drop_columns([TIMESTAMP_COLUMN]).to_pylist()]

    def column(self, name: str) -> list[Any]:
        """Every emitted value of column ``name``, in order."""
        return [v for b in self.batches for v in b.column(name).to_pylist()]

    @property
    def manual(self) -> ManualClock:
        """The clock, for a test that drives it (a :class:`ManualClock`)."""
        assert isinstance(self.clock, ManualClock)
        return self.clock

    def pending_delay(self) -> float:
        """Seconds until the next poll or connection attempt, as the status says (manual
        clock: exact)."""
        assert self.status.next_poll_at_ns is not None
        return float((self.status.next_poll_at_ns - self.clock.time_ns()) / 1e9)

    async def backoff_delays(self, attempts: int) -> list[float]:
        """The waits before each of the first ``attempts`` retries of a source that keeps
        failing: after attempt N fails and the status announces the next one, note the delay
        and advance the manual clock by it."""
        delays = []
        for attempt in range(1, attempts + 1):

            def announced(done: int = attempt) -> bool:
                return self.status.polls == done and self.status.next_poll_at_ns is not None

            await wait_until(announced, what=f"attempt {attempt}")
            delays.append(self.pending_delay())
            await self.manual.advance(delays[-1])
        return delays

    async def __aenter__(self) -> Self:
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
        # The task's own outcome (cancelled, or a fatal error a test already checked) is not
        # this block's business.
        await asyncio.gather(self.task, return_exceptions=True)
