"""How the filesystem sink's Parquet writer lays out a file (``connectors/filesystem/files``):
rows handed over by an acknowledgement become a row group of their own, and a column whose
values are nearly all distinct is written without a dictionary while the others keep theirs;
through the running sink, a sink that catches up after every batch writes row groups of
:data:`ACKNOWLEDGED_GROUP_ROWS`, one fed a burst writes one large row group. Files are real,
and read back by pyarrow and DuckDB."""

from __future__ import annotations

import asyncio
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from arroyo_lite.config import TableConfig
from arroyo_lite.connectors.base import SourceContext
from arroyo_lite.connectors.filesystem.files import (
    ACKNOWLEDGED_GROUP_ROWS,
    DISTINCT_MIN_ROWS,
    dictionary_columns,
    parquet_format,
)
from arroyo_lite.connectors.filesystem.operator import FilesystemSink
from arroyo_lite.connectors.filesystem.options import FilesystemOptions
from tests.support.sinks import sink_table

SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64()),
        pa.field("symbol", pa.string()),
        pa.field("_timestamp", pa.timestamp("ns")),
    ]
)


def sink_config(path: Path) -> TableConfig:
    return sink_table(
        "CREATE TABLE out (id BIGINT, symbol TEXT) WITH (connector = 'filesystem', "
        f"type = 'sink', path = '{path}', format = 'parquet');"
    )


def rows(start: int, n: int) -> pa.RecordBatch:
    ids = pa.array(range(start, start + n), pa.int64())
    symbols = pa.array([("AAPL", "MSFT", "GOOG")[i % 3] for i in range(start, start + n)])
    stamps = pa.array([0] * n, pa.timestamp("ns"))
    return pa.record_batch([ids, symbols, stamps], schema=SCHEMA)


def dictionary_encoded(meta: pq.FileMetaData, column: int) -> bool:
    encodings = meta.row_group(0).column(column).encodings
    return any("DICTIONARY" in encoding for encoding in encodings)


def test_nearly_distinct_columns_lose_their_dictionary_and_the_rest_keep_it() -> None:
    table = pa.Table.from_batches([rows(0, DISTINCT_MIN_ROWS * 2)]).drop_columns(["_timestamp"])
    assert dictionary_columns(table) == ["symbol"]


def test_too_few_rows_to_judge_keep_every_dictionary() -> None:
    table = pa.Table.from_batches([rows(0, DISTINCT_MIN_ROWS - 1)]).drop_columns(["_timestamp"])
    assert dictionary_columns(table) is True


def test_each_acknowledged_group_is_a_row_group_and_the_file_reads_back(tmp_path: Path) -> None:
    config = sink_config(tmp_path)
    assert isinstance(config.connector_options, FilesystemOptions)
    path = tmp_path / "part.parquet.tmp"
    writer = parquet_format(config, config.connector_options).open(path)
    first, second = rows(0, ACKNOWLEDGED_GROUP_ROWS), rows(ACKNOWLEDGED_GROUP_ROWS, 1000)
    writer.write_group([first], first.nbytes)
    writer.write_group([second], second.nbytes)
    writer.finish()

    meta = pq.ParquetFile(path).metadata
    assert meta.num_row_groups == 2
    assert [meta.row_group(i).num_rows for i in range(2)] == [ACKNOWLEDGED_GROUP_ROWS, 1000]
    assert not dictionary_encoded(meta, 0)  # id: every value distinct
    assert dictionary_encoded(meta, 1)  # symbol: three values
    total = ACKNOWLEDGED_GROUP_ROWS + 1000
    got = pq.read_table(path)
    assert got.column_names == ["id", "symbol"]
    assert got.column("id").to_pylist() == list(range(total))
    with duckdb.connect() as con:
        read = con.execute(
            "SELECT count(*), count(DISTINCT symbol), sum(id) FROM read_parquet(?)", [str(path)]
        ).fetchone()
    assert read == (total, 3, total * (total - 1) // 2)


def run_sink(path: Path, batches: int, batch_rows: int, caught_up: bool) -> Path:
    """Feed a real sink ``batches`` of ``batch_rows`` rows, flushing after each one (as the
    runtime does when the sink has caught up) or never (a burst, committed at the close);
    the committed file."""

    async def run() -> None:
        sink = FilesystemSink(sink_config(path), SourceContext())
        await sink.open()
        for i in range(batches):
            await sink.write(rows(i * batch_rows, batch_rows))
            if caught_up:
                await sink.flush()
        await sink.close()

    asyncio.run(run())
    (committed,) = path.glob("*.parquet")
    return committed


def test_a_sink_that_catches_up_writes_row_groups_of_the_acknowledged_size(
    tmp_path: Path,
) -> None:
    batch_rows = 8192
    batches = 2 * ACKNOWLEDGED_GROUP_ROWS // batch_rows + 3  # (two full groups and a rest)
    committed = run_sink(tmp_path, batches, batch_rows, caught_up=True)
    meta = pq.ParquetFile(committed).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    assert sizes == [ACKNOWLEDGED_GROUP_ROWS, ACKNOWLEDGED_GROUP_ROWS, 3 * batch_rows]
    for group in range(meta.num_row_groups):  # (decided once, from the first row group)
        id_column = meta.row_group(group).column(0)
        assert not any("DICTIONARY" in e for e in id_column.encodings), id_column
        symbol_column = meta.row_group(group).column(1)
        assert any("DICTIONARY" in e for e in symbol_column.encodings), symbol_column
    total = batches * batch_rows
    assert pq.read_table(committed).column("id").to_pylist() == list(range(total))


def test_a_burst_is_written_as_one_row_group(tmp_path: Path) -> None:
    batch_rows = 8192
    batches = 2 * ACKNOWLEDGED_GROUP_ROWS // batch_rows + 3
    meta = pq.ParquetFile(run_sink(tmp_path, batches, batch_rows, caught_up=False)).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [
        batches * batch_rows
    ]
