"""The wire between a session and its worker processes (``--workers N``): frames and messages.

Both ends of a worker's socket (a Unix socket pair made by :mod:`multiprocessing`) speak
frames: a 4-byte big-endian length, then a pickled message (protocol 5). A message is a
tuple whose first item is its kind (the constants below). The socket pair connects exactly
one parent to the child it spawned, so unpickling is between two processes of the same
program and the same installed code, never data from the network.

Rows travel as Arrow IPC: a record batch message (:meth:`pa.RecordBatch.serialize`, buffers
only) with its schema's IPC message beside it; the receiver rebuilds the batch over the
received bytes (:func:`read_batch`), zero-copy, and cuts it into the tables' batches
(slices). No row is ever touched by Python on the way.

Session -> worker:

* ``(HELLO, index, env, levels)``: first: the worker's number, the session's variables (for
  ``{{ VAR }}``) and the log levels of the ``arroyo_lite`` loggers that have one.
* ``(START, [(tid, config, state), ...])``: run these tables (a kept operator resumes);
  ``state`` is the session's copy of the table's source state (what it stored).
* ``(STOP, [tid, ...])``: cancel these tables' operators (kept, to be started again); each
  is answered by an ``ENDED`` with ``stopped``, after the rows it emitted so far.
* ``(FORGET, [tid, ...])``: drop stopped operators for good.
* ``(EXIT,)``: stop everything and exit.

Worker -> session:

* ``(DATA, groups, alone, statuses)``: rows and each table's source-state changes made
  with them, and ``statuses`` as in ``STATUS`` (applied after the rows).
  ``groups`` is ``[(schema_ipc, batch_ipc, [(tid, offset, rows, changed, deleted), ...])]``:
  the batches of every table of one schema as one batch, each table's batches a slice of it
  (in order; its state changes ride on its last slice); ``alone`` is ``[(tid, changed,
  deleted)]`` for state changes without rows. The session applies each table's part in one
  step, so ``--state-dir`` saves rows and state together, as in one process.
* ``(STATUS, [(tid, values), ...])``: status fields (:data:`STATUS_FIELDS` order) of the
  tables whose status changed.
* ``(ENDED, tid, how, message, hint)``: ``how`` is ``finished``, ``failed`` (message
  masked) or ``stopped``.
* ``(LOG, level, logger, message)``: a log record of the worker, masked.
* ``(STATS, WorkerStats)``: the worker's CPU, memory and poll-start lateness, every second.
"""

from __future__ import annotations

import asyncio
import dataclasses
import operator
import os
import pickle
import struct
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from arroyo_lite.connectors.base import SourceStatus

HELLO = "hello"
START = "start"
STOP = "stop"
FORGET = "forget"
EXIT = "exit"
DATA = "data"
STATUS = "status"
ENDED = "ended"
LOG = "log"
STATS = "stats"

_LENGTH = struct.Struct(">I")
#: Largest frame accepted (a guard against a corrupted length, not a limit on real use).
MAX_FRAME = 1 << 31

#: The status fields a worker sends, in order: all but the table's identity (the session
#: knows it) and ``state`` (sent apart: the session's supervisor owns the lifecycle).
STATUS_FIELDS: tuple[str, ...] = tuple(
    f.name
    for f in dataclasses.fields(SourceStatus)
    if f.name not in {"table", "connector", "state"}
)


_STATUS_GETTER = operator.itemgetter(*STATUS_FIELDS)
_EXTRA_INDEX = 1 + STATUS_FIELDS.index("extra")


def status_values(status: SourceStatus) -> tuple[Any, ...]:
    """``status``'s state and :data:`STATUS_FIELDS` values, as sent in ``STATUS`` (``extra``
    copied: the status keeps changing its own). Built once a second for every table of a
    worker: C-level getters only, the list only when ``extra`` holds something."""
    values = (status.state._value_, *_STATUS_GETTER(vars(status)))
    if not status.extra:
        return values
    copied = list(values)
    copied[_EXTRA_INDEX] = status.extra.copy()
    return tuple(copied)


def frame(message: tuple[Any, ...]) -> bytes:
    """One frame holding ``message``."""
    body = pickle.dumps(message, protocol=5)
    return _LENGTH.pack(len(body)) + body


