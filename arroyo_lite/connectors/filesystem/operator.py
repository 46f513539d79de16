"""The running ``filesystem`` sink: rolling files per partition, committed atomically.

Rows of each partition go to an *open file*: written incrementally (a writer thread) to a
temporary file under ``PATH/__in_progress/`` and kept in memory. A file is committed when it
rolls (older than ``rollover_seconds``, idle for ``inactivity_rollover_seconds``, or larger
than ``target_file_size``) and when the sink closes: completed under its temporary name and
fsynced, recorded in ``__in_progress/manifest.json`` as being committed, then renamed to its
place (``PATH/[partition/]NAME``), so a reader never sees half a file. Rolls by time are
checked every :data:`ACK_INTERVAL_S`, also while no rows arrive.

Acknowledgement: :meth:`FilesystemSink.flush` (called by the runtime whenever the sink has
caught up; coalesced to one per :data:`ACK_INTERVAL_S`, the sink's timer acknowledging what a
skipped flush left) appends one record to the sink's write-ahead journal (:mod:`.wal`): the
rows written since the last acknowledgement, for every open file, and the sink's state after
it (how many rows each open file has acknowledged, how many input rows the sink has taken in
all), then fsyncs it: one write and one fsync per acknowledgement, on a thread, not per
batch (rows committed before an acknowledgement never go through the journal). The journal
is written once and never read back unless a crash left it: the files are built from the
rows in memory.

The state on disk is the one of the newest of ``__in_progress/manifest.json`` and the
journal's last whole record (each carries a ``seq``). A commit records itself there before
its rename: in a journal record when other files stay open, else in the manifest (written
then renamed), after which the journal is obsolete and removed. Either always counts only
rows that are on disk: logged and fsynced, or in a file it records as being committed
(fsynced before). A crash loses no acknowledged row: on the next open, a file the state
records as being committed is renamed into place if the crash came before the rename, and
every other file it records as open is committed up to the rows it acknowledged, from the
journal (a file already renamed is not written twice).
With ``--state-dir`` (``SourceContext.replays_inputs``) the restored tables replay their rows
into the query, so the sink skips the input rows it had acknowledged: a restart neither
loses nor duplicates rows (as long as the restored tables hold the rows they held before:
a retention that dropped rows shifts the replay).

A failing write (a full disk: ``ENOSPC``, ``EFBIG``) leaves no partial file behind: the
sink reports ``backoff`` with the error, keeps the rows, and retries with backoff until it
succeeds (the query waits meanwhile).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa

from arroyo_lite.config import TableConfig
from arroyo_lite.connectors.base import SinkOperator, SourceContext, SourceState
from arroyo_lite.connectors.filesystem import layout, wal
from arroyo_lite.connectors.filesystem.files import FILE_FORMATS, FileWriter
from arroyo_lite.connectors.filesystem.options import FilesystemOptions, local_path

MANIFEST = "manifest.json"
#: Suffix of a journal the manifest made obsolete, being removed.
OBSOLETE = ".obsolete"
#: Seconds between the sink's timer ticks: rolls by time, and acknowledging rows a
#: coalesced flush left (the longest a row written and flushed waits to be acknowledged).
ACK_INTERVAL_S = 0.1
#: File writes a sink may have queued on its writer thread before ``write`` waits.
MAX_QUEUED_WRITES = 8
#: First and longest wait before retrying a failed write (seconds).
RETRY_FIRST_S, RETRY_MAX_S = 0.1, 5.0
_SERIAL = re.compile(r"(\d{5})-\d{3}\.")

T = TypeVar("T")


@dataclass
class OpenFile:
    """A file being written: its rows so far (memory, the writer thread), how many of them
    the journal holds."""

    target: str  # final path, relative to the sink's directory
    name: str  # its file name (the temporary file is named after it)
    opened_at: float
    last_write_at: float
    #: How many of ``batches`` the journal holds, and their bytes there.
    logged: int = 0
    logged_bytes: int = 0
    #: The file itself, written batch by batch on the sink's writer thread; ``None`` once a
    #: write to it failed (the commit then writes the file whole from ``batches``).
    writer: FileWriter | None = None
    writes: list[asyncio.Future[None]] = field(default_factory=list)
    #: The completed temporary file, once the commit has completed it.
    completed: Path | None = None
    #: Every batch of the file (only appended to while it is open).
    batches: list[pa.RecordBatch] = field(default_factory=list)
    #: Rows not yet handed to the writer thread (handed over ``writer.chunk_rows`` at a time:
    #: one thread hop per row group, not per batch).
    unwritten: list[pa.RecordBatch] = field(default_factory=list)
    unwritten_rows: int = 0
    unwritten_bytes: int = 0
    rows: int = 0
    nbytes: int = 0


#: What one acknowledgement writes: each file to log with how many of its batches, and the
#: state that counts them.
Acknowledgement = tuple[list[tuple[OpenFile, int]], dict[str, Any]]
#: The journal is rewritten with only the open files' rows when it holds this many times
#: their bytes (and at least :data:`COMPACT_MIN_BYTES`): what committed files left in it.
COMPACT_FACTOR, COMPACT_MIN_BYTES = 2, 64 * 1024 * 1024


class FilesystemSink(SinkOperator):
    """Writes the table's rows as rolling files under ``path`` (see the module docstring)."""

    def __init__(self, config: TableConfig, context: SourceContext) -> None:
        super().__init__(config, context)
        assert isinstance(config.connector_options, FilesystemOptions)
        self.options = config.connector_options
        fmt = config.format.format if config.format is not None else None
        assert fmt is not None and fmt in FILE_FORMATS  # validated
        self.file_format = FILE_FORMATS[fmt](config, self.options)
        root = local_path(self.options.path)
        assert root is not None  # validated
        self.root = root
        self.in_progress = root / layout.IN_PROGRESS
        self._open: dict[str, OpenFile] = {}
        self._lock = asyncio.Lock()
        self._serial = 1
        #: Input rows taken (acknowledged or not) and rows still to skip (a replay): the
        #: manifest's ``taken`` is their sum (the skipped rows were settled by an earlier run).
        self._taken = 0
        self._skip = 0
        #: The state's sequence number (see :mod:`.wal`) and the journal, once opened.
        self._seq = 0
        self._journal: wal.Journal | None = None
        self._timer: asyncio.Task[None] | None = None
        #: One thread writes the files (in order), beside the loop and the acknowledgements.
        self._writer_thread = concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix=f"filesystem-sink:{config.name}"
        )
        self.committed_files = 0
        self._dirty = False
        self._acked_at = 0.0
        #: The acknowledgement running in the background (see :meth:`_ack`).
        self._acking: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def open(self) -> None:
        await self._retrying(self._recover)
        self._timer = asyncio.create_task(self._roll_by_time())

    async def write(self, batch: pa.RecordBatch) -> None:
        async with self._lock:
            if self._skip:
                skipped = min(self._skip, batch.num_rows)
                self._skip -= skipped
                self._taken += skipped
                batch = batch.slice(skipped)
                if not batch.num_rows:
                    return
            now = time.monotonic()
            full: list[str] = []
            for partition, rows in layout.split(batch, self.options):
                open_file = self._open.get(partition) or await self._start(partition, now)
                nbytes = rows.nbytes  # (not free: computed once)
                await self._write_file(open_file, rows, nbytes)
                open_file.batches.append(rows)
                open_file.rows += rows.num_rows
                open_file.nbytes += nbytes
                open_file.last_write_at = now
                size = self.options.target_file_size
                if size is not None and open_file.nbytes >= size:
                    full.append(partition)
            self._taken += batch.num_rows
            self._dirty = True
            if full:  # (after the whole batch is taken: the commit acknowledges all of it)
                await self._commit(full)

    async def flush(self) -> None:
        # The sink has caught up: what the files gathered goes to the writer thread if it
        # is enough for a row group, so the files are encoded as the rows come (not all at
        # the commit: a file of slow rows would otherwise be encoded after its last
        # acknowledgement). Coalesced: at most one acknowledgement (fsyncs) per
        # ACK_INTERVAL_S; the timer acknowledges what a skipped flush left, so rows wait at
        # most that long.
        due = self._dirty and time.monotonic() - self._acked_at >= ACK_INTERVAL_S
        if due or self._gathered_enough():
            async with self._lock:
                await self._hand_over_gathered()
                if due:
                    await self._ack()

    async def acknowledge(self) -> None:
        """Acknowledge every row written so far and wait until that is on disk (a flush
        neither coalesced nor left in the background)."""
        async with self._lock:
            await self._hand_over_gathered()
            await self._settle_ack()
            if self._dirty:
                await self._ack()
            await self._settle_ack()

    async def _ack(self) -> None:
        """Start acknowledging the rows written so far, in the background: which batches
        and counts are taken now, then the journal record is written and fsynced on a
        thread while new rows keep coming (the writes and fsyncs would otherwise
        stall the query). One at a time; a commit or close first waits for it
        (:meth:`_settle_ack`)."""
        if self._acking is not None and not self._acking.done():
            return  # (still dirty: the timer acknowledges the rest next tick)
        self._dirty = False
        self._acked_at = time.monotonic()
        ack = self._acknowledgement(list(self._open.values()))
        self._acking = asyncio.create_task(
            self._retrying(functools.partial(self._write_acknowledged, *ack))
        )

    async def _settle_ack(self) -> None:
        if self._acking is not None:
            acking, self._acking = self._acking, None
            await acking

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        try:
            async with self._lock:
                await self._settle_ack()
                if self._open:
                    await self._commit(list(self._open))  # (its manifest counts every row)
                else:
                    _, state = self._acknowledgement([])
                    await self._retrying(functools.partial(self._settle, state))
        finally:
            for open_file in self._open.values():  # (only after a cancellation)
                if open_file.writer is not None:
                    open_file.writer.out.close()
            if self._journal is not None:
                self._journal.close()
            self._writer_thread.shutdown(wait=False)

    # -- files -----------------------------------------------------------------------------

    async def _start(self, partition: str, now: float) -> OpenFile:
        name = layout.file_name(self.options, self._serial, self.file_format.suffix)
        self._serial += 1
        target = f"{partition}/{name}" if partition else name
        open_file = OpenFile(
            target=target,
            name=name,
            opened_at=now,
            last_write_at=now,
        )
        with contextlib.suppress(OSError):  # (then written whole at the commit)
            open_file.writer = await asyncio.to_thread(self.file_format.open, self._tmp(name))
        self._open[partition] = open_file
        return open_file

    def _tmp(self, name: str) -> Path:
        return self.in_progress / (name + ".tmp")

    async def _write_file(
        self, open_file: OpenFile, rows: pa.RecordBatch | None, nbytes: int = 0
    ) -> None:
        """Gather ``rows`` (of ``nbytes``) for the file; once ``chunk_rows`` are gathered (or
        with ``None``: whatever is gathered, written at once as a row group of its own),
        queue them on the writer thread (at most a few writes queued)."""
        writer = open_file.writer
        if writer is None:
            return
        if rows is not None:
            open_file.unwritten.append(rows)
            open_file.unwritten_rows += rows.num_rows
            open_file.unwritten_bytes += nbytes
            if (
                open_file.unwritten_rows < writer.chunk_rows
                and open_file.unwritten_bytes < writer.chunk_bytes
            ):
                return
        if not open_file.unwritten:
            return
        chunk, chunk_bytes = open_file.unwritten, open_file.unwritten_bytes
        open_file.unwritten = []
        open_file.unwritten_rows = open_file.unwritten_bytes = 0
        write = writer.write_all if rows is not None else writer.write_group
        loop = asyncio.get_running_loop()
        open_file.writes.append(
            loop.run_in_executor(self._writer_thread, write, chunk, chunk_bytes)
        )
        if len(open_file.writes) > MAX_QUEUED_WRITES:
            await self._settle_writes(open_file, keep=MAX_QUEUED_WRITES // 2)

    def _gathered_enough(self) -> bool:
        return any(
            f.writer is not None and f.unwritten_rows >= f.writer.group_rows_early
            for f in self._open.values()
        )

    async def _hand_over_gathered(self) -> None:
        """Queue on the writer thread, as a row group of their own, the rows each open file
        gathered if they are at least its writer's ``group_rows_early``."""
        for open_file in self._open.values():
            writer = open_file.writer
            if writer is not None and open_file.unwritten_rows >= writer.group_rows_early:
                await self._write_file(open_file, None)

    async def _settle_writes(self, open_file: OpenFile, keep: int = 0) -> None:
        """Wait for the file's queued writes (all but ``keep``); on a failed one, give the
        incremental file up (the commit writes it whole)."""
        while len(open_file.writes) > keep:
            try:
                await open_file.writes.pop(0)
            except OSError:
                await self._give_up_writer(open_file)

    async def _give_up_writer(self, open_file: OpenFile) -> None:
        """Remove the incremental file (before the commit writes one whole at its path)."""
        writer, open_file.writer = open_file.writer, None
        if writer is not None:
            with contextlib.suppress(OSError):
                await asyncio.wrap_future(self._writer_thread.submit(writer.abandon))

    async def _commit(self, partitions: list[str]) -> None:
        """Commit the open files of ``partitions``: complete each under its temporary name
        (fsynced), record them as being committed (and count every row taken: the files
        staying open are logged up to now) in a journal record if files stay open, else in
        the manifest (the journal is then removed), rename them into place. The steps
        after the files' queued writes run in one thread hop (each hop is a wait for the
        scheduler on a busy machine)."""
        await self._settle_ack()
        files = [self._open[partition] for partition in partitions]
        for open_file in files:
            await self._settle_writes(open_file)
        staying = [f for partition, f in self._open.items() if partition not in partitions]
        logs, manifest = self._acknowledgement(staying)
        await self._retrying(functools.partial(self._commit_files, files, logs, manifest))
        self._dirty = False  # (the manifest counts every row taken)
        self._acked_at = time.monotonic()
        for partition in partitions:
            del self._open[partition]
        self.committed_files += len(files)
        self.status.extra["files"] = self.committed_files

    def _commit_files(
        self, files: list[OpenFile], logs: list[tuple[OpenFile, int]], manifest: dict[str, Any]
    ) -> None:
        """The blocking steps of :meth:`_commit` (on a thread; again after a failure: a file
        completed stays completed, the journal goes on from what it holds, a rename done is
        skipped)."""
        completed: list[tuple[Path, str]] = []
        for open_file in files:
            tmp = open_file.completed
            if tmp is not None and not tmp.exists() and not (self.root / open_file.target).exists():
                tmp = None  # (removed behind our back: written whole again)
            if tmp is None:
                tmp = open_file.completed = self._complete(open_file)
            completed.append((tmp, open_file.target))
        manifest["committing"] = {tmp.name: target for tmp, target in completed}
        if logs:  # (files stay open: the journal goes on)
            self._write_acknowledged(logs, manifest)
            self._rename(completed)
            self._compact_journal(logs, manifest)
        else:
            self._write_manifest(manifest)
            self._rename(completed)
            self._drop_journal()

    def _complete(self, open_file: OpenFile) -> Path:
        """Complete the file under its temporary name, fsynced, with the rows not yet handed
        to the writer thread (or write it whole if writing it went wrong); its path (after
        its queued writes: the writer thread is idle)."""
        writer, open_file.writer = open_file.writer, None
        if writer is None:
            return self._write_whole(open_file.batches, open_file.name)
        try:
            if open_file.unwritten:
                writer.write_all(open_file.unwritten, open_file.unwritten_bytes)
            writer.finish()
        except OSError:
            writer.abandon()
            raise  # retried: written whole from the rows kept
        return writer.path

    def _write_whole(self, batches: list[pa.RecordBatch], name: str) -> Path:
        """Write ``batches`` to the temporary file of ``name``, fsynced; its path."""
        writer = self.file_format.open(self._tmp(name))
        try:
            for batch in batches:
                writer.write(batch)
            writer.finish()
        except BaseException:
            writer.abandon()
            raise
        return writer.path

    def _rename(self, completed: list[tuple[Path, str]]) -> None:
        """Rename each completed temporary file to its target, then fsync their directories
        (on a thread; again after a failure: a file already renamed is skipped)."""
        directories: set[Path] = set()
        for tmp, target in completed:
            final = self.root / target
            final.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(tmp, final)
            except FileNotFoundError:
                if tmp.exists() or not final.exists():
                    raise
                continue  # (renamed by an earlier try)
            self.status.bytes += final.stat().st_size
            directories.add(final.parent)
        for directory in directories:
            wal.sync_dir(directory)

    def _acknowledgement(self, files: list[OpenFile]) -> Acknowledgement:
        """What acknowledges every row taken now: ``files`` (the open ones) logged up to
        their current batches, and the manifest that counts them."""
        self._seq += 1
        manifest: dict[str, Any] = {
            "seq": self._seq,
            "taken": self._taken + self._skip,
            "serial": self._serial,
            "open": {f.name: f.rows for f in files},
        }
        return [(f, len(f.batches)) for f in files], manifest

    def _write_acknowledged(self, logs: list[tuple[OpenFile, int]], state: dict[str, Any]) -> None:
        """Append one record to the journal: each file's batches since the last record up to
        the count given, and ``state``, which counts them; fsynced (on a thread; again after
        a failure: the journal is as before it)."""
        if self._journal is None:
            self._journal = wal.Journal(self.in_progress / wal.JOURNAL)
        entries = [wal.FileEntry(f.name, f.target, f.batches[f.logged : upto]) for f, upto in logs]
        self._journal.append(state, entries)
        for (open_file, upto), entry in zip(logs, entries, strict=True):
            open_file.logged = upto
            open_file.logged_bytes += entry.size

    def _compact_journal(self, logs: list[tuple[OpenFile, int]], state: dict[str, Any]) -> None:
        """Rewrite the journal with only the open files' rows (under a temporary name, then
        renamed over it) once committed files' rows are most of it."""
        journal = self._journal
        live = sum(f.logged_bytes for f, _ in logs)
        if journal is None or journal.size < max(COMPACT_MIN_BYTES, COMPACT_FACTOR * live):
            return
        fresh = wal.Journal(self.in_progress / (wal.JOURNAL + ".new"))
        try:
            fresh.append(
                state, [wal.FileEntry(f.name, f.target, f.batches[:upto]) for f, upto in logs]
            )
        except BaseException:
            fresh.close()
            raise
        os.replace(fresh.path, journal.path)
        wal.sync_dir(self.in_progress)
        journal.close()
        fresh.path = journal.path
        self._journal = fresh

    def _settle(self, state: dict[str, Any]) -> None:
        """Record ``state`` (no file open) in the manifest; the journal is then obsolete."""
        self._write_manifest(state)
        self._drop_journal()

    def _drop_journal(self) -> None:
        """Remove the journal once the manifest holds a newer state (its removal need not
        be durable: an older journal found later is ignored). It is renamed out of the way
        at once and unlinked on the writer thread, unawaited: freeing a large file's blocks
        takes the filesystem milliseconds the commit need not wait for (the next open
        removes what a stop left)."""
        journal, self._journal = self._journal, None
        if journal is not None:
            journal.close()
            obsolete = journal.path.with_name(f"{wal.JOURNAL}.{self._seq}{OBSOLETE}")
            try:
                os.replace(journal.path, obsolete)
            except FileNotFoundError:
                return
            try:
                self._writer_thread.submit(obsolete.unlink, missing_ok=True)
            except RuntimeError:  # (the writer thread is shut down)
                obsolete.unlink(missing_ok=True)

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        tmp = self.in_progress / (MANIFEST + ".tmp")
        with open(tmp, "w", encoding="utf-8") as out:
            json.dump(manifest, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.in_progress / MANIFEST)
        wal.sync_dir(self.in_progress)

    def _recover(self) -> None:
        """Commit what the last run acknowledged and left in progress (on a thread)."""
        self.in_progress.mkdir(parents=True, exist_ok=True)
        manifest: dict[str, Any] = {}
        with contextlib.suppress(FileNotFoundError, ValueError):
            manifest = json.loads((self.in_progress / MANIFEST).read_text(encoding="utf-8"))
        journal_path = self.in_progress / wal.JOURNAL
        logged = wal.read(journal_path) if journal_path.exists() else wal.Logged()
        state = manifest
        if logged.state is not None and logged.state.get("seq", 0) > manifest.get("seq", 0):
            state = logged.state  # (else an obsolete journal: the manifest is newer)
        committing: dict[str, str] = state.get("committing", {})
        self._rename(
            [
                (self.in_progress / tmp, target)
                for tmp, target in committing.items()
                if (self.in_progress / tmp).exists()
            ]
        )
        acknowledged: dict[str, int] = state.get("open", {})
        for name, keep in acknowledged.items():
            target, batches = logged.files.get(name, ("", []))
            if target and keep and batches and not (self.root / target).exists():
                rows = pa.Table.from_batches(batches, schema=batches[0].schema).slice(0, keep)
                tmp = self._write_whole(rows.to_batches(), Path(target).name)
                self._rename([(tmp, target)])
        for legacy in sorted(self.in_progress.glob("*.*.wal")):  # (an earlier version's)
            old_target, batches = wal.read_file_log(legacy)
            keep = acknowledged.get(legacy.name, 0)
            if old_target and keep and batches and not (self.root / old_target).exists():
                rows = pa.Table.from_batches(batches).slice(0, keep)
                tmp = self._write_whole(rows.to_batches(), Path(old_target).name)
                self._rename([(tmp, old_target)])
        for tmp in self.in_progress.glob("*.tmp"):
            tmp.unlink()
        self._serial = max(int(state.get("serial", 1)), self._next_serial_on_disk())
        self._seq = int(state.get("seq", 0))
        if self.context.replays_inputs:
            self._skip = int(state.get("taken", 0))
        settled = {
            "seq": self._seq,
            "taken": self._taken + self._skip,
            "serial": self._serial,
            "open": {},
        }
        # (No manifest reads as one with nothing taken nor open: a new directory needs none.)
        if manifest != settled and (manifest or settled["taken"]):
            self._write_manifest(settled)
        journal_path.unlink(missing_ok=True)  # (after the manifest that supersedes it)
        for legacy in self.in_progress.glob("*.*.wal"):
            legacy.unlink()
        (self.in_progress / (wal.JOURNAL + ".new")).unlink(missing_ok=True)
        for obsolete in self.in_progress.glob(f"{wal.JOURNAL}.*{OBSOLETE}"):
            obsolete.unlink(missing_ok=True)

    def _next_serial_on_disk(self) -> int:
        serials = [
            int(m.group(1))
            for p in self.root.rglob("*")
            if layout.IN_PROGRESS not in p.parts and (m := _SERIAL.search(p.name))
        ]
        return max(serials, default=0) + 1

    async def _roll_by_time(self) -> None:
        """Every tick: acknowledge what is due, commit files older than
        ``rollover_seconds`` or idle for ``inactivity_rollover_seconds``."""
        while True:
            await asyncio.sleep(ACK_INTERVAL_S)
            now = time.monotonic()
            async with self._lock:
                if self._dirty and now - self._acked_at >= ACK_INTERVAL_S:
                    await self._ack()
                idle = self.options.inactivity_rollover_seconds
                due = [
                    partition
                    for partition, f in self._open.items()
                    if now - f.opened_at >= self.options.rollover_seconds
                    or (idle is not None and now - f.last_write_at >= idle)
                ]
                if due:
                    await self._commit(due)

    async def _retrying(self, step: Callable[[], T]) -> T:
        """Run blocking ``step`` on a thread until it succeeds: a failing write (a full disk)
        is reported (``backoff``, ``last_error``) and retried with growing waits."""
        delay = RETRY_FIRST_S
        failed = False
        while True:
            try:
                result = await asyncio.to_thread(step)
            except OSError as e:
                failed = True
                status = self.status
                status.failures += 1
                status.consecutive_failures += 1
                status.last_error = f"cannot write to '{self.options.path}': {e}; retrying"
                status.last_error_at_ns = self.context.clock.time_ns()
                self.report(SourceState.BACKOFF)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)
                continue
            if failed:
                self.status.consecutive_failures = 0
                self.report(SourceState.RUNNING)
            return result

