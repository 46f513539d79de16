"""Batching for push sources: messages in, one decoded ``RecordBatch`` per flush out.

A push source receives many small messages; decoding and emitting each alone would cost a
decoder call and a store append per message. :class:`MessageBatcher` collects them and
flushes (decodes with :class:`~arroyo_lite.formats.messages.MessageDecoder`, emits, counts)
when :data:`MAX_MESSAGES` or :data:`MAX_BYTES` are reached, or when its ticker fires every
:data:`FLUSH_INTERVAL` seconds (Arroyo's source flush ticker is 50 ms too).

Bounded memory, by backpressure: :meth:`MessageBatcher.add` says when the batch is full and the
reader then awaits :meth:`MessageBatcher.hand_off`: that starts decoding the full batch (on a
worker thread when it is big) and returns at once, so the next batch fills while it decodes;
but if the previous batch is still decoding, it waits for it first, and the socket is not read
meanwhile (TCP then slows the server down). At most two batches are held: the one decoding
and the one filling. ``status.extra['max_buffered_bytes']`` records the largest
buffer seen, so the bound can be checked.

Source state (the SSE last event id) is committed with the rows it describes: a value given
with :meth:`MessageBatcher.note_state` while messages are pending is written to
``SourceContext.state`` only after those messages are emitted, so a state directory never
saves an id past rows it does not hold.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from arroyo_lite.config import TableConfig
from arroyo_lite.connectors.base import Emit, SourceContext, SourceStatus
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.formats.messages import MessageDecoder
from arroyo_lite.secrets import Secrets

logger = logging.getLogger("arroyo_lite.streaming")

#: Seconds between two flushes of a partly filled batch.
FLUSH_INTERVAL = 0.05
#: A batch is flushed at once when it holds this many messages ...
MAX_MESSAGES = 8192
#: ... or this many bytes.
MAX_BYTES = 1024 * 1024
#: Batches larger than this are decoded on a worker thread (smaller ones inline: a thread hop
#: would cost more); a decoder that runs DuckDB queries always runs on a worker thread.
OFFLOAD_BYTES = 256 * 1024


class MessageBatcher:
    """Collects one source's messages and emits them as decoded batches, in order.

    All methods run on the event loop. ``secrets`` are masked out of decoding errors.
    """

    def __init__(
        self,
        config: TableConfig,
        context: SourceContext,
        status: SourceStatus,
        emit: Emit,
        *,
        secrets: Secrets | None = None,
        max_messages: int = MAX_MESSAGES,
        max_bytes: int = MAX_BYTES,
    ) -> None:
        self.decoder = MessageDecoder(config)
        self.config = config
        self.context = context
        self.status = status
        self.emit = emit
        self.secrets = secrets or Secrets()
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._messages: list[bytes] = []
        self._bytes = 0
        self._state: dict[str, bytes] = {}
        self._lock = asyncio.Lock()
        self._decoding: asyncio.Task[None] | None = None  # a handed-off batch
        self._in_flight = 0  # bytes of the batch being decoded
        self._dropping = False
        #: When the newest pending message arrived (wall ns): the batch's ``_timestamp``.
        self.received_at_ns = 0
        status.extra.setdefault("max_buffered_bytes", 0)

    @property
    def pending(self) -> int:
        """Messages waiting for the next flush."""
        return len(self._messages)

    def add(self, message: bytes) -> bool:
        """Queue one message; ``True`` means the batch is full: ``await flush()`` now."""
        self._messages.append(message)
        self._bytes += len(message)
        return len(self._messages) >= self.max_messages or self._bytes >= self.max_bytes

    def extend(self, messages: list[bytes], size: int) -> bool:
        """Queue several messages of ``size`` bytes in total; same answer as :meth:`add`."""
        self._messages.extend(messages)
        self._bytes += size
        return len(self._messages) >= self.max_messages or self._bytes >= self.max_bytes

    def note_state(self, key: str, value: bytes) -> None:
        """Set ``context.state[key]`` once every message queued so far has been emitted."""
        if self._messages or self._lock.locked():
            self._state[key] = value
        else:
            self.context.state[key] = value

    async def hand_off(self) -> None:
        """Start flushing a full batch; first wait for the previous hand-off (backpressure).

        A failure of an earlier hand-off (bad data under ``fail``) is raised here.
        """
        await self.settle()
        self._decoding = asyncio.get_running_loop().create_task(self.flush())

    async def settle(self) -> None:
        """Wait for the batch handed off last (raising its failure, if any)."""
        task, self._decoding = self._decoding, None
        if task is not None:
            await task

    async def run_ticker(self) -> None:
        """Flush a partly filled batch every :data:`FLUSH_INTERVAL` seconds, until cancelled."""
        clock = self.context.clock
        while True:
            await clock.sleep(FLUSH_INTERVAL)
            if self._messages or self._state:
                await self.flush()

    async def drive(self, reader: Coroutine[Any, Any, None]) -> None:
        """Run ``reader`` (the source's read loop) with the ticker beside it.

        Whichever fails first stops the other (a bad batch under ``bad_data = 'fail'`` found
        by the ticker stops the reading); when ``reader`` returns, what is queued is flushed.
        Cancelling ``drive`` cancels both.
        """
        loop = asyncio.get_running_loop()
        ticker = loop.create_task(self.run_ticker())
        main = loop.create_task(reader)
        first = main
        try:
            done, _ = await asyncio.wait({ticker, main}, return_when=asyncio.FIRST_COMPLETED)
            first = main if main in done else ticker
            if first is main and main.exception() is None:
                await _stop(ticker)
                await self.settle()  # the reader ended: what it queued is still emitted
                await self.flush()
                return
        finally:
            for task in (main, ticker, self._decoding):
                await _stop(task)
        first.result()  # raises the first failure

    async def flush(self) -> None:
        """Decode and emit what is queued (in arrival order), then commit the noted state.

        Raises :class:`FatalSourceError` (masked) for bad data under ``bad_data = 'fail'``.
        """
        async with self._lock:
            messages, self._messages = self._messages, []
            size, self._bytes = self._bytes, 0
            state, self._state = self._state, {}
            buffered = size + self._in_flight
            if buffered > self.status.extra["max_buffered_bytes"]:
                self.status.extra["max_buffered_bytes"] = buffered
            if messages:
                received = self.received_at_ns or self.context.clock.time_ns()
                self._in_flight = size
                try:
                    if size > OFFLOAD_BYTES or self.decoder.runs_queries:
                        result = await asyncio.to_thread(self.decoder.decode, messages, received)
                    else:
                        result = self.decoder.decode(messages, received)
                except FatalSourceError as e:
                    raise FatalSourceError(self.secrets.mask(e.message), hint=e.hint) from e
                finally:
                    self._in_flight = 0
                self._count(result.dropped, result.errors)
                if result.batch is not None and result.batch.num_rows:
                    self.status.rows += result.batch.num_rows
                    self.emit(result.batch)
            self.context.state.update(state)

    def _count(self, dropped: int, errors: tuple[str, ...]) -> None:
        if not dropped:
            self._dropping = False
            return
        self.status.dropped_rows += dropped
        detail = self.secrets.mask("; ".join(errors) or "bad data")
        message = f"dropped {dropped} bad record(s): {detail}"
        self.status.last_error = message
        self.status.last_error_at_ns = self.context.clock.time_ns()
        # Warn once per run of batches with bad records, then quietly.
        level = logging.DEBUG if self._dropping else logging.WARNING
        logger.log(level, "source %s: %s", self.config.name, message)
        self._dropping = True


async def _stop(task: asyncio.Task[None] | None) -> None:
    """Cancel ``task`` unless it is done, and wait for it; its outcome is the caller's to read."""
    if task is None:
        return
    if not task.done():
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)
