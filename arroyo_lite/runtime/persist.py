"""``--state-dir`` persistence: table rows and source state survive a restart.

Layout (an extension beyond Arroyo, which checkpoints to its own storage)::

    STATE_DIR/
      tables/<name>/seg-000001.arrows   segments: checksummed records of Arrow IPC data
                                        (:mod:`arroyo_lite.runtime.segments`)

Rows are appended to the current segment by a :class:`Persister` task on the runtime loop:
every ``interval`` seconds (default 0.5) it captures, **on the loop**, the new rows of each
table (by global row index) together with a copy of its source state
(``SourceContext.state``), then writes both on its own single worker thread (file I/O never
runs on the loop). Each write is one checksummed record, and the state rides in the IPC
custom metadata of its *last batch*, so rows and the state that describes them are saved
atomically: a record cut short by a crash is dropped together with its state. Hence neither
a clean restart nor a crash lets
``emit_behavior='changed'`` (or impulse's counter) emit a row twice, and a crash loses at
most the rows of the last interval.

On start, :meth:`StateDir.load_table` reads every segment; the session re-appends the rows
(so retention applies) and :meth:`StateDir.rewrite_table` replaces the segments by one
holding what was kept. While running, a table whose retention dropped most of its saved rows
(more than twice the rows kept plus :data:`REWRITE_SLACK_ROWS` saved) is rewritten the same
way, so with retention the directory stays bounded on a long run too. A rewritten segment is
marked as the base of the table: loading ignores older segments a crash may have left.

Damage (a record whose checksum fails, a file that is not a segment) is **skipped, never
loaded**: the table starts with the rows of the intact records and the state of the last
intact one, a warning names the file and the byte offset, and the damaged segment is kept
beside the others as ``seg-NNNNNN.arrows.damaged`` for inspection (not deleted by the
rewrite). Skipping is safe for ``emit_behavior = 'changed'``: the state and the rows of a
record are lost together, so what the source emits again was lost, not duplicated.

The directory is locked with ``flock`` on the directory itself, held by the process (also
through a crash: the kernel releases it), so no file can be deleted to let a second session
in. A directory that cannot be written is refused at once with a :class:`StateError`.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import enum
import fcntl
import json
import logging
import os
import shutil
import urllib.parse
from collections.abc import MutableMapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from arroyo_lite.errors import ArroyoLiteError
from arroyo_lite.runtime.segments import (
    MAGIC,
    Damage,
    Record,
    RecordFile,
    ipc_payload,
    read_segment,
)
from arroyo_lite.runtime.store import Store

log = logging.getLogger(__name__)

#: Default seconds between two flushes (the most a crash can lose).
FLUSH_INTERVAL = 0.5
SEGMENT_SUFFIX = ".arrows"
#: Custom-metadata key of a batch that carries the source state (JSON, values base64).
STATE_KEY = "arroyo_lite.source_state"
#: Schema-metadata key of a segment written by :meth:`StateDir.rewrite_table`: it holds
#: everything that was kept, so the segments before it no longer count (if a crash left
#: them behind, loading skips them instead of reading their rows twice).
BASE_KEY = b"arroyo_lite.base_segment"
#: A table with retention has its segments rewritten to the rows kept once the rows saved
#: since the last rewrite exceed twice the rows kept plus this many (bounds the directory).
REWRITE_SLACK_ROWS = 1 << 16
#: Suffix a damaged segment is renamed to when its table is rewritten (kept for inspection).
DAMAGED_SUFFIX = ".damaged"
#: Offset of a segment's first record (only a base segment's first record resets the load).
FIRST_RECORD = len(MAGIC)


def _encode_state(state: dict[str, bytes]) -> dict[bytes, bytes]:
    payload = {k: base64.b64encode(v).decode("ascii") for k, v in state.items()}
    return {STATE_KEY.encode(): json.dumps(payload, sort_keys=True).encode()}


#: Rows to save: a table (one batch), or batches saved one by one (a source's batches).
Rows = pa.Table | Sequence[pa.RecordBatch]


def _batches(rows: Rows) -> list[pa.RecordBatch]:
    if isinstance(rows, pa.Table):
        return rows.combine_chunks().to_batches() if rows.num_rows else []
    return [batch for batch in rows if batch.num_rows]


def _decode_state(metadata: pa.KeyValueMetadata | None) -> dict[str, bytes] | None:
    if metadata is None:
        return None
    raw = metadata.get(STATE_KEY.encode())
    if raw is None:
        return None
    payload: dict[str, str] = json.loads(raw)
    return {k: base64.b64decode(v) for k, v in payload.items()}


class StateError(ArroyoLiteError):
    """The state directory cannot be used (unreadable, made for a different schema, or a
    write failed: then the rows stay in memory and the next flush writes them again)."""


def _safe(name: str) -> str:
    return urllib.parse.quote(name.lower(), safe="")


class SegmentWriter:
    """Appends rows (and state) of one table to one segment, a checksummed record per write."""

    def __init__(self, path: Path, schema: pa.Schema, *, base: bool = False) -> None:
        self.path = path
        if base:
            schema = schema.with_metadata({**(schema.metadata or {}), BASE_KEY: b"1"})
        self.schema = schema
        self._file = RecordFile(path)

    def write(self, rows: Rows, state: dict[str, bytes] | None = None) -> None:
        """Append ``rows``; ``state`` (if given) rides on the last batch written.

        ``rows`` is a table (saved as one batch) or the source's batches, each saved as a
        batch of its own: loading appends them one by one, so the restored table keeps
        their boundaries. On ``OSError`` (a full disk) the segment is left as it was before
        the call (and does not exist if this was its first write)."""
        batches = _batches(rows)
        if state is not None and not batches:
            batches = [pa.RecordBatch.from_pylist([], schema=self.schema)]
        if not batches:
            return
        last = len(batches) - 1
        payload = ipc_payload(
            self.schema,
            [(b, _encode_state(state) if i == last and state is not None else None)
             for i, b in enumerate(batches)],
        )  # fmt: skip
        self._file.append(payload)

    def close(self) -> None:
        self._file.close()


class StateDir:
    """A state directory on disk. Methods do blocking file I/O: never call them on the loop."""

    def __init__(self, path: str | os.PathLike[str], *, lock: bool = True) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None
        #: Whether an earlier run saved tables here (read before this run writes any): only
        #: then do restored tables replay rows into the sinks' queries.
        self.restores_tables = False
        #: Segments found damaged by :meth:`load_table`, per table: kept by the rewrite.
        self._damaged: dict[str, set[Path]] = {}
        try:
            (self.path / "tables").mkdir(parents=True, exist_ok=True)
            self.restores_tables = any((self.path / "tables").iterdir())
            probe = self.path / f".write-test-{os.getpid()}"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise StateError(
                f"cannot use state directory '{self.path}': {e.strerror or e}",
                hint="make the directory writable, or choose another --state-dir",
            ) from None
        if lock:
            self._lock()

    def _lock(self) -> None:
        """Take an exclusive lock: two sessions appending to one directory would corrupt it.

        The lock is an ``flock`` on the state directory itself (not on a file in it, which
        could be deleted while held, letting a second session lock a new file of the same
        name). It is released when the process exits (also after a crash) or on
        :meth:`release`.
        """
        fd = os.open(self.path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(fd)
            raise StateError(
                f"state directory '{self.path}' is in use by another session",
                hint="stop the other arroyo-lite process, or use a different --state-dir",
            ) from e
        self._lock_fd = fd

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor drops the flock
            self._lock_fd = None

    def _table_dir(self, name: str) -> Path:
        return self.path / "tables" / _safe(name)

    def _segments(self, name: str) -> list[Path]:
        directory = self._table_dir(name)
        if not directory.is_dir():
            return []
        return sorted(p for p in directory.iterdir() if p.name.endswith(SEGMENT_SUFFIX))

    def load_table(
        self, name: str, schema: pa.Schema
    ) -> tuple[list[pa.RecordBatch], dict[str, bytes]]:
        """Every intact saved batch of ``name`` (oldest first) and the latest saved source
        state (empty if none).

        Damaged records are skipped and logged as warnings naming the file and byte offset
        (see the module docstring). Raises :class:`StateError` if the saved schema differs
        from ``schema`` (the table's definition changed): the message names the directory
        to remove.
        """
        batches: list[pa.RecordBatch] = []
        state: dict[str, bytes] = {}
        for segment in self._segments(name):
            try:
                records, damage = read_segment(segment)
                for record in records:
                    batches, state = self._apply(name, schema, segment, record, batches, state)
            except OSError as e:
                damage = [Damage(segment, 0, f"unreadable ({e.strerror or e})")]
            if damage:
                self._damaged.setdefault(name.lower(), set()).add(segment)
                for problem in damage:
                    log.warning(
                        "state of table '%s' is damaged, skipped: %s (kept as %s%s)",
                        name, problem, segment.name, DAMAGED_SUFFIX,
                    )  # fmt: skip
        return batches, state

    def _apply(
        self,
        name: str,
        schema: pa.Schema,
        segment: Path,
        record: Record,
        batches: list[pa.RecordBatch],
        state: dict[str, bytes],
    ) -> tuple[list[pa.RecordBatch], dict[str, bytes]]:
        """``batches`` and ``state`` after one intact record."""
        saved = record.schema
        if saved.names != schema.names or saved.types != schema.types:
            raise StateError(
                f"saved rows of table '{name}' have a different schema than its definition",
                hint=f"remove {self._table_dir(name)} to start the table afresh",
            )
        if saved.metadata and BASE_KEY in saved.metadata and record.offset <= FIRST_RECORD:
            batches, state = [], {}  # a rewrite: it holds what earlier segments did
        for batch, metadata in record.batches:
            if batch.num_rows:
                batches.append(pa.RecordBatch.from_arrays(batch.columns, schema=schema))
            try:
                decoded = _decode_state(metadata)
            except ValueError as e:
                raise StateError(
                    f"cannot read saved source state of table '{name}' in {segment}: {e}",
                    hint=f"remove {self._table_dir(name)} to start the table afresh",
                ) from e
            if decoded is not None:
                state = decoded
        return batches, state

    def damaged(self, name: str) -> bool:
        """Whether :meth:`load_table` found damage in ``name``'s segments (a rewrite then
        moves the damaged ones aside)."""
        return bool(self._damaged.get(name.lower()))

    def rewrite_table(
        self, name: str, schema: pa.Schema, data: Rows, state: dict[str, bytes]
    ) -> None:
        """Replace every segment of ``name`` by one holding ``data`` and ``state``.

        Crash-safe: the new segment is complete (renamed into place) before the old ones are
        removed, and it is marked so that loading ignores any old segment left behind.
        Segments found damaged by :meth:`load_table` are renamed ``*.damaged``, not removed.
        """
        old = self._segments(name)
        directory = self._table_dir(name)
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / f"seg-{self._next_number(directory):06d}{SEGMENT_SUFFIX}"
        tmp = target.with_suffix(".tmp")
        tmp.unlink(missing_ok=True)  # left by a crash during an earlier rewrite
        writer = SegmentWriter(tmp, schema, base=True)
        try:
            writer.write(data, state)  # a state (even {}) always makes one record
            writer.close()
        except OSError:
            tmp.unlink(missing_ok=True)
            raise
        os.replace(tmp, target)
        damaged = self._damaged.pop(name.lower(), set())
        for path in old:
            if path in damaged:
                path.replace(path.with_name(path.name + DAMAGED_SUFFIX))
            else:
                path.unlink(missing_ok=True)

    def delete_table(self, name: str) -> None:
        """Remove every saved segment of ``name`` (``DROP TABLE``: its rows go for good)."""
        shutil.rmtree(self._table_dir(name), ignore_errors=True)
        self._damaged.pop(name.lower(), None)

    def open_writer(self, name: str, schema: pa.Schema) -> SegmentWriter:
        """A writer on a new segment after the existing ones."""
        directory = self._table_dir(name)
        directory.mkdir(parents=True, exist_ok=True)
        number = self._next_number(directory)
        return SegmentWriter(directory / f"seg-{number:06d}{SEGMENT_SUFFIX}", schema)

    @staticmethod
    def _next_number(directory: Path) -> int:
        """One past the highest segment number in ``directory``, counting the ``*.damaged``
        segments kept aside (a new segment must never take a damaged one's name)."""
        numbers = []
        for path in directory.iterdir():
            stem = path.name.split(".", 1)[0].removeprefix("seg-")
            if path.name.startswith("seg-") and stem.isdigit():
                numbers.append(int(stem))
        return max(numbers, default=0) + 1


class Saved(enum.Enum):
    """What is saved of a table besides its source state."""

    #: Its rows, appended as they arrive (an append-only table).
    ROWS = "rows"
    #: Its current rows, saved whole when they changed (an updating table: its content is
    #: replaced by each change, :mod:`arroyo_lite.runtime.updating`).
    CURRENT = "current"
    #: Nothing (an updating source whose state holds its current rows).
    STATE_ONLY = "state"


@dataclass
class _Tracked:
    name: str
    schema: pa.Schema
    state: MutableMapping[str, bytes]
    high_water: int
    writer: SegmentWriter | None = None
    saved_state: dict[str, bytes] | None = None
    #: Rows in the table's segments (since its last rewrite).
    saved_rows: int = 0
    saved: Saved = Saved.ROWS
    #: The first row (global index) of the content saved (:attr:`Saved.CURRENT`).
    first_row: int = 0

    @property
    def rows(self) -> bool:
        return self.saved is not Saved.STATE_ONLY


@dataclass
class _Work:
    """One write for the worker thread: new rows (and state) to append, or a rewrite.

    ``undo`` is the table's bookkeeping (high-water mark, saved state, saved rows) from before
    this write was planned: restored if the write fails, so the next flush tries again.
    """

    table: _Tracked
    rows: Rows
    state: dict[str, bytes] | None
    undo: tuple[int, dict[str, bytes] | None, int, int]
    rewrite: bool = False


class Persister:
    """Saves new rows and source state of tracked tables to a :class:`StateDir`.

    :meth:`run` is a task for the runtime loop; :meth:`flush` may also be awaited directly
    (the session does so once more after stopping the sources); :meth:`close` (any thread
    but the loop's) closes the files.
    """

    def __init__(
        self,
        state_dir: StateDir,
        store: Store,
        *,
        interval: float = FLUSH_INTERVAL,
        rewrite_slack: int = REWRITE_SLACK_ROWS,
    ):
        self.state_dir = state_dir
        self.store = store
        self.interval = interval
        self.rewrite_slack = rewrite_slack
        self._tracked: dict[str, _Tracked] = {}
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="arroyo-lite-state"
        )
        self._flush_lock: asyncio.Lock | None = None

    def track(
        self,
        name: str,
        schema: pa.Schema,
        state: MutableMapping[str, bytes],
        high_water: int,
        *,
        saved: Saved = Saved.ROWS,
    ) -> None:
        """Start saving ``name``'s rows from global row index ``high_water`` on, and its
        source state ``state`` (the live mapping the operator mutates); ``saved`` says which
        rows (:class:`Saved`)."""
        snap = self.store.snapshot([name]).get(name.lower())
        self._tracked[name.lower()] = _Tracked(
            name, schema, state, high_water, saved_state=dict(state), saved_rows=high_water,
            saved=saved, first_row=snap.first_row if snap is not None else 0,
        )  # fmt: skip

    async def forget(self, name: str) -> None:
        """Stop saving ``name`` and delete what was saved of it (on the loop; the file work
        runs on the worker thread, after any write in progress)."""
        if self._flush_lock is None:
            self._flush_lock = asyncio.Lock()
        async with self._flush_lock:
            tracked = self._tracked.pop(name.lower(), None)

            def delete() -> None:
                if tracked is not None:
                    self._close_writer(tracked)
                self.state_dir.delete_table(name)

            await asyncio.get_running_loop().run_in_executor(self._executor, delete)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.flush()
            except StateError as e:  # disk full, file too large: said once per flush, retried
                log.warning("%s", e.message)
            except Exception:  # keep saving later batches even if one write failed
                log.exception("saving state failed")

    async def flush(self) -> None:
        """Capture new rows and state on the loop, then write them on the worker thread."""
        if self._flush_lock is None:
            self._flush_lock = asyncio.Lock()
        async with self._flush_lock:
            tracked = list(self._tracked.values())
            snaps = self.store.snapshot([t.name for t in tracked])
            work: list[_Work] = []
            for t in tracked:
                snap = snaps.get(t.name.lower())
                if snap is None:
                    continue
                undo = (t.high_water, t.saved_state, t.saved_rows, t.first_row)
                # One batch per source batch: a restored table keeps the same boundaries.
                rows = (snap.source_batches(t.high_water) or None) if t.rows else None
                t.high_water = snap.end_row
                state = dict(t.state)
                changed_state = state if state != t.saved_state else None
                if changed_state is not None:
                    t.saved_state = state
                if rows is not None:
                    t.saved_rows += sum(batch.num_rows for batch in rows)
                replaced = t.saved is Saved.CURRENT and snap.first_row != t.first_row
                t.first_row = snap.first_row
                if replaced or (t.rows and t.saved_rows > 2 * snap.num_rows + self.rewrite_slack):
                    # Retention dropped most saved rows, or an updating table's content was
                    # replaced: replace the segments by the rows kept (zero-copy here;
                    # written on the worker thread).
                    t.saved_state = state
                    t.saved_rows = snap.num_rows
                    kept = snap.source_batches(snap.first_row)
                    work.append(_Work(t, kept, state, undo, rewrite=True))
                elif rows is not None or changed_state is not None:
                    work.append(_Work(t, rows or [], changed_state, undo))
            if not work:
                return
            loop = asyncio.get_running_loop()
            failed = await loop.run_in_executor(self._executor, self._write, work)
            if failed:
                # Nothing is lost: the rows stay in the store, and restoring the marks makes
                # the next flush write them again (to a fresh segment).
                for item, _ in failed:
                    (
                        item.table.high_water,
                        item.table.saved_state,
                        item.table.saved_rows,
                        item.table.first_row,
                    ) = item.undo
                item, error = failed[0]
                raise StateError(
                    f"cannot save rows of table '{item.table.name}' to {self.state_dir.path}: "
                    f"{error.strerror or error}; retrying at the next flush"
                ) from error

    def _write(self, work: list[_Work]) -> list[tuple[_Work, OSError]]:
        """Write every item (on the worker thread); return the ones that failed."""
        failed: list[tuple[_Work, OSError]] = []
        for item in work:
            t = item.table
            try:
                if item.rewrite:
                    self._close_writer(t)
                    self.state_dir.rewrite_table(t.name, t.schema, item.rows, item.state or {})
                    continue
                if t.writer is None:
                    t.writer = self.state_dir.open_writer(t.name, t.schema)
                t.writer.write(item.rows, item.state)
            except OSError as e:
                # The segment may now end in a partial batch (loading keeps what is whole
                # before it): never append after it; the retry opens a new segment.
                self._close_writer(t)
                failed.append((item, e))
        return failed

    @staticmethod
    def _close_writer(t: _Tracked) -> None:
        if t.writer is not None:
            writer, t.writer = t.writer, None
            with contextlib.suppress(OSError):
                writer.close()

    def close(self) -> None:
        def close_all() -> None:
            for t in self._tracked.values():
                if t.writer is not None:
                    t.writer.close()
                    t.writer = None

        self._executor.submit(close_all).result()
        self._executor.shutdown(wait=True)
        self.state_dir.release()
