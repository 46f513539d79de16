"""The write-ahead log of one file being written: the rows a flush acknowledged, on disk.

A log is a sequence of chunks, each an 8-byte little-endian length and one complete Arrow
IPC stream (schema, one batch, end). A chunk cut short by a crash or a full disk is dropped
when the log is read, and :meth:`Wal.append` truncates a failed append away, so the log
always reads back as the batches appended before. The first chunk's schema carries the
final file's path (relative to the sink's directory) in its metadata.
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
        self._first = True

    def append(self, batch: pa.RecordBatch) -> None:
        """Write ``batch`` as one chunk; on failure the log is as before, and it raises."""
        schema = batch.schema
        if self._first:
            schema = schema.with_metadata({**(schema.metadata or {}), TARGET_KEY: self.target})
            batch = batch.replace_schema_metadata(schema.metadata)
        sink = pa.BufferOutputStream()
        with ipc.new_stream(sink, schema) as writer:
            writer.write_batch(batch)
        data = sink.getvalue()
        try:
            os.write(self._fd, _LENGTH.pack(data.size))
            written = os.write(self._fd, data)
            if written != data.size:
                raise OSError(f"short write to {self.path}")
        except OSError:
            os.ftruncate(self._fd, self._size)
            os.lseek(self._fd, self._size, os.SEEK_SET)
            raise
        self._size += _LENGTH.size + data.size
        self._first = False

    def sync(self) -> None:
        os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)


def read(path: Path) -> tuple[str | None, list[pa.RecordBatch]]:
    """The target path and the complete batches of the log at ``path``."""
    data = path.read_bytes()
    batches: list[pa.RecordBatch] = []
    target: str | None = None
    at = 0
    while at + _LENGTH.size <= len(data):
        (size,) = _LENGTH.unpack_from(data, at)
        start = at + _LENGTH.size
        if start + size > len(data):
            break  # cut short: never acknowledged
        try:
            reader = ipc.open_stream(pa.py_buffer(data[start : start + size]))
            chunk = list(reader)
        except (pa.ArrowInvalid, OSError):
            break
        if target is None:
            raw = (reader.schema.metadata or {}).get(TARGET_KEY)
            target = raw.decode() if raw else None
        batches.extend(b.replace_schema_metadata(None) for b in chunk)
        at = start + size
    return target, batches
