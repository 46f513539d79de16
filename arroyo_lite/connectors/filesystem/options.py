"""The options of a ``filesystem`` sink table, declared once.

Arroyo's keys for a filesystem sink (its ``file_system_sink_from_options``): ``type``,
``path``, the rolling policy (``rollover_seconds``, ``target_file_size``,
``inactivity_rollover_seconds``), partitioning (``partition_fields``,
``time_partition_pattern``), file naming (``filename.prefix``, ``filename.suffix``,
``filename.strategy``) and the Parquet settings (``parquet_compression``,
``parquet_row_group_size``). Object-store settings (``storage.*``, multipart sizes) have no
meaning for a local path and are not accepted.
"""

from __future__ import annotations

from dataclasses import dataclass

from arroyo_lite.connectors.option_spec import OptionKind, OptionSet, option

STRING, INTEGER = OptionKind.STRING, OptionKind.INTEGER


def _type_check(value: str) -> tuple[str, str | None] | None:
    if value == "sink":
        return None
    if value == "source":
        return (
            "filesystem sources are not supported by arroyo-lite",
            "arroyo-lite writes files (type = 'sink'); read them with DuckDB",
        )
    return ("type must be one of 'source' or 'sink'", "write type = 'sink'")


@dataclass(frozen=True, slots=True)
class FilesystemOptions:
    """``partition_fields`` holds the split field names."""

    type: str = option(
        STRING, "Whether the table is a source or a sink ('sink').", required=True,
        check=_type_check,
    )  # fmt: skip
    path: str = option(
        STRING,
        "URI of the folder to write to (a local path or a file:// URL).",
        required=True,
    )
    rollover_seconds: int = option(
        INTEGER,
        "Number of seconds to wait before rolling over to a new file",
        default=30,
        exclusive_minimum=0,
    )
    target_file_size: int | None = option(
        INTEGER,
        "Target size for each file, in bytes (arroyo-lite measures the rows' Arrow size)",
        exclusive_minimum=0,
    )
    inactivity_rollover_seconds: int | None = option(
        INTEGER,
        "Number of seconds of inactivity to wait before rolling over to a new file",
        exclusive_minimum=0,
    )
    partition_fields: tuple[str, ...] = option(
        STRING,
        "Comma-separated fields to partition the data by (directories 'field=value').",
        default_factory=tuple,
    )
    time_partition_pattern: str | None = option(
        STRING,
        "The pattern of the date string (strftime of _timestamp, e.g. '%Y/%m/%d/%H').",
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
        "How files are named: a serial number or a uuid.",
        key="filename.strategy",
        default="serial",
        enum=("serial", "uuid"),
    )
    parquet_compression: str = option(
        STRING,
        "Compression of Parquet files.",
        default="none",
        enum=("none", "snappy", "gzip", "zstd", "lz4"),
    )
    parquet_row_group_size: int = option(
        INTEGER,
        "Most rows in one Parquet row group (the default: parquet-rs', Arroyo's writer).",
        default=1_048_576,
        exclusive_minimum=0,
    )


OPTIONS = OptionSet(
    FilesystemOptions,
    title="FileSystemTable",
    description="Options of a filesystem sink on a local path (Arroyo's sink keys).",
)
