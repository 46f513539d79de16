"""Time, injected: source operators ask a :class:`Clock` for now and for sleeping.

Production code uses :class:`SystemClock`. Tests use :class:`ManualClock` and move time forward
with :meth:`ManualClock.advance`, so a test of a 60 s backoff takes microseconds and never
depends on how fast the machine is.
"""

from __future__ import annotations

import heapq
import itertools
import time
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import asyncio


class Clock(Protocol):
    """What an operator needs to know about time."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes backwards (for schedules and latencies)."""
        ...

    def time_ns(self) -> int:
        """Wall-clock nanoseconds since the Unix epoch (for ``_timestamp``)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds`` (non-positive: yield once)."""
        ...


class SystemClock:
    """The real clock."""

    # The functions themselves rather than methods calling them: a poll asks for the time
    # six times, and a Python frame around each builtin is a share of a small poll's CPU.
    monotonic = staticmethod(time.monotonic)
    time_ns = staticmethod(time.time_ns)

    async def sleep(self, seconds: float) -> None:
        # asyncio is imported where time is spent, not with the module: `validate` (which
        # imports the connector classes, hence this module) never starts an event loop.
        import asyncio

        await asyncio.sleep(max(0.0, seconds))


class ManualClock:
    """A clock that moves only when told to; sleepers wake in deadline order.

    All methods must be called on the event loop that runs the sleepers.
    """

    def __init__(self, start: float = 1_000.0, wall_ns: int = 1_700_000_000_000_000_000) -> None:
        self._now = start
        self._wall_offset_ns = wall_ns - int(start * 1e9)
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def monotonic(self) -> float:
        return self._now

    def time_ns(self) -> int:
        return self._wall_offset_ns + int(self._now * 1e9)

    async def sleep(self, seconds: float) -> None:
        import asyncio

        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + seconds, next(self._seq), future))
        await future

    @property
    def sleepers(self) -> int:
        """How many tasks are waiting on this clock."""
        return sum(1 for _, _, f in self._sleepers if not f.done())

    async def advance(self, seconds: float) -> None:
        """Move time forward, waking every sleeper whose deadline passes, in order.

        Between wake-ups the loop runs until the woken tasks have gone quiet, so a task that
        sleeps again inside the advanced span is woken again too.
        """
        target = self._now + seconds
        while self._sleepers and self._sleepers[0][0] <= target:
            deadline, _, future = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            if not future.done():
                future.set_result(None)
            await _settle()
        self._now = target
        await _settle()


async def _settle(rounds: int = 20) -> None:
    """Let ready tasks run: a few loop iterations, enough for wake-up chains to finish."""
    import asyncio

    for _ in range(rounds):
        await asyncio.sleep(0)
