"""The sink's write-ahead journal: the rows its acknowledgements covered, on disk.

One journal per sink (``__in_progress/journal.wal``), shared by its open files, so that one
acknowledgement is one append and one ``fsync`` whatever the number of files, and the
acknowledgement is atomic across them. It is a sequence of *records*, one per
acknowledgement::

    u64 length | u32 crc32 of the payload | payload
    payload = Arrow IPC streams | header (JSON) | u32 header length

The header holds the sink's *state* after the acknowledgement (a dict: ``seq``, increasing
over the sink's life, ``taken``, ``serial``, ``open``: rows acknowledged per open file,
``committing`` for a commit's record) and, for each file with new rows, its name, target
path and the size of its stream (its schema, then its new batches), in the order of the
streams. The streams are written from the batches' own buffers (no copy of the rows), the
checksum computed as they are written.
A record only counts when it is whole and its checksum matches: a record cut short or torn
by a crash or a full disk (whatever the filesystem left of it) is dropped when the journal
is read, and :meth:`Journal.append` truncates a failed append away. A record is written
once and read back only by the recovery after a crash: the files are built from the
batches in memory.

Batches are logged without ``_timestamp`` (no file format writes it), which spares a
quarter of the bytes of a narrow table.
"""

from __future__ import annotations

import io
import json
import os
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from arroyo_lite.config import TIMESTAMP_COLUMN

JOURNAL = "journal.wal"
_HEAD = struct.Struct("<QI")  # payload length, crc32 of the payload
_HEADER_LENGTH = struct.Struct("<I")
#: Buffers per ``writev`` (below every platform's ``IOV_MAX``).
_IOV_BATCH = 512


def loggable(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` as the journal keeps it: without ``_timestamp``."""
    if TIMESTAMP_COLUMN in batch.schema.names:
        return batch.drop_columns([TIMESTAMP_COLUMN])
    return batch


@dataclass
class FileEntry:
    """New rows of one file in a record: ``name``, ``target``, its batches."""

    name: str
    target: str
    batches: list[pa.RecordBatch]
    #: Bytes its messages took in the record (set by :meth:`Journal.append`).
    size: int = 0


class Journal:
    """Appends records to ``path`` (created empty); each append is made durable before it
    returns (``fsync``; the directory too after the first, as the file is new)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.size = 0
        self._new = True

    def append(self, state: dict[str, Any], files: list[FileEntry]) -> int:
        """Write and fsync one record; the bytes it took. On failure the journal is as
        before, and it raises (the OS's own error: ``ENOSPC``, ``EFBIG``)."""
        body = _Gathered()
        entries = []
        for entry in files:
            if not entry.batches:
                continue
            start = body.size
            with ipc.new_stream(body, loggable(entry.batches[0]).schema) as stream:
                for batch in entry.batches:
                    stream.write_batch(loggable(batch))
            entry.size = body.size - start
            entries.append([entry.name, entry.target, entry.size])
        header = json.dumps({"state": state, "files": entries}).encode()
        body.write(header)
        body.write(_HEADER_LENGTH.pack(len(header)))
        self._write([_HEAD.pack(body.size, body.crc), *body.parts])
        os.fsync(self._fd)
        if self._new:
            _sync_dir(self.path.parent)
            self._new = False
        written = _HEAD.size + body.size
        self.size += written
        return written

    def _write(self, parts: list[Any]) -> None:
        views = [memoryview(part) for part in parts]
        try:
            # A short write (the disk filled up mid-record) is followed by writing the rest,
            # so the error raised is the OS's own, which names the cause.
            while views:
                written = os.writev(self._fd, views[:_IOV_BATCH])
                while views and written >= len(views[0]):
                    written -= len(views.pop(0))
                if views:
                    views[0] = views[0][written:]
        except OSError:
            os.ftruncate(self._fd, self.size)
            os.lseek(self._fd, self.size, os.SEEK_SET)
            raise

    def close(self) -> None:
        os.close(self._fd)


@dataclass
class Logged:
    """What a journal holds: the state of its last whole record (``None``: no record) and,
    per file name, its target and batches in order."""

    state: dict[str, Any] | None = None
    files: dict[str, tuple[str, list[pa.RecordBatch]]] = field(default_factory=dict)


def read(path: Path) -> Logged:
    """The whole records of the journal at ``path`` (up to the first one cut short, torn
    or unreadable)."""
    data = pa.py_buffer(path.read_bytes())
    logged = Logged()
    at = 0
    while at + _HEAD.size <= data.size:
        length, crc = _HEAD.unpack_from(data, at)
        start = at + _HEAD.size
        if start + length > data.size:
            break  # cut short: never acknowledged
        payload = data.slice(start, length)
        if zlib.crc32(payload) != crc:
            break  # torn
        try:
            state, files = _decode(payload)
        except (ValueError, KeyError, TypeError, struct.error, pa.ArrowInvalid, OSError):
            break
        for name, target, batches in files:
            logged.files.setdefault(name, (target, []))[1].extend(batches)
        logged.state = state
        at = start + length
    return logged


def _decode(
    payload: pa.Buffer,
) -> tuple[dict[str, Any], list[tuple[str, str, list[pa.RecordBatch]]]]:
    end = payload.size - _HEADER_LENGTH.size
    (header_length,) = _HEADER_LENGTH.unpack_from(payload, end)
    header = json.loads(payload.slice(end - header_length, header_length).to_pybytes())
    files = []
    at = 0
    for name, target, size in header["files"]:
        batches = list(ipc.open_stream(payload.slice(at, size)))
        at += size
        files.append((str(name), str(target), batches))
    state = header["state"]
    if not isinstance(state, dict):
        raise ValueError("no state")
    return state, files


class _Gathered(io.RawIOBase):
    """An output stream that keeps what is written to it (pyarrow hands over the record
    batches' own buffers, and copies of the rest) and its crc32, for one ``writev``."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[Any] = []
        self.size = 0
        self.crc = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.parts.append(data)
        self.crc = zlib.crc32(data, self.crc)  # (releases the GIL on large buffers)
        n = data.size if isinstance(data, pa.Buffer) else len(data)
        self.size += n
        return int(n)


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
