"""Admission of polls on one event loop: at most :data:`MAX_IN_FLIGHT` requests at once.

When more polls are due than the process can make, letting every one of them start its
request at once only fills the loop with half-done requests: each waits for the CPU with its
timeout running, the slowest time out, and the retries add load. Instead a poll waits for a
slot *before* it sends anything (:func:`admission`), so

* every table is still polled, in the order its polls fell due (asyncio's semaphore is FIFO),
  each later than scheduled: the lateness shows as ``lag_ms`` in its status;
* a request's ``timeout_ms`` starts when it is sent, never while it queues.

The limit is per event loop, so tests that run several loops (and the worker processes of a
cluster) do not share slots.
"""

from __future__ import annotations

import asyncio
import weakref
from contextlib import AbstractAsyncContextManager

#: Polls in flight at once per event loop. Far more than one loop can drive at a 1 s interval
#: on a small machine (a poll takes well under a millisecond of CPU, a local round trip a few
#: milliseconds), so it only binds under overload.
MAX_IN_FLIGHT = 256

_slots: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
    weakref.WeakKeyDictionary()
)


def admission() -> AbstractAsyncContextManager[object]:
    """The running loop's poll slots: ``async with admission(): <send the poll>``."""
    loop = asyncio.get_running_loop()
    slots = _slots.get(loop)
    if slots is None:
        slots = _slots[loop] = asyncio.Semaphore(MAX_IN_FLIGHT)
    return slots
