"""Where rows go: partition directories (columnar, per batch) and file names.

As Arroyo: ``partition_fields`` give ``field=value`` directories (joined by ``/``, values as
text), ``time_partition_pattern`` formats each row's ``_timestamp`` (strftime, e.g.
``%Y/%m/%d``), and with both the time part comes first. File names are
``[prefix-]NAME.suffix`` where NAME is a zero-padded serial (``00001-000``: file index,
subtask 0, as Arroyo's local sink) or a uuid; the suffix defaults to the format's.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.compute as pc

from arroyo_lite.config import TIMESTAMP_COLUMN
from arroyo_lite.connectors.filesystem.options import FilesystemOptions

#: (typed loosely: the stubs do not accept a plain str separator)
_join: Any = pc.binary_join_element_wise

#: Arroyo's directory of files being written (readers of the path skip it).
IN_PROGRESS = "__in_progress"


def partition_keys(batch: pa.RecordBatch, options: FilesystemOptions) -> Any:
    """Each row's partition directory (``None``: the table is not partitioned)."""
    parts: list[Any] = []
    if options.time_partition_pattern:
        stamps = batch.column(batch.schema.get_field_index(TIMESTAMP_COLUMN))
        parts.append(pc.strftime(stamps, format=options.time_partition_pattern))
    for field in options.partition_fields:
        values: Any = pc.cast(batch.column(batch.schema.get_field_index(field)), pa.string())
        parts.append(_join(f"{field}=", pc.fill_null(values, ""), ""))
    if not parts:
        return None
    if len(parts) == 1:
        return parts[0]
    return _join(*parts, "/")


def split(
    batch: pa.RecordBatch, options: FilesystemOptions
) -> Iterator[tuple[str, pa.RecordBatch]]:
    """``(partition, rows)`` for each partition present in ``batch`` (``""``: unpartitioned)."""
    keys = partition_keys(batch, options)
    if keys is None:
        yield "", batch
        return
    for key in pc.unique(keys).to_pylist():
        yield str(key), batch.filter(pc.equal(keys, pa.scalar(key, pa.string())))


def file_name(options: FilesystemOptions, serial: int, default_suffix: str) -> str:
    """The name of a new file (the ``serial``-th one, counted over the sink's life)."""
    stem = f"{serial:05d}-000" if options.filename_strategy == "serial" else str(uuid.uuid4())
    suffix = options.filename_suffix or default_suffix
    name = f"{stem}.{suffix}"
    return f"{options.filename_prefix}-{name}" if options.filename_prefix else name


def local_path(path: str) -> Path | None:
    """The local directory ``path`` names (a plain path or a ``file://`` URL), else ``None``."""
    parts = urlsplit(path)
    if parts.scheme == "file":
        return Path(parts.path) if parts.netloc in ("", "localhost") else None
    if parts.scheme and len(parts.scheme) > 1:  # (a one-letter scheme is a drive letter)
        return None
    return Path(path)
