"""Admission of polls on one event loop: at most :data:`MAX_IN_FLIGHT` requests at once.

When more polls are due than the process can make, letting every one of them start its
request at once only fills the loop with half-done requests: each waits for the CPU with its
timeout running, the slowest time out, and the retries add load. Instead a poll waits for a
slot *before* it sends anything (:func:`admission`), so

* every table is still polled, in the order its polls fell due (:class:`PollSlots` is FIFO),
  each later than scheduled: the lateness shows as ``lag_ms`` in its status;
* a request's ``timeout_ms`` starts when it is sent, never while it queues.

The limit is per event loop, so tests that run several loops (and the worker processes of a
cluster) do not share slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections import deque
from types import TracebackType

#: Polls in flight at once per event loop. Far more than one loop can drive at a 1 s interval
#: on a small machine (a poll takes well under a millisecond of CPU, a local round trip a few
#: milliseconds), so it only binds under overload.
MAX_IN_FLIGHT = 256


class PollSlots:
    """``limit`` slots handed out in arrival order (a FIFO semaphore).

    :meth:`try_take` is the poll's hot path: a free slot with nobody queued is taken without
    a coroutine or a future (``asyncio.Semaphore.acquire`` is a coroutine that scans its
    waiters on every call). Only when the slots are all held does :meth:`take` queue. Each
    taken slot is given back once with :meth:`release`, which hands it straight to the
    longest waiter. Also an async context manager (``async with slots: ...``).
    """

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        self._free = limit
        self._loop = loop
        self._waiters: deque[asyncio.Future[None]] = deque()

    def try_take(self) -> bool:
        """Take a slot if one is free and nobody waits for one (never jumps the queue)."""
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        return False

    async def take(self) -> None:
        """Take a slot, waiting in line for one if none is free."""
        if self.try_take():
            return
        waiter = self._loop.create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot, then cancelled before using it: pass it on
            else:
                with contextlib.suppress(ValueError):  # release() may have dropped it
                    self._waiters.remove(waiter)
            raise

    def release(self) -> None:
        """Give a taken slot back: to the longest waiter still waiting, else to the pool."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._free += 1

    async def __aenter__(self) -> None:
        await self.take()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PollSlots] = (
    weakref.WeakKeyDictionary()
)


def admission() -> PollSlots:
    """The running loop's poll slots: ``async with admission(): <send the poll>`` (or
    ``try_take``/``take`` then ``release``)."""
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = PollSlots(MAX_IN_FLIGHT, loop)
    return slots