async def read_message(reader: asyncio.StreamReader) -> tuple[Any, ...] | None:
    """The next message, or ``None`` at the end of the stream (the other process is gone)."""
    try:
        header = await reader.readexactly(_LENGTH.size)
        (length,) = _LENGTH.unpack(header)
        if length > MAX_FRAME:
            raise ValueError(f"frame of {length} bytes")
        body = await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        return None
    message: tuple[Any, ...] = pickle.loads(body)
    return message


class FrameReader:
    """The messages of a byte stream of frames, as many as each chunk read completes.

    One read of the socket usually holds several frames (a worker's rows, statuses and
    stats): they are unpickled in one call, without awaiting twice per frame. A frame cut
    by the chunk's end waits, in pieces, until its last byte has come (never re-joined per
    chunk: a large frame costs one copy).
    """

    def __init__(self) -> None:
        self._pieces: list[bytes] = []
        self._have = 0
        self._need = 0

    def feed(self, data: bytes) -> list[tuple[Any, ...]]:
        """The messages completed by ``data`` (the bytes read next), in order."""
        if self._pieces:
            self._pieces.append(data)
            self._have += len(data)
            if self._have < self._need:
                return []
            data = b"".join(self._pieces)
            self._pieces = []
        messages: list[tuple[Any, ...]] = []
        view = memoryview(data)
        start, size, need = 0, len(data), _LENGTH.size
        while size - start >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(data, start)
            if length > MAX_FRAME:
                raise ValueError(f"frame of {length} bytes")
            end = start + _LENGTH.size + length
            if end > size:
                need = end - start
                break
            messages.append(pickle.loads(view[start + _LENGTH.size : end]))
            start = end
        if start < size:
            rest = data[start:]
            self._pieces, self._have, self._need = [rest], len(rest), need
        return messages


def batch_bytes(batch: pa.RecordBatch) -> bytes:
    """``batch`` as an Arrow IPC record batch message (its schema not included)."""
    return batch.serialize().to_pybytes()


def concat(batches: list[pa.RecordBatch]) -> pa.RecordBatch:
    """``batches`` (of one schema) as one batch (the first itself when it is alone)."""
    if len(batches) == 1:
        return batches[0]
    batch: pa.RecordBatch = pa.concat_batches(batches)  # type: ignore[attr-defined]
    return batch


def schema_bytes(schema: pa.Schema) -> bytes:
    return schema.serialize().to_pybytes()


def read_schema(data: bytes) -> pa.Schema:
    return pa.ipc.read_schema(pa.py_buffer(data))


def read_batch(data: bytes, schema: pa.Schema) -> pa.RecordBatch:
    """The batch :func:`batch_bytes` made, over ``data``'s memory (no copy)."""
    return pa.ipc.read_record_batch(pa.py_buffer(data), schema)


def resident_bytes() -> int:
    """This process's resident set size (Linux ``/proc``; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


@dataclass
class WorkerStats:
    """What one worker process reports about itself (every second, and at its end).

    ``cpu_s`` is its CPU time since it started (``time.process_time``); ``rss_bytes`` its
    resident memory (``rss_start_bytes`` once its first operator was built: the fixed cost
    of the process and its imports); ``at`` when these were
    taken (``time.monotonic``: one clock for every process of the machine); ``poll_starts``
    the polls it started; ``lateness_ms`` counts poll starts by how late they were against
    their schedule, in whole milliseconds (the ``poll_started`` hook of ``polling_http``;
    10,000 stands for 10 s or more); ``gc_count``, ``gc_s`` and ``gc_max_s`` the cyclic
    garbage collector's passes in it, their total and longest wall time (a pause of the
    event loop: every poll due meanwhile starts late).
    """

    index: int
    pid: int
    cpu_s: float = 0.0
    rss_bytes: int = 0
    rss_start_bytes: int = 0
    at: float = 0.0
    tables: int = 0
    poll_starts: int = 0
    lateness_ms: dict[int, int] = field(default_factory=dict)
    gc_count: int = 0
    gc_s: float = 0.0
    gc_max_s: float = 0.0
