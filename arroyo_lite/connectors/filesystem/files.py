"""Writing one file in the table's format, incrementally: JSON lines or Parquet.

:data:`FILE_FORMATS` holds one entry per format a filesystem sink writes. Its
:class:`FileWriter` takes the rows of one file batch by batch (``_timestamp`` included) and
:meth:`FileWriter.finish` ends the file with an ``fsync``, so a file renamed afterwards is
complete on disk. JSON uses the sink encoder (:mod:`arroyo_lite.formats.encode`, Arroyo's
JSON rules); Parquet is written by pyarrow's ``ParquetWriter`` with ``_timestamp`` left out,
as Arroyo's Parquet files hold the table's columns. Writers are used from one thread at a
time.

Parquet row groups hold up to ``parquet_row_group_size`` rows (``parquet.row_group_size``
bytes), and a sink that has caught up hands over what it gathered as a row group once that
is at least :data:`ACKNOWLEDGED_GROUP_ROWS` rows (see :meth:`FileWriter.write_group`): a
pipeline whose rows arrive slower than they are acknowledged has its file encoded as the
rows come, not all at the commit. Row groups that size are cheap only if no column rebuilds
a useless dictionary in each of them: Arrow dictionary-encodes every column until its
dictionary reaches 1 MiB, so a column of distinct values (ids, prices, times) costs a hash
insert per value up to that point in every row group, then falls back to plain encoding
anyway. The writer therefore leaves out of dictionary encoding each column whose values are
nearly all distinct (:data:`DISTINCT_PLAIN_SHARE`) in the file's first row group: its
dictionary would be as large as its values, and the file comes out smaller, not larger.
"""

from __future__ import annotations

import contextlib
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from arroyo_lite.config import TIMESTAMP_COLUMN, Format, TableConfig
from arroyo_lite.connectors.filesystem.options import FilesystemOptions
from arroyo_lite.formats.encode import Encoder, make_encoder

#: How often the writeback of a long write's output is started while it runs, and the
#: Arrow size of a write from which that is worth a helper thread.
WRITEBACK_INTERVAL_S = 0.02
WRITEBACK_HELPER_BYTES = 8 * 1024 * 1024
#: Fewest rows an acknowledgement hands over as a Parquet row group of their own (DuckDB
#: writes row groups of 122,880 rows, polars of 262,144: readers do well with this size).
ACKNOWLEDGED_GROUP_ROWS = 131_072
#: A column whose non-null values in the file's first row group are at least this share
#: distinct is written without dictionary (judged once there are :data:`DISTINCT_MIN_ROWS`).
DISTINCT_PLAIN_SHARE = 0.9
DISTINCT_MIN_ROWS = 4096


