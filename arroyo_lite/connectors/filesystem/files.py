"""Writing one finished file in the table's format: JSON lines or Parquet.

:data:`FILE_FORMATS` holds one entry per format a filesystem sink writes; each turns the rows
of a file (a ``pa.Table``, ``_timestamp`` included) into a file at a path, and ends with an
``fsync`` so a renamed file is complete on disk. JSON uses the sink encoder
(:mod:`arroyo_lite.formats.encode`, Arroyo's JSON rules); Parquet is written by pyarrow with
``_timestamp`` left out, as Arroyo's Parquet files hold the table's columns.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from arroyo_lite.config import TIMESTAMP_COLUMN, Format, TableConfig
from arroyo_lite.connectors.filesystem.options import FilesystemOptions
from arroyo_lite.formats.encode import make_encoder


@dataclass(frozen=True, slots=True)
class FileFormat:
    """How one format writes a file: its default suffix and the writer."""

    suffix: str
    write: Callable[[pa.Table, Path], None]


def _without_timestamp(rows: pa.Table) -> pa.Table:
    if TIMESTAMP_COLUMN in rows.column_names:
        return rows.drop_columns([TIMESTAMP_COLUMN])
    return rows


def _synced(path: Path, write: Callable[[IO[bytes]], object]) -> None:
    with open(path, "wb") as out:
        write(out)
        out.flush()
        os.fsync(out.fileno())


def json_format(config: TableConfig, options: FilesystemOptions) -> FileFormat:
    encoder = make_encoder(config)

    def write(rows: pa.Table, path: Path) -> None:
        data = b"".join(encoder.encode(b) for b in rows.to_batches())
        _synced(path, lambda out: out.write(data))

    return FileFormat("json", write)


def parquet_format(config: TableConfig, options: FilesystemOptions) -> FileFormat:
    del config
    compression: Any = options.parquet_compression

    def write(rows: pa.Table, path: Path) -> None:
        _synced(
            path,
            lambda out: pq.write_table(
                _without_timestamp(rows),
                out,
                compression=compression,
                row_group_size=options.parquet_row_group_size,
            ),
        )

    return FileFormat("parquet", write)


FILE_FORMATS: dict[Format, Callable[[TableConfig, FilesystemOptions], FileFormat]] = {
    Format.JSON: json_format,
    Format.PARQUET: parquet_format,
}
