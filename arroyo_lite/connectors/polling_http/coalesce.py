"""The decode step of many polls on one event loop, coalesced: one batch built per loop turn.

Polls that complete in the same turn of the event loop (at 10,000 tables, tens of them) ask
:func:`decode_soon` for their body's rows; the bodies of tables whose decoders share a
:func:`~arroyo_lite.formats.together.together_key` are decoded by one
:func:`~arroyo_lite.formats.together.decode_together` call at the start of the next turn,
which builds one batch for all their rows and gives each poll its slice. The window is that
one turn, no timer: a poll alone (a quiet process, the first poll of ``run``) waits for
nothing, and the busier the loop, the more polls share a batch.

Each poll still gets exactly what its own decoder would have returned (or raised), so status,
``bad_data`` and failures stay per table. Per event loop, like the admission slots.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Hashable

from arroyo_lite.formats.result import Decoder, DecodeResult
from arroyo_lite.formats.together import decode_together

_Item = tuple[Decoder, bytes, int, "asyncio.Future[DecodeResult]"]


class Coalescer:
    """One loop's pending bodies, by key; flushed once per loop turn. :meth:`add` is
    :func:`decode_soon` without the coroutine (a caller that keeps the loop's coalescer,
    as the polling operator does, awaits the future it returns)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.pending: dict[Hashable, list[_Item]] = {}
        self.scheduled = False
        #: Statistics (tests, benchmarks): decode_together calls and bodies they decoded.
        self.flushes = 0
        self.bodies = 0

    def add(
        self, key: Hashable, decoder: Decoder, body: bytes, received_at_ns: int
    ) -> asyncio.Future[DecodeResult]:
        future: asyncio.Future[DecodeResult] = self.loop.create_future()
        self.pending.setdefault(key, []).append((decoder, body, received_at_ns, future))
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.flush)
        return future

    def flush(self) -> None:
        self.scheduled = False
        pending, self.pending = self.pending, {}
        for items in pending.values():
            self.flushes += 1
            self.bodies += len(items)
            try:
                results = decode_together(
                    [i[0] for i in items], [i[1] for i in items], [i[2] for i in items]
                )
            except Exception as e:  # a bug in the shared step: every poll of it sees it
                results = [e] * len(items)
            for (_, _, _, future), result in zip(items, results, strict=True):
                if future.done():
                    continue  # the poll was cancelled meanwhile
                if isinstance(result, BaseException):
                    future.set_exception(result)
                else:
                    future.set_result(result)


_coalescers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Coalescer] = (
    weakref.WeakKeyDictionary()
)


def coalescer() -> Coalescer:
    """The running loop's coalescer."""
    loop = asyncio.get_running_loop()
    found = _coalescers.get(loop)
    if found is None:
        found = _coalescers[loop] = Coalescer(loop)
    return found


async def decode_soon(
    key: Hashable, decoder: Decoder, body: bytes, received_at_ns: int
) -> DecodeResult:
    """``decoder.decode(body, received_at_ns)``, decoded with the other bodies of ``key``
    that arrive in this turn of the loop. Raises what that decode would raise."""
    return await coalescer().add(key, decoder, body, received_at_ns)
