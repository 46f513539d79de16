"""The filesystem sink reads Arroyo's current option names (and its older ones)."""

from __future__ import annotations

import re
import uuid

import pytest

from arroyo_lite.cluster.portability import extensions_used
from arroyo_lite.connectors.filesystem import layout
from arroyo_lite.connectors.filesystem.options import FilesystemOptions
from arroyo_lite.sql import compile_sql
from tests.support.corpus import CORPUS, MISSING
from tests.support.sinks import sink_table

# The sink of Arroyo's planner test filesystem_partition.sql, on a local path.
CURRENT = """
CREATE TABLE events (id TEXT, type TEXT NOT NULL, app_version TEXT) WITH (
    connector = 'sse', endpoint = 'http://127.0.0.1:1/events', format = 'json');
CREATE TABLE events_sink (id TEXT, type TEXT NOT NULL, app_version TEXT) WITH (
    connector = 'filesystem',
    path = '/tmp/events',
    format = 'parquet',
    type = 'sink',
    'filename.strategy' = 'uuid',
    'parquet.compression' = 'zstd',
    'partitioning.time_pattern' = '%Y/%m/%d/%H',
    'partitioning.fields' = [type, app_version],
    'rolling_policy.interval' = interval '6000 seconds',
    'rolling_policy.file_size' = '64mb',
    'rolling_policy.inactivity_interval' = '5 minutes',
    'parquet.row_group_size' = '8mb',
    'storage.aws_region' = 'eu-west-1',
    'sink.version' = 'v2'
);
INSERT INTO events_sink SELECT * FROM events;
"""


def sink_options(sql: str) -> FilesystemOptions:
    table = sink_table(sql)
    assert isinstance(table.connector_options, FilesystemOptions)
    return table.connector_options


def test_arroyos_current_names_are_read_with_their_types():
    options = sink_options(CURRENT)
    assert options.partition_fields == ("type", "app_version")
    assert options.time_partition_pattern == "%Y/%m/%d/%H"
    assert options.rollover_seconds == 6000
    assert options.inactivity_rollover_seconds == 300
    assert options.target_file_size == 64 * 1024 * 1024
    assert options.parquet_row_group_bytes == 8 * 1024 * 1024
    assert options.parquet_compression == "zstd"
    assert options.filename_strategy == "uuid"
    assert options.storage == (("aws_region", "eu-west-1"),)


@pytest.mark.skipif(CORPUS is None, reason=MISSING)
def test_the_sink_above_is_the_one_of_arroyos_planner_test():
    assert CORPUS is not None
    text = (CORPUS / "planner" / "filesystem_partition.sql").read_text()
    assert "'partitioning.fields' = [type, app_version]" in text


def test_a_file_with_the_current_names_uses_no_extension():
    assert [u.option for u in extensions_used(compile_sql(CURRENT))] == []


def test_the_older_names_still_work_and_are_named_by_the_strict_check():
    old = CURRENT.replace("'partitioning.fields' = [type, app_version]", "partition_fields = "
                          "'type, app_version'").replace(
        "'rolling_policy.interval' = interval '6000 seconds'", "rollover_seconds = 6000"
    ).replace("'parquet.compression' = 'zstd'", "parquet_compression = 'none'")  # fmt: skip
    options = sink_options(old)
    assert options.partition_fields == ("type", "app_version")
    assert options.rollover_seconds == 6000
    assert options.parquet_compression == "uncompressed"
    used = {u.option: u.instead for u in extensions_used(compile_sql(old))}
    assert used["rollover_seconds"] == "an older name: Arroyo knows only 'rolling_policy.interval'"
    assert set(used) == {"partition_fields", "rollover_seconds", "parquet_compression"}


def test_file_name_strategies():
    def name(strategy: str) -> str:
        options = sink_options(CURRENT.replace("'uuid'", f"'{strategy}'"))
        return layout.file_name(options, 7, "parquet")

    assert name("serial") == "00007-000.parquet"
    v7 = uuid.UUID(name("uuid_v7").removesuffix(".parquet"))
    assert v7.version == 7 and v7.variant == uuid.RFC_4122
    assert re.fullmatch(r"[0-9A-HJKMNP-TV-Z]{26}\.parquet", name("ulid"))
    assert uuid.UUID(name("uuid").removesuffix(".parquet")).version == 4
