"""Segment files of a state directory: checksummed records of Arrow IPC data.

Layout of one segment (an arroyo-lite format)::

    segment = MAGIC record*
    record  = RECORD_MARK  u64 length  u32 crc32(payload)  u32 crc32(the 16 bytes before)
              payload (length bytes: one Arrow IPC stream: schema, batches, end marker)

Integers are little-endian. A record is one write (the rows of one flush and the source state
riding on its last batch), so rows and state are saved, checked and lost together. Reading
(:func:`read_segment`) checks both checksums before Arrow sees a byte:

* a record cut short at the end of the file is what a crash mid-write leaves: it is dropped
  quietly (a warning, as before checksums existed);
* any other bad record is *damage*: it is skipped, never loaded, and reported with the file
  and the byte offset; reading resumes at the next record whose header checks out (after a
  bad payload, right after it; after a bad header, at the next record mark found);
* a file that does not start with :data:`MAGIC` is damaged as a whole, except an Arrow IPC
  stream written by arroyo-lite before checksums (read as it is, once: the session rewrites
  it).

Writing (:class:`RecordFile`) creates the file on the first record and keeps it ending on
a record boundary: a failed write (a full disk) is cut off again, and a segment whose first
write failed is removed, so failures leave nothing behind.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pyarrow as pa
import pyarrow.ipc as ipc

log = logging.getLogger(__name__)

#: First bytes of every segment file.
MAGIC = b"ALSEG01\n"
#: First bytes of every record (lets reading find the next record after a damaged header).
RECORD_MARK = b"ALR1"
_HEADER = struct.Struct("<4sQII")
_LEGACY = b"\xff\xff\xff\xff"  # Arrow IPC stream continuation marker


def _crc(data: bytes | memoryview) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def encode_header(payload_length: int, payload_crc: int) -> bytes:
    head = struct.pack("<4sQI", RECORD_MARK, payload_length, payload_crc)
    return head + struct.pack("<I", _crc(head))


@dataclass(frozen=True, slots=True)
class Record:
    """One intact record: its batches (with custom metadata) and its schema metadata."""

    offset: int
    schema: pa.Schema
    batches: list[tuple[pa.RecordBatch, pa.KeyValueMetadata | None]]


@dataclass(frozen=True, slots=True)
class Damage:
    """A part of a segment that was not loaded: ``offset`` is a byte offset in ``path``."""

    path: Path
    offset: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path} at byte offset {self.offset}: {self.reason}"


def ipc_payload(schema: pa.Schema, batches: list[tuple[pa.RecordBatch, dict[bytes, bytes] | None]]
                ) -> pa.Buffer:  # fmt: skip
    """An Arrow IPC stream holding ``batches`` (each with its custom metadata)."""
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, schema) as writer:
        for batch, metadata in batches:
            writer.write_batch(batch, custom_metadata=metadata)
    return sink.getvalue()


class RecordFile:
    """Appends records to one segment file; the file exists once a record was written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None
        #: Bytes of the file that hold complete records (plus the magic).
        self.size = 0

    def append(self, payload: pa.Buffer) -> None:
        """Write one record and flush it. On ``OSError`` the file is cut back to its last
        complete record (removed if there is none) before the error propagates."""
        header = encode_header(payload.size, _crc(memoryview(payload)))
        try:
            if self._file is None:
                self._file = open(self.path, "xb")  # noqa: SIM115 - kept open across writes
                self._file.write(MAGIC)
                self.size = len(MAGIC)
            self._file.write(header)
            self._file.write(memoryview(payload))
            self._file.flush()
        except OSError:
            self._cut_back()
            raise
        self.size += len(header) + payload.size

    def _cut_back(self) -> None:
        file, self._file = self._file, None
        if file is None:
            return
        with contextlib.suppress(OSError):  # flushing the buffer may fail again: cut next
            file.close()
        try:
            if self.size <= len(MAGIC):
                self.path.unlink(missing_ok=True)
                self.size = 0
            else:
                os.truncate(self.path, self.size)
        except OSError as e:  # the next load drops a partial last record anyway
            log.warning("cannot cut %s back after a failed write: %s", self.path, e.strerror)

    def close(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            file.close()


def read_segment(path: Path) -> tuple[Iterator[Record], list[Damage]]:
    """The intact records of ``path`` in order, and (filled while iterating) what was not
    loaded. ``OSError`` if the file cannot be opened."""
    damage: list[Damage] = []
    return _records(path, damage), damage


def _records(path: Path, damage: list[Damage]) -> Iterator[Record]:
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size == 0:
            return
        # Batches point into the map (zero-copy); it stays open as long as they live.
        view = memoryview(mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ))
    if bytes(view[:4]) == _LEGACY:
        yield from _legacy(path, view, damage)
        return
    if bytes(view[: len(MAGIC)]) != MAGIC:
        if size < len(MAGIC) and MAGIC.startswith(bytes(view)):
            return  # a crash right after creating the file
        damage.append(Damage(path, 0, "not an arroyo-lite segment (bad file header)"))
        return
    offset = len(MAGIC)
    while offset < size:
        if size - offset < _HEADER.size:
            if not RECORD_MARK.startswith(bytes(view[offset : offset + 4])):
                damage.append(Damage(path, offset, "damaged record header"))
            else:
                log.warning("state segment %s ends in a partial record", path)
            return
        mark, length, payload_crc, header_crc = _HEADER.unpack_from(view, offset)
        if mark != RECORD_MARK or _crc(view[offset : offset + 16]) != header_crc:
            damage.append(Damage(path, offset, "damaged record header"))
            offset = _next_header(view, offset + 1, size)
            continue
        start, end = offset + _HEADER.size, offset + _HEADER.size + length
        if end > size:
            log.warning("state segment %s ends in a partial record", path)
            return
        payload = view[start:end]
        if _crc(payload) != payload_crc:
            damage.append(Damage(path, offset, "record checksum mismatch"))
            offset = end
            continue
        try:
            yield _decode(offset, pa.py_buffer(payload))
        except (pa.ArrowInvalid, OSError) as e:  # checksum fine, content not: never load it
            damage.append(Damage(path, offset, f"unreadable record ({e})"))
        offset = end


