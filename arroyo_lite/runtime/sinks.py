"""Running a sink: a bounded queue of batches on the loop, fed from another thread.

:class:`SinkFeed` is the loop side: its :meth:`~SinkFeed.drive` coroutine (run under the
sink's :class:`~arroyo_lite.runtime.supervisor.Supervisor`) opens the sink, writes each
queued batch in order, flushes whenever the queue has run dry (so a burst of batches costs
one flush, and a quiet stream is flushed batch by batch), and closes the sink at the end.
:class:`SinkInput` is the thread side that a continuous query's pump holds: ``deliver``
blocks while the queue is full (back-pressure: a slow sink slows the query, never the
sources), and ``finish`` ends the input and waits for the sink to close.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

import pyarrow as pa

from arroyo_lite.connectors.base import SinkOperator, SourceState

#: Batches a sink may have waiting before ``deliver`` blocks.
QUEUE_BATCHES = 16
#: How long :meth:`SinkInput.finish` waits for the sink to write what is queued and close.
FINISH_TIMEOUT = 10.0

_END = None  # queued after the last batch


class SinkFeed:
    """The queue in front of one sink, and the loop that empties it (loop side)."""

    def __init__(self, sink: SinkOperator) -> None:
        self.sink = sink
        self.queue: asyncio.Queue[pa.RecordBatch | None] = asyncio.Queue(QUEUE_BATCHES)

    async def drive(self) -> None:
        """Open, write every batch until the end marker, flush when caught up, close."""
        sink, status = self.sink, self.sink.status
        clock = sink.context.clock
        await sink.open()
        sink.report(SourceState.RUNNING)
        try:
            while (batch := await self.queue.get()) is not _END:
                await sink.write(batch)
                status.polls += 1
                status.rows += batch.num_rows
                status.last_poll_at_ns = clock.time_ns()
                if self.queue.empty():
                    await sink.flush()
        finally:
            await sink.close()


class SinkInput:
    """Feeds one running sink from a thread other than the loop's (thread-safe).

    ``call`` is ``Runtime.call`` (run a coroutine on the loop, wait for its result), and
    ``closed`` tells whether the runtime is closed.
    """

    def __init__(
        self,
        call: Callable[[Coroutine[Any, Any, Any], float | None], Any],
        closed: Callable[[], bool],
        feed: SinkFeed,
        task: asyncio.Task[Any],
    ) -> None:
        self._call = call
        self._closed = closed
        self._feed = feed
        self._task = task

    @property
    def sink(self) -> SinkOperator:
        return self._feed.sink

    def deliver(self, batch: pa.RecordBatch) -> bool:
        """Queue ``batch`` for the sink, blocking while its queue is full.

        ``False`` when the sink has ended (failed or stopped): nothing more can be written.
        """
        delivered: bool = self._call(self._put(batch), None)
        return delivered

    def finish(self, timeout: float = FINISH_TIMEOUT) -> None:
        """End the input: the sink writes what is queued, flushes and closes (bounded wait).

        A sink that is failing (in backoff: its endpoint refuses, its disk is full) gets at
        most :data:`FINISH_TIMEOUT`, whatever ``timeout`` says: a bounded pipeline's end waits
        long for a sink that is writing, not for one that may never succeed.
        """
        if self._closed():
            return
        if self.sink.status.state is SourceState.BACKOFF:
            timeout = min(timeout, FINISH_TIMEOUT)
        # On a timeout the runtime's close cancels the sink (and so closes it).
        with contextlib.suppress(concurrent.futures.TimeoutError):
            self._call(self._end(timeout), timeout + 1.0)

    async def _put(self, item: pa.RecordBatch | None) -> bool:
        if self._task.done():
            return False
        put = asyncio.ensure_future(self._feed.queue.put(item))
        await asyncio.wait({put, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if not put.done():
            put.cancel()
            return False
        return True

    async def _end(self, bound: float) -> None:
        if await self._put(_END):
            await asyncio.wait({self._task}, timeout=bound)
