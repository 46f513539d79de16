"""The filesystem sink's acknowledgement protocol (see its operator's docstring): rows reach
the write-ahead journal when they are acknowledged, not when written; the state on disk (the
journal's last record, or the manifest when newer) counts only rows on disk (logged, or in a
file recorded as being committed); a commit is recorded before its rename, and a crash
between the two is completed on the next open; rows a replay skips stay counted, so a
restart that stops during its replay does not shift the next one."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from arroyo_lite.config import TableConfig
from arroyo_lite.connectors.base import SourceContext
from arroyo_lite.connectors.filesystem import wal
from arroyo_lite.connectors.filesystem.files import WRITEBACK_HELPER_BYTES, parquet_format
from arroyo_lite.connectors.filesystem.operator import MANIFEST, FilesystemSink
from arroyo_lite.connectors.filesystem.options import FilesystemOptions
from tests.support.sinks import sink_table

SCHEMA = pa.schema([("n", pa.int64()), ("bucket", pa.int64()), ("_timestamp", pa.timestamp("ns"))])


def config(path: Path, options: str = "") -> TableConfig:
    return sink_table(
        "CREATE TABLE out (n BIGINT, bucket BIGINT) WITH (connector = 'filesystem', "
        f"type = 'sink', path = '{path}', format = 'parquet'{options});"
    )


def rows(*ns: int, bucket: int = 0) -> pa.RecordBatch:
    return pa.record_batch([list(ns), [bucket] * len(ns), list(ns)], schema=SCHEMA)


def manifest(path: Path) -> dict[str, Any]:
    return dict(json.loads((path / "__in_progress" / MANIFEST).read_text()))


def journal(path: Path) -> wal.Logged:
    return wal.read(path / "__in_progress" / wal.JOURNAL)


def logged(path: Path, name: str) -> tuple[str, list[int], int]:
    """The target of file ``name`` in the journal, its rows' ``n`` and how many batches."""
    target, batches = journal(path).files[name]
    ns = pa.Table.from_batches(batches).column("n").to_pylist() if batches else []
    return target, ns, len(batches)


def committed(path: Path) -> list[int]:
    files = sorted(p for p in path.rglob("*.parquet") if "__in_progress" not in p.parts)
    return sorted(n for f in files for n in pq.read_table(f).column("n").to_pylist())


def test_rows_reach_the_log_when_acknowledged(tmp_path: Path) -> None:
    progress = tmp_path / "__in_progress"

    async def run() -> None:
        sink = FilesystemSink(config(tmp_path), SourceContext())
        await sink.open()
        await sink.write(rows(0, 1, 2))
        assert not list(progress.glob("*.wal"))  # written, not acknowledged: no journal yet
        await sink.acknowledge()
        name = "00001-000.parquet"
        assert logged(tmp_path, name) == (name, [0, 1, 2], 1)
        assert journal(tmp_path).state == {"seq": 1, "taken": 3, "serial": 2, "open": {name: 3}}
        assert not (progress / MANIFEST).exists()  # (one fsync per acknowledgement)
        await sink.write(rows(3))
        await sink.acknowledge()
        assert logged(tmp_path, name) == (name, [0, 1, 2, 3], 2)  # appended to
        state = journal(tmp_path).state
        assert state is not None and state["open"] == {name: 4} and state["seq"] == 2
        await sink.write(rows(4, 5))  # never acknowledged before the commit: never logged
        await sink.close()

    asyncio.run(run())
    assert pq.read_table(tmp_path / "00001-000.parquet").column("n").to_pylist() == list(range(6))
    assert not list(progress.glob("*.wal")) and not list(progress.glob("*.tmp"))
    assert manifest(tmp_path) == {
        "seq": 3,
        "taken": 6,
        "serial": 2,
        "open": {},
        "committing": {"00001-000.parquet.tmp": "00001-000.parquet"},
    }


