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

A poll either awaits its body's decode (:meth:`Coalescer.add`, a future) or hands over what
to do with it (:meth:`Coalescer.then`, a :class:`Continuation` called by the flush itself):
the polling operator emits a poll's rows from the flush, so the poll's task is not woken
once more just to take its decoded rows.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Hashable

from arroyo_lite.formats.result import Decoder, DecodeResult
from arroyo_lite.formats.together import decode_together


class Continuation:
    """What to do with one body's decode, called by the flush (:meth:`Coalescer.then`).

    ``deliver`` gets the decode (or the exception the body's decoder raised) once, unless
    :meth:`cancel` was called before the flush. It must not raise: a continuation handles
    its own failures (one table's must never reach the other tables of its flush).
    """

    __slots__ = ("deliver", "delivered", "cancelled", "waiter")

    def __init__(self, deliver: Callable[[DecodeResult | BaseException], None]) -> None:
        self.deliver = deliver
        self.delivered = False
        self.cancelled = False
        #: Set by :meth:`wait`: resolved once delivered.
        self.waiter: asyncio.Future[None] | None = None

    def done(self) -> bool:
        return self.delivered or self.cancelled

    def cancel(self) -> None:
        self.cancelled = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.cancel()

    def _run(self, result: DecodeResult | BaseException) -> None:
        self.delivered = True
        self.deliver(result)
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def wait(self, loop: asyncio.AbstractEventLoop) -> None:
        """Return once delivered (at once if it was)."""
        if self.done():
            return
        if self.waiter is None:
            self.waiter = loop.create_future()
        await self.waiter


_Item = tuple[Decoder, bytes, int, "asyncio.Future[DecodeResult] | Continuation"]


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
        self._queue(key, (decoder, body, received_at_ns, future))
        return future

    def then(
        self,
        key: Hashable,
        decoder: Decoder,
        body: bytes,
        received_at_ns: int,
        deliver: Callable[[DecodeResult | BaseException], None],
    ) -> Continuation:
        """Decode ``body`` with this turn's others and call ``deliver`` with its decode (or
        the exception its decoder raised) from the flush; the returned continuation can be
        cancelled (nothing is delivered) or waited for."""
        continuation = Continuation(deliver)
        self._queue(key, (decoder, body, received_at_ns, continuation))
        return continuation

    def _queue(self, key: Hashable, item: _Item) -> None:
        items = self.pending.get(key)
        if items is None:
            self.pending[key] = [item]
        else:
            items.append(item)
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.flush)

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
            for (_, _, _, target), result in zip(items, results, strict=True):
                if isinstance(target, Continuation):
                    # (Continuation.done() inline: once per body.)
                    if not (target.delivered or target.cancelled):
                        target._run(result)
                elif target.done():
                    continue  # the poll was cancelled meanwhile
                elif isinstance(result, BaseException):
                    target.set_exception(result)
                else:
                    target.set_result(result)


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
