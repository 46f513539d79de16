"""The running ``filesystem`` sink: rolling files per partition, committed atomically.

Rows of each partition go to an *open file*: kept in memory and appended to its write-ahead
log (:mod:`.wal`) under ``PATH/__in_progress/``. A file is committed when it rolls (older
than ``rollover_seconds``, idle for ``inactivity_rollover_seconds``, or larger than
``target_file_size``) and when the sink closes: it is written in full to a temporary file,
fsynced, and renamed to its place (``PATH/[partition/]NAME``), so a reader never sees half
a file. Rolls by time are checked every :data:`ACK_INTERVAL_S`, also while no rows arrive.

Acknowledgement: :meth:`FilesystemSink.flush` (called by the runtime whenever the sink has
caught up; coalesced to one per :data:`ACK_INTERVAL_S`, the sink's timer acknowledging what a
skipped flush left) fsyncs the logs and records, in ``__in_progress/manifest.json`` (written then
renamed), how many rows each log holds and how many input rows the sink has taken in all.
A crash loses no acknowledged row: on the next open, every logged file is committed (up to
the rows the manifest acknowledged; a file already renamed is not written twice).
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
    """A file being written: its rows so far (memory) and its log (disk)."""

    target: str  # final path, relative to the sink's directory
    log: wal.Wal
    opened_at: float
    last_write_at: float
    #: The file itself, written batch by batch on the sink's writer thread; ``None`` once a
    #: write to it failed (the commit then writes the file whole from ``batches``).
    writer: FileWriter | None = None
    writes: list[asyncio.Future[None]] = field(default_factory=list)
    batches: list[pa.RecordBatch] = field(default_factory=list)
    #: Rows not yet handed to the writer thread (handed over ``writer.chunk_rows`` at a time:
    #: one thread hop per row group, not per batch).
    unwritten: list[pa.RecordBatch] = field(default_factory=list)
    unwritten_rows: int = 0
    unwritten_bytes: int = 0
    rows: int = 0
    nbytes: int = 0


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
        #: Input rows taken (acknowledged or not) and rows still to skip (a replay).
        self._taken = 0
        self._skip = 0
        self._timer: asyncio.Task[None] | None = None
        #: One thread writes the files (in order), beside the loop's logging and fsyncs.
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
            for partition, rows in layout.split(batch, self.options):
                open_file = self._open.get(partition) or await self._start(partition, now)
                try:
                    # On the loop: a write to the page cache (no fsync) costs less than the
                    # hop to a thread would; a failure (a full disk) is retried there.
                    open_file.log.append(rows)
                except OSError:
                    await self._retrying(functools.partial(open_file.log.append, rows))
                await self._write_file(open_file, rows)
                open_file.batches.append(rows)
                open_file.rows += rows.num_rows
                open_file.nbytes += rows.nbytes
                open_file.last_write_at = now
                size = self.options.target_file_size
                if size is not None and open_file.nbytes >= size:
                    await self._commit(partition)
            self._taken += batch.num_rows
            self._dirty = True

    async def flush(self) -> None:
        # Coalesced: at most one acknowledgement (fsyncs) per ACK_INTERVAL_S; the timer
        # acknowledges what a skipped flush left, so rows wait at most that long.
        if self._dirty and time.monotonic() - self._acked_at >= ACK_INTERVAL_S:
            async with self._lock:
                await self._ack()

    async def _ack(self) -> None:
        """Start acknowledging the rows written so far, in the background: their counts are
        taken now, then the logs are fsynced and the manifest written on a thread while new
        rows keep coming (the fsyncs would otherwise stall the query). One at a time; a
        commit or close first waits for it (:meth:`_settle_ack`)."""
        if self._acking is not None and not self._acking.done():
            return  # (still dirty: the timer acknowledges the rest next tick)
        self._dirty = False
        self._acked_at = time.monotonic()
        logs, manifest = self._manifest()
        self._acking = asyncio.create_task(
            self._retrying(functools.partial(self._write_acknowledged, logs, manifest))
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
                for partition in list(self._open):
                    await self._commit(partition)
                await self._retrying(self._acknowledge)
        finally:
            for open_file in self._open.values():  # (only after a cancellation)
                if open_file.writer is not None:
                    open_file.writer.out.close()
            self._writer_thread.shutdown(wait=False)

    # -- files -----------------------------------------------------------------------------

    async def _start(self, partition: str, now: float) -> OpenFile:
        name = layout.file_name(self.options, self._serial, self.file_format.suffix)
        self._serial += 1
        target = f"{partition}/{name}" if partition else name
        log_path = self.in_progress / f"{name}.wal"
        log = await self._retrying(lambda: wal.Wal(log_path, target))
        open_file = OpenFile(target=target, log=log, opened_at=now, last_write_at=now)
        with contextlib.suppress(OSError):  # (then written whole at the commit)
            open_file.writer = await asyncio.to_thread(self.file_format.open, self._tmp(name))
        self._open[partition] = open_file
        return open_file

    def _tmp(self, name: str) -> Path:
        return self.in_progress / (name + ".tmp")

    async def _write_file(self, open_file: OpenFile, rows: pa.RecordBatch | None) -> None:
        """Gather ``rows`` for the file; once ``chunk_rows`` are gathered (or with ``None``:
        whatever is gathered), queue them on the writer thread (at most a few writes queued)."""
        writer = open_file.writer
        if writer is None:
            return
        if rows is not None:
            open_file.unwritten.append(rows)
            open_file.unwritten_rows += rows.num_rows
            open_file.unwritten_bytes += rows.nbytes
            if (
                open_file.unwritten_rows < writer.chunk_rows
                and open_file.unwritten_bytes < writer.chunk_bytes
            ):
                return
        if not open_file.unwritten:
            return
        chunk, open_file.unwritten = open_file.unwritten, []
        open_file.unwritten_rows = open_file.unwritten_bytes = 0
        loop = asyncio.get_running_loop()
        open_file.writes.append(
            loop.run_in_executor(self._writer_thread, writer.write_all, chunk)
        )
        if len(open_file.writes) > MAX_QUEUED_WRITES:
            await self._settle_writes(open_file, keep=MAX_QUEUED_WRITES // 2)

    async def _settle_writes(self, open_file: OpenFile, keep: int = 0) -> None:
        """Wait for the file's queued writes (all but ``keep``); on a failed one, give the
        incremental file up (the commit writes it whole)."""
        while len(open_file.writes) > keep:
            try:
                await open_file.writes.pop(0)
            except OSError:
                self._give_up_writer(open_file)

    def _give_up_writer(self, open_file: OpenFile) -> None:
        writer, open_file.writer = open_file.writer, None
        if writer is not None:
            self._writer_thread.submit(writer.abandon)

    async def _commit(self, partition: str) -> None:
        """Acknowledge, write the file whole, rename it into place, forget its log."""
        await self._settle_ack()
        await self._retrying(self._acknowledge)
        open_file = self._open[partition]
        await self._write_file(open_file, None)
        await self._settle_writes(open_file)
        await self._retrying(lambda: self._finish(open_file))
        del self._open[partition]
        await self._retrying(self._acknowledge)
        open_file.log.close()
        with contextlib.suppress(FileNotFoundError):
            open_file.log.path.unlink()
        self.committed_files += 1
        self.status.extra["files"] = self.committed_files

    def _finish(self, open_file: OpenFile) -> None:
        """Complete the file (or write it whole if writing it went wrong) and rename it into
        place (on a thread, after its queued writes)."""
        writer, open_file.writer = open_file.writer, None
        if writer is None:
            self._place(open_file.batches, open_file.target)
            return
        try:
            writer.finish()
        except OSError:
            writer.abandon()
            raise  # retried: written whole from the rows kept
        self._rename(writer.path, open_file.target)

    def _place(self, batches: list[pa.RecordBatch], target: str) -> None:
        """Write ``batches`` to a temporary file, then rename it to ``target``."""
        writer = self.file_format.open(self._tmp(Path(target).name))
        try:
            for batch in batches:
                writer.write(batch)
            writer.finish()
        except BaseException:
            writer.abandon()
            raise
        self._rename(writer.path, target)

    def _rename(self, tmp: Path, target: str) -> None:
        final = self.root / target
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _sync_dir(final.parent)
        self.status.bytes += final.stat().st_size

    def _acknowledge(self) -> None:
        """Make every logged row durable and record it in the manifest (on a thread)."""
        self._write_acknowledged(*self._manifest())

    def _manifest(self) -> tuple[list[wal.Wal], dict[str, Any]]:
        """The open logs and the manifest that acknowledges every row they hold now."""
        logs = [f.log for f in self._open.values()]
        manifest = {
            "taken": self._taken,
            "serial": self._serial,
            "open": {f.log.path.name: f.rows for f in self._open.values()},
        }
        return logs, manifest

    def _write_acknowledged(self, logs: list[wal.Wal], manifest: dict[str, Any]) -> None:
        """fsync ``logs`` (they hold at least the rows ``manifest`` counts), then write it."""
        for log in logs:
            log.sync()
        self._write_manifest(manifest)

    def _write_manifest(self, manifest: dict[str, Any]) -> None:
        tmp = self.in_progress / (MANIFEST + ".tmp")
        with open(tmp, "w", encoding="utf-8") as out:
            json.dump(manifest, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.in_progress / MANIFEST)
        _sync_dir(self.in_progress)

    def _recover(self) -> None:
        """Commit what the last run acknowledged and left in progress (on a thread)."""
        self.in_progress.mkdir(parents=True, exist_ok=True)
        manifest: dict[str, Any] = {}
        with contextlib.suppress(FileNotFoundError, ValueError):
            manifest = json.loads((self.in_progress / MANIFEST).read_text(encoding="utf-8"))
        acknowledged: dict[str, int] = manifest.get("open", {})
        for log_path in sorted(self.in_progress.glob("*.wal")):
            target, batches = wal.read(log_path)
            keep = acknowledged.get(log_path.name, 0)
            if target is not None and keep and not (self.root / target).exists():
                rows = pa.Table.from_batches(batches, schema=batches[0].schema).slice(0, keep)
                self._place(rows.to_batches(), target)
            log_path.unlink()
        for tmp in self.in_progress.glob("*.tmp"):
            tmp.unlink()
        self._serial = max(int(manifest.get("serial", 1)), self._next_serial_on_disk())
        if self.context.replays_inputs:
            self._skip = int(manifest.get("taken", 0))
        self._write_manifest({"taken": self._taken, "serial": self._serial, "open": {}})

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
                for partition, f in list(self._open.items()):
                    idle = self.options.inactivity_rollover_seconds
                    if now - f.opened_at >= self.options.rollover_seconds or (
                        idle is not None and now - f.last_write_at >= idle
                    ):
                        await self._commit(partition)

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


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
