"""The running sides of a ``single_file`` table.

:class:`SingleFileSource` reads the file on a worker thread (the loop never blocks on disk)
through a :class:`LineReader`, decodes :data:`BATCH_LINES` lines at a time with the table's
decoder (batch boundaries matter: each batch advances the watermark, as Arroyo's source
batches of 32 do in its test suite), and returns at the end of the file, which makes it
*finished*. The number of lines read is its durable state (``lines_read``, as Arroyo's source
keeps), so a restarted source resumes.

:class:`SingleFileSink` replaces the file when it opens (or, with ``--state-dir``, writes it
again keeping what the replay repeats: :mod:`.resume`) and appends each batch's encoded
lines, flushing them whenever the runtime has nothing more queued.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import select
import threading
from pathlib import Path
from typing import IO

import pyarrow as pa

from arroyo_lite.config import FramingSpec, TableConfig
from arroyo_lite.connectors.base import (
    Emit,
    SinkOperator,
    SourceContext,
    SourceOperator,
    SourceState,
)
from arroyo_lite.connectors.single_file.options import SingleFileOptions
from arroyo_lite.connectors.single_file.resume import ResumedFile
from arroyo_lite.errors import FatalSourceError

#: Lines decoded per batch (Arroyo's smoke tests set ``source_batch_size = 32``).
BATCH_LINES = 32
#: Lines skipped per step when resuming.
READ_LINES = 4096
#: Bytes asked of the file per read.
READ_BYTES = 1 << 20
#: How long a read waits on a pipe before it checks whether the source is stopping (s).
WAIT_S = 0.2


def _options(config: TableConfig) -> SingleFileOptions:
    options = config.connector_options
    if not isinstance(options, SingleFileOptions):
        raise FatalSourceError(f"table '{config.name}' has no single_file options")
    return options


class SingleFileSource(SourceOperator):
    """Reads ``path`` once, from the line after ``state['lines_read']`` to the end."""

    def __init__(self, config: TableConfig, context: SourceContext) -> None:
        super().__init__(config, context)
        self.path = Path(_options(config).path)

    async def run(self, emit: Emit) -> None:
        from arroyo_lite.formats import make_decoder

        # Each line is one message, as Arroyo's source reads it (for raw_string and
        # unstructured JSON too: a batch of lines is never one value).
        framed = dataclasses.replace(self.config, framing=self.config.framing or FramingSpec())
        decoder = make_decoder(framed)
        done = int.from_bytes(self.context.state.get("lines_read", b""), "big")
        try:
            lines = await asyncio.to_thread(LineReader, self.path)
        except OSError as e:
            raise FatalSourceError(f"failed to open file '{self.path}': {e}") from e
        self.report(SourceState.RUNNING)
        try:
            await asyncio.to_thread(lines.skip, done)
            while chunks := await asyncio.to_thread(lines.batches, BATCH_LINES):
                for count, chunk in chunks:
                    now = self.context.clock.time_ns()
                    result = await asyncio.to_thread(decoder.decode, chunk, now)
                    done += count
                    self.context.state["lines_read"] = done.to_bytes(8, "big")
                    self.status.polls += 1
                    self.status.dropped_rows += result.dropped
                    self.status.last_poll_at_ns = now
                    if result.batch is not None and result.batch.num_rows:
                        self.status.rows += result.batch.num_rows
                        emit(result.batch)
                    # Let the consumers see this batch (and its watermark) before the next.
                    await asyncio.sleep(0)
        finally:
            lines.stopping = True  # a read waiting on a pipe gives up within WAIT_S
            await asyncio.to_thread(lines.close)


class LineReader:
    """The lines of a file, read as they become available (blocking: use a worker thread).

    A regular file reads to its end at once; a named pipe (or a file another process is
    still writing, until its writer closes it) yields lines as they arrive. Every batch
    holds exactly ``lines`` lines except the last one at the end of the file, wherever
    reads happened to cut: batch boundaries (hence watermarks) do not depend on timing.
    """

    def __init__(self, path: Path) -> None:
        self.fd = os.open(path, os.O_RDONLY)
        self._lock = threading.Lock()
        self._buffer = bytearray()
        self._eof = False
        #: Set (from another thread) to make a waiting read give up.
        self.stopping = False

    def _fill(self) -> bool:
        """Read what is available into the buffer; ``False`` at the end (or when stopping)."""
        if self._eof:
            return False
        while not self.stopping:
            ready, _, _ = select.select([self.fd], [], [], WAIT_S)
            if not ready:
                continue
            data = os.read(self.fd, READ_BYTES)
            if not data:
                self._eof = True
                return False
            self._buffer += data
            return True
        return False

    def _cut(self, lines: int) -> int:
        """The offset just past the ``lines``-th line end in the buffer, or 0."""
        at = 0
        for _ in range(lines):
            at = self._buffer.find(b"\n", at) + 1
            if at == 0:
                return 0
        return at

    def skip(self, lines: int) -> None:
        """Skip the first ``lines`` lines (those read before a restart)."""
        with self._lock:
            while lines:
                step = min(lines, READ_LINES)
                cut = self._cut(step)
                if cut:
                    del self._buffer[:cut]
                    lines -= step
                elif not self._fill():
                    self._buffer.clear()  # the file is shorter than what was read before
                    return

    def batches(self, lines: int) -> list[tuple[int, bytes]]:
        """The next batches of ``lines`` lines each (with their line count), all that are
        available but at least one: ``[]`` at the end of the file. The last line of a file
        without a final line end gets one."""
        with self._lock:
            out: list[tuple[int, bytes]] = []
            while not out:
                while cut := self._cut(lines):
                    out.append((lines, bytes(self._buffer[:cut])))
                    del self._buffer[:cut]
                if out or self._fill():
                    continue
                if self.stopping:
                    return []
                if self._buffer:  # the end: the lines left, fewer than a batch
                    tail = bytes(self._buffer)
                    self._buffer.clear()
                    tail = tail if tail.endswith(b"\n") else tail + b"\n"
                    return [(tail.count(b"\n"), tail)]
                return []
            return out

    def close(self) -> None:
        with self._lock:  # after the read in progress, which sees `stopping`
            if self.fd >= 0:
                os.close(self.fd)
                self.fd = -1


class SingleFileSink(SinkOperator):
    """Writes each batch's encoded lines to ``path``: replaced at open, or, when the query
    replays restored tables (``--state-dir``), written again from its start keeping what
    the replay repeats (:class:`~.resume.ResumedFile`)."""

    def __init__(self, config: TableConfig, context: SourceContext) -> None:
        super().__init__(config, context)
        from arroyo_lite.formats.encode import make_encoder

        self.path = Path(_options(config).path)
        self.encoder = make_encoder(config)
        self._file: IO[bytes] | ResumedFile | None = None

    async def open(self) -> None:
        try:
            if self.context.replays_inputs:
                self._file = await asyncio.to_thread(ResumedFile, self.path)
            else:
                self._file = await asyncio.to_thread(self.path.open, "wb")
        except OSError as e:
            raise FatalSourceError(f"failed to open file '{self.path}': {e}") from e

    async def write(self, batch: pa.RecordBatch) -> None:
        data = self.encoder.encode(batch)
        if data and self._file is not None:
            await asyncio.to_thread(self._file.write, data)
            self.status.bytes += len(data)
            if isinstance(self._file, ResumedFile):
                self.status.extra["kept_bytes"] = self._file.kept

    async def flush(self) -> None:
        if self._file is not None:
            await asyncio.to_thread(self._file.flush)

    async def close(self) -> None:
        if self._file is not None:
            handle, self._file = self._file, None
            await asyncio.to_thread(handle.close)