def test_a_commit_a_crash_left_before_its_rename_is_completed_on_open(tmp_path: Path) -> None:
    # The disk as a crash leaves it: file 1 completed and recorded as being committed (in
    # the manifest), not yet renamed; file 2 committed and renamed; the journal of their
    # acknowledgements before, obsolete, not yet removed; file 3 being written (its
    # temporary file, no acknowledged rows).
    progress = tmp_path / "__in_progress"
    progress.mkdir()
    pq.write_table(
        pa.table({"n": [0, 1, 2], "bucket": [1] * 3}), progress / "00001-000.parquet.tmp"
    )
    (tmp_path / "bucket=2").mkdir()
    pq.write_table(pa.table({"n": [3], "bucket": [2]}), tmp_path / "bucket=2/00002-000.parquet")
    old = wal.Journal(progress / wal.JOURNAL)
    acknowledged = {"00001-000.parquet": 2, "00002-000.parquet": 1}
    old.append(
        {"seq": 1, "taken": 3, "serial": 3, "open": acknowledged},
        [
            wal.FileEntry("00001-000.parquet", "bucket=1/00001-000.parquet", [rows(0, 1)]),
            wal.FileEntry("00002-000.parquet", "bucket=2/00002-000.parquet", [rows(3, bucket=2)]),
        ],
    )
    old.close()
    (progress / "00003-000.parquet.tmp").write_bytes(b"PAR1 half a file")
    committing = {
        "00001-000.parquet.tmp": "bucket=1/00001-000.parquet",
        "00002-000.parquet.tmp": "bucket=2/00002-000.parquet",
    }
    state = {"seq": 2, "taken": 4, "serial": 4, "open": {}, "committing": committing}
    (progress / MANIFEST).write_text(json.dumps(state))

    async def reopen(*batches: pa.RecordBatch) -> None:
        sink = FilesystemSink(
            config(tmp_path, ", 'partitioning.fields' = [bucket]"),
            SourceContext(replays_inputs=True),
        )
        await sink.open()
        for batch in batches:
            await sink.write(batch)
        await sink.close()

    asyncio.run(reopen())
    assert pq.read_table(tmp_path / "bucket=1/00001-000.parquet").column("n").to_pylist() == [
        0,
        1,
        2,
    ]
    assert committed(tmp_path) == [0, 1, 2, 3]  # each row once
    assert sorted(p.name for p in progress.iterdir()) == [MANIFEST]
    # The replay of the four rows is skipped; the row after them is written.
    asyncio.run(reopen(rows(0, 1, 2, bucket=1), rows(3, bucket=2), rows(4, bucket=1)))
    assert committed(tmp_path) == [0, 1, 2, 3, 4]


def test_a_restart_that_stops_during_its_replay_keeps_the_count(tmp_path: Path) -> None:
    async def run(*batches: pa.RecordBatch) -> None:
        sink = FilesystemSink(config(tmp_path), SourceContext(replays_inputs=True))
        await sink.open()
        for batch in batches:
            await sink.write(batch)
            await sink.acknowledge()
        await sink.close()

    asyncio.run(run(rows(0, 1, 2, 3, 4)))
    assert manifest(tmp_path)["taken"] == 5
    asyncio.run(run(rows(0, 1, 2)))  # stopped three rows into the replay of five
    assert manifest(tmp_path)["taken"] == 5
    asyncio.run(run(rows(0, 1, 2, 3), rows(4, 5, 6)))
    assert committed(tmp_path) == list(range(7))  # none lost, none twice


def test_a_roll_by_size_within_a_batch_acknowledges_the_whole_batch(tmp_path: Path) -> None:
    # Bucket 0's rows fill its file (over 200 bytes) within the batch; bucket 1's row,
    # later in the same batch, stays in an open file: the commit's record counts the whole
    # batch, and bucket 1's row is in the journal.
    options = ", 'partitioning.fields' = [bucket], 'rolling_policy.file_size' = '200'"

    async def run() -> None:
        sink = FilesystemSink(config(tmp_path, options), SourceContext())
        await sink.open()
        both = pa.concat_batches([rows(*range(30)), rows(30, bucket=1)])
        await sink.write(both)
        assert committed(tmp_path) == list(range(30))
        state = journal(tmp_path).state
        assert state is not None
        assert state["taken"] == 31 and state["open"] == {"00002-000.parquet": 1}
        assert state["committing"] == {"00001-000.parquet.tmp": "bucket=0/00001-000.parquet"}
        assert logged(tmp_path, "00002-000.parquet") == ("bucket=1/00002-000.parquet", [30], 1)
        await sink.close()

    asyncio.run(run())
    assert committed(tmp_path) == list(range(31))


def test_a_large_row_group_is_whole_after_its_writeback_ran_alongside(tmp_path: Path) -> None:
    # A row group over WRITEBACK_HELPER_BYTES is written while a helper thread pushes what
    # is written so far to disk: the file must come out whole, every row once.
    table = config(tmp_path)
    assert isinstance(table.connector_options, FilesystemOptions)
    writer = parquet_format(table, table.connector_options).open(tmp_path / "big.parquet.tmp")
    n = 700_000
    batch = pa.record_batch(
        [pa.array(range(n)), pa.array([n % 7 for n in range(n)]), pa.array(range(n))],
        schema=SCHEMA,
    )
    assert batch.nbytes >= WRITEBACK_HELPER_BYTES
    chunks = pa.Table.from_batches([batch]).to_batches(max_chunksize=8192)
    writer.write_all(chunks, batch.nbytes)
    writer.finish()
    got = pq.read_table(tmp_path / "big.parquet.tmp")
    assert got.column_names == ["n", "bucket"]
    assert got.column("n").to_pylist() == list(range(n))
