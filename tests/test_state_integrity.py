"""Damaged state never loads as data (issue 8, item 5).

Every record of a segment is checksummed. A flipped bit anywhere in a real segment file is
detected, reported with the file and the byte offset of the record, and the record is
skipped (the documented choice): the table starts with the intact records' rows, the state
of the last intact record, and the damaged segment is kept as ``*.damaged``.
"""

from __future__ import annotations

import logging
import random
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.ipc as ipc
import pytest

from arroyo_lite import Session
from arroyo_lite.connectors.base import SourceState
from arroyo_lite.runtime.persist import DAMAGED_SUFFIX, StateDir
from arroyo_lite.runtime.segments import MAGIC, read_segment
from tests.support.threaded_server import wait_for

SCHEMA = pa.schema([("n", pa.int64()), ("_timestamp", pa.timestamp("ns"))])
#: Rows of each record written by :func:`write_records` (record i holds RECORDS[i]).
RECORDS = [[0, 1, 2], [3, 4], [5, 6, 7, 8], [9]]


def rows(ns: list[int]) -> pa.Table:
    return pa.table([ns, ns], schema=SCHEMA)


def write_records(root: Path) -> tuple[Path, list[int]]:
    """A table 't' with one segment of four records; the segment and each record's offset."""
    state_dir = StateDir(root, lock=False)
    writer = state_dir.open_writer("t", SCHEMA)
    for i, ns in enumerate(RECORDS):
        writer.write(rows(ns), {"record": str(i).encode()})
    writer.close()
    [segment] = (root / "tables" / "t").glob("*.arrows")
    records, damage = read_segment(segment)
    offsets = [record.offset for record in records]
    assert not damage and len(offsets) == len(RECORDS)
    return segment, offsets


def load(root: Path) -> tuple[list[int], dict[str, bytes]]:
    batches, state = StateDir(root, lock=False).load_table("t", SCHEMA)
    return pa.Table.from_batches(batches, schema=SCHEMA).column("n").to_pylist(), state


def flip(path: Path, offset: int, bit: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


def test_an_intact_segment_loads_every_record(tmp_path: Path) -> None:
    write_records(tmp_path)
    assert load(tmp_path) == ([n for ns in RECORDS for n in ns], {"record": b"3"})


def test_every_flipped_bit_is_detected_reported_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    original = tmp_path / "original"
    segment, offsets = write_records(original)
    size = segment.stat().st_size
    ends = [*offsets[1:], size]
    chance = random.Random(8)
    # Every byte of the magic and of each record header, plus random payload bytes.
    spots = list(range(len(MAGIC)))
    for start in offsets:
        spots += range(start, start + 20)
    spots += chance.sample(range(len(MAGIC), size), 60)
    for case, offset in enumerate(spots):
        root = tmp_path / f"case{case}"
        shutil.copytree(original, root)
        damaged = root / segment.relative_to(original)
        flip(damaged, offset, chance.randrange(8))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="arroyo_lite.runtime.persist"):
            loaded, state = load(root)
        warnings = [r.getMessage() for r in caplog.records]
        if offset < len(MAGIC):
            assert loaded == [] and state == {}
            hit = 0
        else:
            spans = enumerate(zip(offsets, ends, strict=True))
            hit = next(i for i, (a, b) in spans if a <= offset < b)
            # Exactly the rows of the damaged record are missing; the state is the last
            # intact record's.
            kept = [i for i in range(len(RECORDS)) if i != hit]
            assert loaded == [n for i in kept for n in RECORDS[i]], (offset, warnings)
            assert state == {"record": str(kept[-1]).encode()}
        assert len(warnings) == 1, (offset, warnings)
        at = 0 if offset < len(MAGIC) else offsets[hit]
        assert f"{damaged} at byte offset {at}:" in warnings[0]
        assert "damaged, skipped" in warnings[0]


def test_a_crash_cut_last_record_is_dropped_without_calling_it_damage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    segment, offsets = write_records(tmp_path)
    full = segment.read_bytes()
    for cut in (offsets[-1] + 3, offsets[-1] + 20, len(full) - 1):
        segment.write_bytes(full[:cut])
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            loaded, state = load(tmp_path)
        assert loaded == [n for ns in RECORDS[:-1] for n in ns]
        assert state == {"record": b"2"}
        assert not any("damaged" in r.getMessage() for r in caplog.records)


def test_a_segment_written_before_checksums_still_loads(tmp_path: Path) -> None:
    directory = tmp_path / "tables" / "t"
    directory.mkdir(parents=True)
    with ipc.new_stream(directory / "seg-000001.arrows", SCHEMA) as writer:
        writer.write_table(rows([1, 2]))
    assert load(tmp_path) == ([1, 2], {})


IMPULSE = (
    "CREATE TABLE imp WITH (connector = 'impulse', event_rate = '1000', message_count = '50');"
)


def counters(session: Session) -> list[int]:
    values: list[int] = session.query("SELECT counter FROM imp ORDER BY counter")[
        "counter"
    ].to_pylist()
    return values


def test_a_session_skips_damage_keeps_the_file_and_emits_no_duplicate(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with Session(state_dir=tmp_path) as session:
        session.execute(IMPULSE)
        wait_for(lambda: session.status()[0].state is SourceState.FINISHED)
    segments = sorted((tmp_path / "tables" / "imp").glob("*.arrows"))
    last = segments[-1]
    flip(last, last.stat().st_size - 30, 3)  # inside the last record's payload
    persist_log = caplog.at_level(logging.WARNING, logger="arroyo_lite.runtime.persist")
    with persist_log, Session(state_dir=tmp_path) as session:
        session.execute(IMPULSE)
        wait_for(lambda: session.status()[0].state is SourceState.FINISHED)
        # The lost record's rows and counter state went together: the source emitted them
        # again, once.
        assert counters(session) == list(range(50))
    [warning] = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert str(last) in warning and "byte offset" in warning
    assert (last.parent / (last.name + DAMAGED_SUFFIX)).exists()
    with Session(state_dir=tmp_path) as session:  # the kept copy is not loaded again
        session.execute(IMPULSE)
        assert counters(session) == list(range(50))
    kept = sorted(p.name for p in last.parent.iterdir())
    assert f"{last.name}{DAMAGED_SUFFIX}" in kept
    assert all(not n.startswith(last.name.split(".")[0]) or n.endswith(DAMAGED_SUFFIX)
               for n in kept), kept  # fmt: skip
