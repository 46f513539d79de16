"""The write-ahead log of one file being written: the rows a flush acknowledged, on disk.

A log is a sequence of chunks, each an 8-byte little-endian length and one Arrow IPC
message: the schema first (its metadata carries the final file's path, relative to the
sink's directory), then one record batch per append. A chunk cut short by a crash or a full
disk is dropped when the log is read, and :meth:`Wal.append` truncates a failed append
away, so the log always reads back as the batches appended before.

The sink writes a log when it acknowledges rows (:meth:`Wal.extend` with the file's batches
so far, then :meth:`Wal.sync`), not per batch: rows committed before an acknowledgement
never go through a log.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc

TARGET_KEY = b"arroyo_lite.target"
_LENGTH = struct.Struct("<Q")


class Wal:
    """Appends batches to ``path`` (created); :meth:`sync` makes them durable."""

    def __init__(self, path: Path, target: str) -> None:
        self.path = path
        self.target = target
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._size = 0
        self._has_schema = False
        #: How many batches the log holds (see :meth:`extend`).
        self.logged = 0

    def append(self, batch: pa.RecordBatch) -> None:
        """Write ``batch`` as one chunk; on failure the log is as before, and it raises."""
        if not self._has_schema:
            schema = batch.schema.with_metadata({TARGET_KEY: self.target})
            self._write(schema.serialize())
            self._has_schema = True
        self._write(batch.serialize())
        self.logged += 1

    def extend(self, batches: list[pa.RecordBatch], upto: int) -> None:
        """Append ``batches[logged:upto]``: the log then holds the first ``upto`` batches
        of the file. A failure leaves the log holding a prefix of them; calling again goes
        on from there (``batches`` only grows)."""
        for batch in batches[self.logged : upto]:
            self.append(batch)

    def _write(self, data: pa.Buffer) -> None:
        parts = [memoryview(_LENGTH.pack(data.size)), memoryview(data)]
        try:
            # A short write (the disk filled up mid-chunk) is followed by writing the rest,
            # so the error raised is the OS's own (ENOSPC, EFBIG), which names the cause.
            while parts:
                written = os.writev(self._fd, parts)
                while parts and written >= len(parts[0]):
                    written -= len(parts.pop(0))
                if parts:
                    parts[0] = parts[0][written:]
        except OSError:
            os.ftruncate(self._fd, self._size)
            os.lseek(self._fd, self._size, os.SEEK_SET)
            raise
        self._size += _LENGTH.size + data.size

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)


def read(path: Path) -> tuple[str | None, list[pa.RecordBatch]]:
    """The target path and the complete batches of the log at ``path``."""
    data = pa.py_buffer(path.read_bytes())
    chunks: list[pa.Buffer] = []
    at = 0
    while at + _LENGTH.size <= data.size:
        (size,) = _LENGTH.unpack_from(data, at)
        start = at + _LENGTH.size
        if start + size > data.size:
            break  # cut short: never acknowledged
        chunks.append(data.slice(start, size))
        at = start + size
    if not chunks:
        return None, []
    try:
        schema = ipc.read_schema(chunks[0])
    except (pa.ArrowInvalid, OSError):
        return None, []
    raw = (schema.metadata or {}).get(TARGET_KEY)
    schema = schema.remove_metadata()
    batches: list[pa.RecordBatch] = []
    for chunk in chunks[1:]:
        try:
            batches.append(ipc.read_record_batch(chunk, schema))
        except (pa.ArrowInvalid, OSError):
            break
    return (raw.decode() if raw else None), batches
