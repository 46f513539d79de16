"""The running ``stdout`` sink: encode each batch, write it to standard output, flush.

The stream is ``sys.stdout``'s binary buffer as it is when the sink is built (so a caller
that redirects ``sys.stdout`` first, as click's test runner does, gets the rows). Writes run
on a worker thread: a slow reader of the pipe must not stall the event loop, and with it
every source.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from typing import BinaryIO

import pyarrow as pa

from arroyo_lite.config import TableConfig
from arroyo_lite.connectors.base import SinkOperator, SourceContext
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.formats.encode import make_encoder


class StdoutSink(SinkOperator):
    """Writes ``format``-encoded rows (JSON lines by default) to ``out`` (default: stdout)."""

    def __init__(
        self, config: TableConfig, context: SourceContext, *, out: BinaryIO | None = None
    ) -> None:
        super().__init__(config, context)
        self.encoder = make_encoder(config)
        self.out: BinaryIO = out if out is not None else sys.stdout.buffer

    async def write(self, batch: pa.RecordBatch) -> None:
        data = self.encoder.encode(batch)
        if data:
            await self._io(self.out.write, data)
            self.status.bytes += len(data)

    async def flush(self) -> None:
        await self._io(self.out.flush)

    async def _io(self, fn: Callable[..., object], *args: bytes) -> None:
        try:
            await asyncio.to_thread(fn, *args)
        except (BrokenPipeError, ValueError) as e:  # ValueError: the stream was closed
            # The reader went away (``run ... | head``): this sink is done, cleanly.
            raise FatalSourceError(f"cannot write to stdout: {e}") from e
