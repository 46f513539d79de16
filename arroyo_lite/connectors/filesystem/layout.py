"""Where rows go: partition directories (columnar, per batch) and file names.

As Arroyo: ``partition_fields`` give ``field=value`` directories (joined by ``/``, values as
text), ``time_partition_pattern`` formats each row's ``_timestamp`` (strftime, e.g.
``%Y/%m/%d``), and with both the time part comes first. File names are
``[prefix-]NAME.suffix`` where NAME is a zero-padded serial (``00001-000``: file index,
subtask 0, as Arroyo's local sink), a uuid (v4), a uuid v7 or a ulid (both time-ordered:
Arroyo's default is ``uuid_v7``); the suffix defaults to the format's.
"""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Iterator
from typing import Any

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
    stem = _STEMS[options.filename_strategy](serial)
    suffix = options.filename_suffix or default_suffix
    name = f"{stem}.{suffix}"
    return f"{options.filename_prefix}-{name}" if options.filename_prefix else name


_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def _uuid_v7() -> str:
    """RFC 9562 UUIDv7: 48 bits of Unix milliseconds, version 7, 74 random bits."""
    value = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # variant (RFC 4122)
    return str(uuid.UUID(int=value))


def _ulid() -> str:
    """A ULID: 48 bits of Unix milliseconds and 80 random bits, 26 Crockford base32 digits."""
    value = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
    return "".join(_CROCKFORD[(value >> (5 * i)) & 31] for i in reversed(range(26)))


_STEMS = {
    "serial": lambda serial: f"{serial:05d}-000",
    "uuid": lambda serial: str(uuid.uuid4()),
    "uuid_v7": lambda serial: _uuid_v7(),
    "ulid": lambda serial: _ulid(),
}
