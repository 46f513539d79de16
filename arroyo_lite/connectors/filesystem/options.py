"""The options of a ``filesystem`` sink table, declared once.

Arroyo's keys for a filesystem sink, as its current ``FileSystemSink::from_opts`` reads them
(``crates/arroyo-connectors/src/filesystem/config.rs``): ``type``, ``path``, ``storage.*``, the
rolling policy (``rolling_policy.file_size``, ``.interval``, ``.inactivity_interval``,
``.watermark_expiration``), file naming (``filename.prefix``, ``.suffix``, ``.strategy``),
partitioning (``partitioning.time_pattern``, ``partitioning.fields``,
``shuffle_by_partition.enabled``), ``multipart.*``, ``sink.version``, and the Parquet format's
``parquet.compression`` and ``parquet.row_group_size`` (bytes). Object-store settings
(``storage.*``, ``multipart.*``) are accepted and have no effect on a local path.

Older names (``rollover_seconds``, ``target_file_size``, ``inactivity_rollover_seconds``,
``partition_fields``, ``time_partition_pattern``, ``parquet_compression``) are still read, as
deprecated arroyo-lite extensions (:class:`~arroyo_lite.connectors.option_spec.Alias`: a
cluster only knows the current names, so ``validate --arroyo`` names them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from arroyo_lite.connectors.option_spec import Alias, OptionKind, OptionSet, option

STRING, INTEGER, BOOLEAN = OptionKind.STRING, OptionKind.INTEGER, OptionKind.BOOLEAN
DURATION, DATA_SIZE = OptionKind.DURATION, OptionKind.DATA_SIZE


def _type_check(value: str) -> tuple[str, str | None] | None:
    if value == "sink":
        return None
    if value == "source":
        return (
            "filesystem sources are not supported by arroyo-lite",
            "arroyo-lite writes files (type = 'sink'); read them with DuckDB",
        )
    return ("type must be one of 'source' or 'sink'", "write type = 'sink'")


def _no_watermark_expiration(value: bool) -> tuple[str, str | None] | None:
    if not value:
        return None
    return (
        "rolling_policy.watermark_expiration is not supported by arroyo-lite",
        "files roll by rolling_policy.interval, .inactivity_interval and .file_size",
    )


def _split_fields(text: str) -> list[str]:
    """The older ``partition_fields``: comma-separated names."""
    return [name.strip() for name in text.split(",") if name.strip()]


def _old_compression(value: str) -> str:
    """The older ``parquet_compression`` spelt no compression ``none``."""
    return "uncompressed" if value == "none" else value


def local_path(path: str) -> Path | None:
    """The local directory ``path`` names (a plain path or a ``file://`` URL), else ``None``."""
    parts = urlsplit(path)
    if parts.scheme == "file":
        return Path(parts.path) if parts.netloc in ("", "localhost") else None
    if parts.scheme and len(parts.scheme) > 1:  # (a one-letter scheme is a drive letter)
        return None
    return Path(path)


@dataclass(frozen=True, slots=True)
class FilesystemOptions:
    """Durations are seconds, sizes bytes; ``partition_fields`` the field names."""

    type: str = option(
        STRING, "Whether the table is a source or a sink ('sink').", required=True,
        check=_type_check,
    )  # fmt: skip
    path: str = option(
        STRING,
        "URI of the folder to write to (a local path or a file:// URL).",
        required=True,
    )
    storage: Any = option(
        STRING,
        "Object-store settings ('storage.<name>'); no effect on a local path.",
        family=True,
    )
    target_file_size: int | None = option(
        DATA_SIZE,
        "Files will be rolled after reaching this number of bytes (arroyo-lite measures the "
        "rows' Arrow size), e.g. '128mb'",
        key="rolling_policy.file_size",
        exclusive_minimum=0,
        aliases=(Alias("target_file_size", INTEGER),),
    )
    rollover_seconds: float = option(
        DURATION,
        "Time to wait before rolling over to a new file, e.g. interval '30 seconds'",
        key="rolling_policy.interval",
        default=30.0,
        minimum=1,
        aliases=(Alias("rollover_seconds", INTEGER),),
    )
    inactivity_rollover_seconds: float | None = option(
        DURATION,
        "Time of inactivity to wait before rolling over to a new file",
        key="rolling_policy.inactivity_interval",
        minimum=1,
        aliases=(Alias("inactivity_rollover_seconds", INTEGER),),
    )
    watermark_expiration: bool = option(
        BOOLEAN,
        "Close time-partitioned files when the watermark passes their bucket (only false "
        "here).",
        key="rolling_policy.watermark_expiration",
        default=False,
        check=_no_watermark_expiration,
    )
    filename_prefix: str | None = option(
        STRING,
        "The prefix to use in file name. i.e prefix-<uuid>.parquet",
        key="filename.prefix",
    )
    filename_suffix: str | None = option(
        STRING,
        "This will overwrite the default file suffix. i.e .parquet, use with caution",
        key="filename.suffix",
    )
    filename_strategy: str = option(
        STRING,
        "How files are named: a serial number (arroyo-lite's default), a uuid, a uuid v7 "
        "(Arroyo's default) or a ulid.",
        key="filename.strategy",
        default="serial",
        enum=("serial", "uuid", "uuid_v7", "ulid"),
    )
    time_partition_pattern: str | None = option(
        STRING,
        "The pattern of the date string (strftime of _timestamp, e.g. '%Y/%m/%d/%H').",
        key="partitioning.time_pattern",
        aliases=(Alias("time_partition_pattern", STRING),),
    )
    partition_fields: tuple[str, ...] = option(
        OptionKind.FIELD_LIST,
        "Fields to partition the data by, e.g. [region, kind] (directories 'field=value').",
        key="partitioning.fields",
        default_factory=tuple,
        aliases=(Alias("partition_fields", STRING, _split_fields),),
    )
    shuffle_by_partition: bool = option(
        BOOLEAN,
        "Shuffle by the partition keys (no effect: arroyo-lite writes from one task).",
        key="shuffle_by_partition.enabled",
        default=False,
    )
    multipart_target_part_size: int | None = option(
        DATA_SIZE,
        "Target size of each part of a multipart upload (no effect on a local path).",
        key="multipart.target_part_size",
    )
    multipart_max_parts: int | None = option(
        INTEGER,
        "Most parts of a multipart upload (no effect on a local path).",
        key="multipart.max_parts",
        exclusive_minimum=0,
    )
    multipart_minimum_size: int | None = option(
        DATA_SIZE,
        "Files smaller than this are one put (no effect on a local path).",
        key="multipart.minimum_multipart_size",
    )
    sink_version: str = option(
        STRING,
        "Which version of Arroyo's file system sink to use (no effect here).",
        key="sink.version",
        default="v1",
        enum=("v1", "v2"),
    )
    parquet_compression: str = option(
        STRING,
        "Compression of Parquet files.",
        key="parquet.compression",
        default="zstd",
        enum=("uncompressed", "snappy", "gzip", "zstd", "lz4", "lz4_raw"),
        aliases=(Alias("parquet_compression", STRING, _old_compression),),
    )
    parquet_row_group_bytes: int = option(
        DATA_SIZE,
        "Largest Parquet row group, in bytes of Arrow data (as Arroyo: '128mb').",
        key="parquet.row_group_size",
        default=128 * 1024 * 1024,
        exclusive_minimum=0,
    )
    # Extension beyond Arroyo (whose writer, parquet-rs, caps row groups at this many rows).
    parquet_row_group_size: int = option(
        INTEGER,
        "Most rows in one Parquet row group (the default: parquet-rs', Arroyo's writer).",
        default=1_048_576,
        exclusive_minimum=0,
        extension=True,
    )


OPTIONS = OptionSet(
    FilesystemOptions,
    title="FileSystemTable",
    description="Options of a filesystem sink on a local path (Arroyo's sink keys).",
)