def _next_header(view: memoryview, start: int, size: int) -> int:
    """Offset of the next record mark at or after ``start`` whose header checks out."""
    data = view.obj
    assert isinstance(data, mmap.mmap)
    position = start
    while True:
        position = data.find(RECORD_MARK, position)
        if position < 0 or size - position < _HEADER.size:
            return size
        if _crc(view[position : position + 16]) == _HEADER.unpack_from(view, position)[3]:
            return position
        position += 1


def _decode(offset: int, payload: pa.Buffer) -> Record:
    reader = ipc.open_stream(pa.BufferReader(payload))
    return Record(offset, reader.schema, _batches(reader, None))


def _legacy(path: Path, view: memoryview, damage: list[Damage]) -> Iterator[Record]:
    """A segment from before checksums: one Arrow IPC stream, batches cut short dropped."""
    log.warning("state segment %s has no checksums (older arroyo-lite); it is rewritten", path)
    try:
        reader = ipc.open_stream(pa.BufferReader(pa.py_buffer(view)))
    except pa.ArrowInvalid as e:
        damage.append(Damage(path, 0, f"unreadable segment ({e})"))
        return
    yield Record(0, reader.schema, _batches(reader, path))


def _batches(
    reader: ipc.RecordBatchStreamReader, partial_in: Path | None
) -> list[tuple[pa.RecordBatch, pa.KeyValueMetadata | None]]:
    """Every batch of ``reader`` with its custom metadata. With ``partial_in`` (a legacy
    segment), a batch cut short ends the list with a warning; otherwise it raises."""
    batches: list[tuple[pa.RecordBatch, pa.KeyValueMetadata | None]] = []
    while True:
        try:
            batch, metadata = reader.read_next_batch_with_custom_metadata()
        except StopIteration:
            return batches
        except (pa.ArrowInvalid, OSError):
            if partial_in is None:
                raise
            log.warning("state segment %s ends in a partial batch", partial_in)
            return batches
        batches.append((batch, metadata))
