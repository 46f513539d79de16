"""The sink's write-ahead journal: the rows its acknowledgements covered, on disk.

One journal per sink (``__in_progress/journal.wal``), shared by its open files, so that one
acknowledgement is one append and one ``fsync`` whatever the number of files, and the
acknowledgement is atomic across them. It is a sequence of *records*, one per
acknowledgement::

    u64 length | payload | u32 crc32 of the payload | zeros up to a multiple of ALIGN
    payload = Arrow IPC streams | header (JSON) | u32 header length

The header holds the sink's *state* after the acknowledgement (a dict: ``seq``, increasing
over the sink's life, ``taken``, ``serial``, ``open``: rows acknowledged per open file,
``committing`` for a commit's record) and, for each file with new rows, its name, target
path and the size of its stream (its schema, then its new batches), in the order of the
streams. The streams are gathered from the batches' own buffers (no copy of the rows), and
the checksum computed as they are copied to the disk's buffer (while it is in the cache).
A record only counts when it is whole and its checksum matches: a record cut short or torn
by a crash or a full disk (whatever the filesystem left of it) is dropped when the journal
is read, and :meth:`Journal.append` truncates a failed append away. A record is written
once and read back only by the recovery after a crash: the files are built from the
batches in memory.

Batches are logged without ``_timestamp`` (no file format writes it), which spares a
quarter of the bytes of a narrow table.
"""

from __future__ import annotations

import errno
import fcntl
import io
import json
import mmap
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from arroyo_lite.config import TIMESTAMP_COLUMN

try:  # (ISA-L's CRC-32: the same checksum as zlib's, several times faster)
    from isal.isal_zlib import crc32 as _isal_crc32

    crc32: Callable[[Any, int], int] = _isal_crc32
except ImportError:  # pragma: no cover - isal is a dependency; zlib computes the same
    crc32 = zlib.crc32

JOURNAL = "journal.wal"
#: Each record starts at a multiple of this many bytes (``O_DIRECT``'s alignment).
ALIGN = 4096
#: The staging buffer records are written through (a multiple of :data:`ALIGN`).
STAGE_BYTES = 4 * 1024 * 1024
_HEAD = struct.Struct("<Q")  # payload length
_CRC = struct.Struct("<I")  # after the payload
_HEADER_LENGTH = struct.Struct("<I")


def _aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


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
    returns (``fsync``; the directory too after the first, as the file is new).

    Where the platform and filesystem allow it, records are written with ``O_DIRECT``
    through an aligned staging buffer (each record padded to :data:`ALIGN`): a record is
    written once and read back only after a crash, so it need not pass through the page
    cache, whose copy and writeback cost more CPU than the copy into the buffer. Elsewhere
    (no ``O_DIRECT``, or a filesystem that refuses it) the same bytes are written buffered.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        self._direct = hasattr(os, "O_DIRECT")
        try:
            self._fd = os.open(path, flags | getattr(os, "O_DIRECT", 0), 0o644)
        except OSError as e:
            if not self._direct or e.errno != errno.EINVAL:
                raise
            self._direct = False
            self._fd = os.open(path, flags, 0o644)
        self.size = 0
        self._new = True
        self._stage: mmap.mmap | None = None

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
        written = _aligned(_HEAD.size + body.size + _CRC.size)
        try:
            self._write(body.size, body.parts)
        except OSError:
            os.ftruncate(self._fd, self.size)
            os.lseek(self._fd, self.size, os.SEEK_SET)
            raise
        os.fsync(self._fd)
        if self._new:
            sync_dir(self.path.parent)
            self._new = False
        self.size += written
        return written

    def _write(self, length: int, payload: list[Any]) -> None:
        """Write one record of the ``payload`` parts (``length`` bytes in all), through the
        staging buffer (one :data:`STAGE_BYTES` chunk at a time)."""
        if self._stage is None:
            self._stage = mmap.mmap(-1, STAGE_BYTES)  # (page-aligned, as O_DIRECT needs)
        stage = memoryview(self._stage)
        fill, crc = 0, 0

        def copy(data: memoryview, checked: bool) -> None:
            nonlocal fill, crc
            while data:
                n = min(len(data), STAGE_BYTES - fill)
                stage[fill : fill + n] = data[:n]
                if checked:  # (releases the GIL on large buffers)
                    crc = crc32(stage[fill : fill + n], crc)
                fill, data = fill + n, data[n:]
                if fill == STAGE_BYTES:
                    self._put(stage)
                    fill = 0

        copy(memoryview(_HEAD.pack(length)), checked=False)
        for part in payload:
            copy(memoryview(part).cast("B"), checked=True)
        copy(memoryview(_CRC.pack(crc)), checked=False)
        end = _aligned(fill)
        stage[fill:end] = bytes(end - fill)
        if end:
            self._put(stage[:end])

    def _put(self, data: memoryview) -> None:
        # A short write (the disk filled up mid-record) is followed by writing the rest,
        # so the error raised is the OS's own, which names the cause.
        while data:
            try:
                written = os.write(self._fd, data)
            except OSError as e:
                if not (self._direct and e.errno == errno.EINVAL):
                    raise
                # (A filesystem without O_DIRECT, or a short write that left the offset
                # unaligned: the rest of the journal is written buffered.)
                self._direct = False
                flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
                fcntl.fcntl(self._fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)
                continue
            data = data[written:]

    def close(self) -> None:
        os.close(self._fd)
        if self._stage is not None:
            self._stage.close()
            self._stage = None


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
        (length,) = _HEAD.unpack_from(data, at)
        start = at + _HEAD.size
        if start + length + _CRC.size > data.size:
            break  # cut short: never acknowledged (its padding need not be there)
        payload = data.slice(start, length)
        if crc32(payload, 0) != _CRC.unpack_from(data, start + length)[0]:
            break  # torn
        try:
            state, files = _decode(payload)
        except (ValueError, KeyError, TypeError, struct.error, pa.ArrowInvalid, OSError):
            break
        for name, target, batches in files:
            logged.files.setdefault(name, (target, []))[1].extend(batches)
        logged.state = state
        at += _aligned(_HEAD.size + length + _CRC.size)
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


def read_file_log(path: Path) -> tuple[str | None, list[pa.RecordBatch]]:
    """The target and complete batches of a per-file log left by an earlier version (8-byte
    length-prefixed IPC messages: the schema, whose metadata names the target, then the
    batches), which the manifest's ``open`` counted by the log's file name."""
    data = pa.py_buffer(path.read_bytes())
    chunks: list[pa.Buffer] = []
    at = 0
    while at + _HEAD.size <= data.size:
        (size,) = _HEAD.unpack_from(data, at)
        if at + _HEAD.size + size > data.size:
            break
        chunks.append(data.slice(at + _HEAD.size, size))
        at += _HEAD.size + size
    try:
        schema = ipc.read_schema(chunks[0])
        batches = [ipc.read_record_batch(chunk, schema) for chunk in chunks[1:]]
    except (IndexError, pa.ArrowInvalid, OSError):
        return None, []
    target = (schema.metadata or {}).get(b"arroyo_lite.target")
    return (target.decode() if target else None), batches


class _Gathered(io.RawIOBase):
    """An output stream that keeps what is written to it (pyarrow hands over the record
    batches' own buffers, and copies of the rest), to be copied once to the disk."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[Any] = []
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.parts.append(data)
        n = data.size if isinstance(data, pa.Buffer) else len(data)
        self.size += n
        return int(n)


def sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
