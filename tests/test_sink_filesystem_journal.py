"""The filesystem sink's write-ahead journal (connectors/filesystem/wal.py) and the
recoveries it serves: a torn record is dropped with everything after it; a commit that
leaves other files open is recorded in the journal and completed after a crash; the journal
rewritten without the committed files' rows (compaction) still recovers every acknowledged
row; a copy of the sink's directory taken at any acknowledgement (the disk as a kill -9
would leave it) recovers exactly the rows acknowledged, once."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from arroyo_lite.connectors.base import SourceContext
from arroyo_lite.connectors.filesystem import operator, wal
from arroyo_lite.connectors.filesystem.operator import FilesystemSink
from tests.test_sink_filesystem_acks import committed, config, rows

PARTITIONED = ", 'partitioning.fields' = [bucket]"


def recover(path: Path, options: str = "") -> None:
    async def reopen() -> None:
        sink = FilesystemSink(config(path, options), SourceContext())
        await sink.open()
        await sink.close()

    asyncio.run(reopen())


def test_a_torn_record_is_dropped_with_the_records_after_it(tmp_path: Path) -> None:
    progress = tmp_path / "__in_progress"
    progress.mkdir()
    name = "00001-000.parquet"
    journal = wal.Journal(progress / wal.JOURNAL)
    journal.append({"seq": 1, "taken": 2, "serial": 2, "open": {name: 2}},
                   [wal.FileEntry(name, name, [rows(0, 1)])])  # fmt: skip
    first = journal.size
    journal.append({"seq": 2, "taken": 4, "serial": 2, "open": {name: 4}},
                   [wal.FileEntry(name, name, [rows(2, 3)])])  # fmt: skip
    journal.append({"seq": 3, "taken": 5, "serial": 2, "open": {name: 5}},
                   [wal.FileEntry(name, name, [rows(4)])])  # fmt: skip
    journal.close()
    data = bytearray((progress / wal.JOURNAL).read_bytes())
    data[first + 200] ^= 0xFF  # (a byte of the second record's rows, as a torn write leaves it)
    (progress / wal.JOURNAL).write_bytes(bytes(data))

    logged = wal.read(progress / wal.JOURNAL)
    assert logged.state == {"seq": 1, "taken": 2, "serial": 2, "open": {name: 2}}
    recover(tmp_path)
    assert committed(tmp_path) == [0, 1]
    assert not (progress / wal.JOURNAL).exists()


def test_a_commit_recorded_in_the_journal_is_completed_after_a_crash(tmp_path: Path) -> None:
    # The disk as a crash leaves it: bucket 0's file completed and recorded as being
    # committed by a journal record (bucket 1's file stays open), not yet renamed.
    progress = tmp_path / "__in_progress"
    progress.mkdir()
    one, two = "00001-000.parquet", "00002-000.parquet"
    pq.write_table(pa.table({"n": [0, 1, 2], "bucket": [0] * 3}), progress / f"{one}.tmp")
    journal = wal.Journal(progress / wal.JOURNAL)
    journal.append({"seq": 1, "taken": 3, "serial": 3, "open": {one: 2, two: 1}},
                   [wal.FileEntry(one, f"bucket=0/{one}", [rows(0, 1)]),
                    wal.FileEntry(two, f"bucket=1/{two}", [rows(5, bucket=1)])])  # fmt: skip
    journal.append({"seq": 2, "taken": 5, "serial": 3, "open": {two: 2},
                    "committing": {f"{one}.tmp": f"bucket=0/{one}"}},
                   [wal.FileEntry(two, f"bucket=1/{two}", [rows(6, bucket=1)])])  # fmt: skip
    journal.close()
    recover(tmp_path, PARTITIONED)
    assert committed(tmp_path) == [0, 1, 2, 5, 6]
    assert pq.read_table(tmp_path / "bucket=1" / two).column("n").to_pylist() == [5, 6]
    assert sorted(p.name for p in progress.iterdir()) == [operator.MANIFEST]


@pytest.mark.parametrize("compact", [False, True])
def test_a_copy_taken_at_any_acknowledgement_recovers_exactly_its_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, compact: bool
) -> None:
    # Bucket 0's files roll by size again and again while bucket 1's stays open, so commits
    # leave a file open (journal records) and, with a small threshold, the journal is
    # rewritten without the committed files' rows. At each acknowledgement the directory is
    # copied as a kill -9 would leave it; each copy must recover every acknowledged row once.
    if compact:
        monkeypatch.setattr(operator, "COMPACT_MIN_BYTES", 1)
    out = tmp_path / "out"
    options = PARTITIONED + ", 'rolling_policy.file_size' = '2000'"
    copies: list[tuple[Path, int]] = []
    sizes: list[int] = []

    async def run() -> None:
        sink = FilesystemSink(config(out, options), SourceContext())
        await sink.open()
        n = 0
        for step in range(12):
            await sink.write(rows(*range(n, n + 40)))
            await sink.write(rows(1000 + step, bucket=1))
            n += 40
            await sink.acknowledge()
            copy = tmp_path / f"copy{step}"
            shutil.copytree(out, copy)
            copies.append((copy, step))
            sizes.append((out / "__in_progress" / wal.JOURNAL).stat().st_size)
        await sink.close()

    asyncio.run(run())
    assert committed(out) == list(range(480)) + [1000 + s for s in range(12)]
    # (Rewritten, it keeps no more than the records since the last commit; else it grows.)
    assert (max(sizes) <= 6 * wal.ALIGN) is compact
    for copy, step in copies:
        recover(copy, options)
        expected = list(range(40 * (step + 1))) + [1000 + s for s in range(step + 1)]
        assert committed(copy) == expected, f"the copy at acknowledgement {step}"


def test_a_journal_holds_no_timestamp_and_many_batches_in_a_record(tmp_path: Path) -> None:
    # More batches in one record than writev takes buffers at once; `_timestamp` is left out
    # (no file format writes it).
    path = tmp_path / wal.JOURNAL
    journal = wal.Journal(path)
    batches = [rows(i) for i in range(700)]
    journal.append({"seq": 1}, [wal.FileEntry("a", "a", batches)])
    journal.close()
    assert journal.size % wal.ALIGN == 0
    target, logged = wal.read(path).files["a"]
    assert target == "a" and len(logged) == 700
    assert logged[0].schema.names == ["n", "bucket"]
    assert pa.Table.from_batches(logged).column("n").to_pylist() == list(range(700))


def test_the_per_file_logs_of_an_earlier_version_are_recovered(tmp_path: Path) -> None:
    # An earlier version logged each file apart (8-byte length + IPC message chunks, the
    # target in the schema's metadata) and counted the acknowledged rows per log file in
    # the manifest: what it acknowledged is committed once, the rest dropped.
    progress = tmp_path / "__in_progress"
    progress.mkdir()
    batch = rows(0, 1, 2)
    schema = batch.schema.with_metadata({b"arroyo_lite.target": b"00001-000.parquet"})
    chunks = [schema.serialize(), batch.serialize(), rows(3).serialize()]
    log = b"".join(len(c).to_bytes(8, "little") + c.to_pybytes() for c in chunks)
    (progress / "00001-000.parquet.wal").write_bytes(log + b"\x05\x00")  # (a torn append)
    manifest = {"taken": 3, "serial": 2, "open": {"00001-000.parquet.wal": 3}}
    (progress / operator.MANIFEST).write_text(json.dumps(manifest))
    recover(tmp_path)
    assert committed(tmp_path) == [0, 1, 2]
    assert not list(progress.glob("*.wal"))