class FileWriter(ABC):
    """One file being written at ``path``, through Arrow's native file (no GIL per write).

    ``chunk_rows``, ``chunk_bytes``: how many rows (or bytes of them) the sink gathers before
    handing them to :meth:`write_all` on its writer thread (a thread hop costs more than
    appending a small batch).
    """

    chunk_rows = 65_536
    chunk_bytes = 64 * 1024 * 1024
    #: Rows gathered from which a sink that has caught up hands them over at once
    #: (:meth:`write_group`) instead of waiting for ``chunk_rows``.
    group_rows_early = chunk_rows

    def __init__(self, path: Path) -> None:
        self.path = path
        self.out = pa.OSFile(str(path), "wb")
        self._pushed = 0  # (bytes whose writeback was started)

    @abstractmethod
    def write(self, batch: pa.RecordBatch) -> None: ...

    def write_all(self, batches: list[pa.RecordBatch], nbytes: int) -> None:
        """Write ``batches`` (``nbytes``: their ``nbytes``, which the caller knows)."""
        del nbytes
        for batch in batches:
            self.write(batch)
        self.start_writeback()

    def write_group(self, batches: list[pa.RecordBatch], nbytes: int) -> None:
        """Write ``batches`` now, with whatever the writer gathered before them (Parquet: as
        one row group, or more if they exceed its limits)."""
        self.write_all(batches, nbytes)

    def start_writeback(self) -> None:
        """Start writing what the file holds so far to disk, without waiting (so the fsync
        of :meth:`finish` waits for little more than the end of the file). Linux starts the
        writeback of a file's dirty pages on ``POSIX_FADV_DONTNEED``; elsewhere, or if it
        fails, the fsync does it all."""
        with contextlib.suppress(AttributeError, OSError):
            fd = self.out.fileno()
            end = os.fstat(fd).st_size
            if end > self._pushed:  # (what is new since the last call)
                os.posix_fadvise(fd, self._pushed, end - self._pushed, os.POSIX_FADV_DONTNEED)
                self._pushed = end

    def writing_back(self, write: Callable[[], None]) -> None:
        """Run ``write`` (a long one: a row group) while a helper thread starts the
        writeback of what it has written so far every :data:`WRITEBACK_INTERVAL_S`: the
        disk works while the file is encoded, not after."""
        done = threading.Event()

        def push() -> None:
            while not done.wait(WRITEBACK_INTERVAL_S):
                self.start_writeback()

        helper = threading.Thread(target=push, name="filesystem-writeback", daemon=True)
        helper.start()
        try:
            write()
        finally:
            done.set()
            helper.join()
        self.start_writeback()

    def finish(self) -> None:
        """Complete the file and make it durable."""
        self.out.close()
        fd = os.open(self.path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def abandon(self) -> None:
        """Close and remove the (incomplete) file."""
        try:
            self.out.close()
        finally:
            self.path.unlink(missing_ok=True)


class JsonWriter(FileWriter):
    def __init__(self, path: Path, encoder: Encoder) -> None:
        super().__init__(path)
        self.encoder = encoder

    def write(self, batch: pa.RecordBatch) -> None:
        self.out.write(self.encoder.encode(batch))


class ParquetFileWriter(FileWriter):
    def __init__(self, path: Path, options: FilesystemOptions) -> None:
        super().__init__(path)
        self.group_rows = options.parquet_row_group_size
        self.group_bytes = options.parquet_row_group_bytes
        self.chunk_rows = self.group_rows  # (one row group per hop)
        self.chunk_bytes = self.group_bytes
        self.group_rows_early = min(ACKNOWLEDGED_GROUP_ROWS, self.group_rows)
        self.compression: Any = _PYARROW_COMPRESSION.get(
            options.parquet_compression, options.parquet_compression
        )
        self.pending_bytes = 0
        self.writer: pq.ParquetWriter | None = None
        self.pending: list[pa.RecordBatch] = []
        self.pending_rows = 0

    def write(self, batch: pa.RecordBatch) -> None:
        self.write_all([batch], batch.nbytes)

    def write_all(self, batches: list[pa.RecordBatch], nbytes: int) -> None:
        # Batches are gathered into row groups of ``group_rows`` (a row group per batch
        # would make small groups and a large footer).
        self.pending.extend(batches)
        self.pending_rows += sum(batch.num_rows for batch in batches)
        self.pending_bytes += nbytes
        if self.pending_rows >= self.group_rows or self.pending_bytes >= self.group_bytes:
            self._write_pending()

    def write_group(self, batches: list[pa.RecordBatch], nbytes: int) -> None:
        self.pending.extend(batches)
        self.pending_rows += sum(batch.num_rows for batch in batches)
        self.pending_bytes += nbytes
        self._write_pending()

    def _write_pending(self) -> None:
        if not self.pending:
            return
        table = pa.Table.from_batches(self.pending)
        if TIMESTAMP_COLUMN in table.schema.names:
            table = table.drop_columns([TIMESTAMP_COLUMN])
        if self.writer is None:
            self.writer = pq.ParquetWriter(
                self.out,
                table.schema,
                compression=self.compression,
                use_dictionary=dictionary_columns(table),  # type: ignore[arg-type]  # (stubs: bool only; pyarrow takes a list)
            )
        writer = self.writer
        if self.pending_bytes >= WRITEBACK_HELPER_BYTES:
            self.writing_back(lambda: writer.write_table(table, row_group_size=self.group_rows))
        else:
            writer.write_table(table, row_group_size=self.group_rows)
            self.start_writeback()
        self.pending, self.pending_rows, self.pending_bytes = [], 0, 0

    def finish(self) -> None:
        self._write_pending()
        if self.writer is not None:
            self.writer.close()
        super().finish()


def dictionary_columns(table: pa.Table) -> bool | list[str]:
    """The columns of a file whose first row group is ``table`` worth dictionary-encoding:
    all but those of nearly distinct values (see the module docstring); ``True`` (every
    column) when there are too few rows to judge or a column is nested or has a dotted name
    (pyarrow names the dictionary's columns by dotted leaf paths)."""
    sample = table.slice(0, ACKNOWLEDGED_GROUP_ROWS)
    keep: list[str] = []
    for field, column in zip(sample.schema, sample.columns, strict=True):
        if pa.types.is_nested(field.type) or "." in field.name:
            return True
        values = len(column) - column.null_count
        if values < DISTINCT_MIN_ROWS:
            return True
        if pa.types.is_boolean(field.type) or pa.types.is_dictionary(field.type):
            keep.append(field.name)
            continue
        distinct = pc.count_distinct(column, mode="only_valid").as_py()
        if distinct < DISTINCT_PLAIN_SHARE * values:
            keep.append(field.name)
    return True if len(keep) == len(sample.columns) else keep


#: Arroyo's ``parquet.compression`` names -> pyarrow's (pyarrow's lz4 is the raw frame).
_PYARROW_COMPRESSION = {"uncompressed": "none", "lz4_raw": "lz4"}


@dataclass(frozen=True, slots=True)
class FileFormat:
    """How one format writes files: its default suffix and a writer factory."""

    suffix: str
    open: Callable[[Path], FileWriter]


def json_format(config: TableConfig, options: FilesystemOptions) -> FileFormat:
    encoder = make_encoder(config)
    return FileFormat("json", lambda path: JsonWriter(path, encoder))


def parquet_format(config: TableConfig, options: FilesystemOptions) -> FileFormat:
    del config
    return FileFormat("parquet", lambda path: ParquetFileWriter(path, options))


FILE_FORMATS: dict[Format, Callable[[TableConfig, FilesystemOptions], FileFormat]] = {
    Format.JSON: json_format,
    Format.PARQUET: parquet_format,
}
