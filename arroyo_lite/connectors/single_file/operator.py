"""The running sides of a ``single_file`` table.

:class:`SingleFileSource` reads the file on a worker thread (the loop never blocks on disk),
decodes :data:`BATCH_LINES` lines at a time with the table's decoder (batch boundaries matter:
each batch advances the watermark, as Arroyo's source batches of 32 do in its test suite),
and returns at the end of the file, which makes it *finished*. The number of lines read is its
durable state (``lines_read``, as Arroyo's source keeps), so a restarted source resumes.

:class:`SingleFileSink` replaces the file when it opens and appends each batch's encoded
lines, flushing them to disk whenever the runtime has nothing more queued.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
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
from arroyo_lite.errors import FatalSourceError

#: Lines decoded per batch (Arroyo's smoke tests set ``source_batch_size = 32``).
BATCH_LINES = 32
#: Lines read from disk per worker-thread call.
READ_LINES = 4096


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
            handle = await asyncio.to_thread(self.path.open, "rb")
        except OSError as e:
            raise FatalSourceError(f"failed to open file '{self.path}': {e}") from e
        self.report(SourceState.RUNNING)
        try:
            await asyncio.to_thread(_skip, handle, done)
            while True:
                lines = await asyncio.to_thread(_read, handle, READ_LINES)
                if not lines:
                    return
                for start in range(0, len(lines), BATCH_LINES):
                    chunk = lines[start : start + BATCH_LINES]
                    now = self.context.clock.time_ns()
                    result = await asyncio.to_thread(decoder.decode, b"".join(chunk), now)
                    done += len(chunk)
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
            handle.close()


def _skip(handle: IO[bytes], lines: int) -> None:
    for _ in itertools.islice(handle, lines):
        pass


def _read(handle: IO[bytes], lines: int) -> list[bytes]:
    """Up to ``lines`` lines, each ending in a newline (a last line without one gets it)."""
    read = itertools.islice(handle, lines)
    return [line if line.endswith(b"\n") else line + b"\n" for line in read]


class SingleFileSink(SinkOperator):
    """Writes each batch's encoded lines to ``path`` (replaced at open)."""

    def __init__(self, config: TableConfig, context: SourceContext) -> None:
        super().__init__(config, context)
        from arroyo_lite.formats.encode import make_encoder

        self.path = Path(_options(config).path)
        self.encoder = make_encoder(config)
        self._file: IO[bytes] | None = None

    async def open(self) -> None:
        try:
            self._file = await asyncio.to_thread(self.path.open, "wb")
        except OSError as e:
            raise FatalSourceError(f"failed to open file '{self.path}': {e}") from e

    async def write(self, batch: pa.RecordBatch) -> None:
        data = self.encoder.encode(batch)
        if data and self._file is not None:
            await asyncio.to_thread(self._file.write, data)
            self.status.bytes += len(data)

    async def flush(self) -> None:
        if self._file is not None:
            await asyncio.to_thread(self._file.flush)

    async def close(self) -> None:
        if self._file is not None:
            handle, self._file = self._file, None
            await asyncio.to_thread(handle.close)
