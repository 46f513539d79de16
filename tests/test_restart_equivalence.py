"""Restart equivalence (issue 12, item 6): with ``--state-dir``, a suite pipeline stopped in
the middle (SIGTERM, ``kill -9``) and started again writes Arroyo's golden output, which
the uninterrupted run writes too (``test_arroyo_suite``).

"In the middle" is made certain, not hoped for: :mod:`tests.restart_suite` feeds the query's
input through a named pipe, so the first run gets half of it, writes the results it allows
(windows closed by the watermark so far, the changelog so far), and waits for more. Once its
output file has lines and its state directory holds what it read, the process is stopped.
The second run reads the whole input from a regular file at the same path: the source
resumes after the lines it had read, the restored rows replay through the query with the
batch boundaries they had, and the sink keeps what the replay repeats. Its output must match
the golden output as the suite compares it, and the saved table must hold every input line
once, in batches of 32 as the source read them.

The pieces are tested in-process below: the sink file that is written again
(:class:`~arroyo_lite.connectors.single_file.resume.ResumedFile`), the source's line
batches read from a pipe, and the batch boundaries of restored tables.
"""

from __future__ import annotations

import json
import os
import signal
import threading
from pathlib import Path

import pytest

from arroyo_lite import Session
from arroyo_lite.connectors.single_file.operator import BATCH_LINES, LineReader
from arroyo_lite.connectors.single_file.resume import ResumedFile, common_prefix
from tests import arroyo_suite, restart_suite

#: How long to wait for a process to reach the point where the test stops it (a bound on
#: waiting, never an assertion about speed).
READY_WITHIN_S = 90.0

needs_corpus = pytest.mark.skipif(
    not arroyo_suite.QUERIES.is_dir(),
    reason=f"Arroyo's SQL corpus not found at {arroyo_suite.CORPUS}",
)

# --- the sink file written again -------------------------------------------------------


def test_common_prefix_finds_the_first_difference() -> None:
    assert common_prefix(b"", b"abc") == 0
    assert common_prefix(b"abc", b"abc") == 3
    assert common_prefix(b"abcdef", b"abcxef") == 3
    assert common_prefix(b"abc", b"abcdef") == 3
    for at in range(0, 1000, 7):
        a = bytes(1000)
        b = a[:at] + b"\x01" + a[at + 1 :]
        assert common_prefix(a, b) == at


def _resume(path: Path, writes: list[bytes]) -> ResumedFile:
    resumed = ResumedFile(path)
    for data in writes:
        resumed.write(data)
    resumed.close()
    return resumed


def test_a_replay_that_repeats_the_file_writes_nothing_again(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    path.write_bytes(b"a\nb\nc\n")
    resumed = ResumedFile(path)
    assert [resumed.write(b"a\n"), resumed.write(b"b\nc\n")] == [0, 0]  # nothing written
    resumed.close()
    assert path.read_bytes() == b"a\nb\nc\n"
    assert resumed.kept == 6


def test_a_replay_that_departs_rewrites_from_the_first_difference(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    path.write_bytes(b"a\nb\nc\nd\n")
    resumed = _resume(path, [b"a\n", b"c\nb\n", b"d\ne\n"])
    assert path.read_bytes() == b"a\nc\nb\nd\ne\n"
    assert resumed.kept == 2


def test_a_line_cut_short_by_a_crash_is_completed(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    path.write_bytes(b'{"a":1}\n{"a"')  # kill -9 in the middle of a write
    _resume(path, [b'{"a":1}\n{"a":2}\n', b'{"a":3}\n'])
    assert path.read_bytes() == b'{"a":1}\n{"a":2}\n{"a":3}\n'


def test_old_output_the_replay_does_not_reach_is_cut_off(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    path.write_bytes(b"a\nb\nc\n")
    _resume(path, [b"a\n"])
    assert path.read_bytes() == b"a\n"


def test_a_missing_file_is_created(tmp_path: Path) -> None:
    path = tmp_path / "out.json"
    _resume(path, [b"a\n"])
    assert path.read_bytes() == b"a\n"


# --- the source's batches from a pipe ---------------------------------------------------


def test_lines_from_a_pipe_come_in_whole_batches_whatever_the_writes_cut(
    tmp_path: Path,
) -> None:
    fifo = tmp_path / "in.json"
    os.mkfifo(fifo)
    lines = [f'{{"n":{i}}}\n'.encode() for i in range(100)]
    data = b"".join(lines)

    def feed() -> None:
        with open(fifo, "wb", buffering=0) as out:
            for at in range(0, len(data), 37):  # cuts in the middle of lines
                out.write(data[at : at + 37])

    writer = threading.Thread(target=feed)
    writer.start()
    reader = LineReader(fifo)
    reader.skip(3)
    got: list[tuple[int, bytes]] = []
    while batch := reader.batches(BATCH_LINES):
        got.extend(batch)
    reader.close()
    writer.join()
    assert [count for count, _ in got] == [32, 32, 32, 1]
    assert b"".join(chunk for _, chunk in got) == b"".join(lines[3:])


def test_a_last_line_without_a_line_end_gets_one(tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_bytes(b'{"n":1}\n{"n":2}')
    reader = LineReader(path)
    assert reader.batches(BATCH_LINES) == [(2, b'{"n":1}\n{"n":2}\n')]
    assert reader.batches(BATCH_LINES) == []
    reader.close()


def test_a_stopping_reader_gives_up_waiting_on_a_pipe(tmp_path: Path) -> None:
    fifo = tmp_path / "in.json"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR)  # a writer that stays silent (O_RDWR: no wait)
    try:
        os.write(writer, b'{"n":1}\n')  # fewer lines than a batch: the reader waits
        reader = LineReader(fifo)
        results: list[list[tuple[int, bytes]]] = []
        thread = threading.Thread(target=lambda: results.append(reader.batches(BATCH_LINES)))
        thread.start()
        thread.join(0.5)
        assert thread.is_alive()  # still waiting for a whole batch (or the end)
        reader.stopping = True
        thread.join(READY_WITHIN_S)
        assert results == [[]]  # gave up: a stopped source emits nothing more
        reader.close()
    finally:
        os.close(writer)


# --- restored tables keep their batch boundaries ----------------------------------------


def test_a_restored_table_has_the_batch_boundaries_the_source_made(tmp_path: Path) -> None:
    source = tmp_path / "in.json"
    source.write_text("".join(json.dumps({"v": i}) + "\n" for i in range(200)))
    ddl = f"""CREATE TABLE src (v BIGINT) WITH (connector = 'single_file',
        path = '{source}', format = 'json', type = 'source');"""
    with Session(state_dir=tmp_path / "state") as session:
        session.execute(ddl)
        assert session.runtime.wait_sources(READY_WITHIN_S)
        session.store.wait_compacted()  # compaction merges batches: the marks stay
        before = session.store.snapshot(["src"])["src"]
    assert tuple(before.marks) == (32, 64, 96, 128, 160, 192, 200)
    with Session(state_dir=tmp_path / "state") as session:
        session.execute(ddl)
        assert session.runtime.wait_sources(READY_WITHIN_S)
        after = session.store.snapshot(["src"])["src"]
    assert tuple(after.marks) == tuple(before.marks)
    assert after.to_table().column("v").to_pylist() == list(range(200))


# --- suite queries stopped in the middle and started again ------------------------------

#: Each signal on a windowed and an updating query (each case starts two processes, so the
#: pytest run keeps to these; ``python tests/restart_suite.py`` runs every matching query).
CASES = [
    ("hourly_by_event_type", signal.SIGTERM),  # tumble, event_time_field
    ("tight_watermark", signal.SIGKILL),  # tumble through a view, WATERMARK FOR
    ("active_drivers", signal.SIGKILL),  # updating aggregate of an updating aggregate
    ("grouped_aggregates", signal.SIGTERM),  # updating GROUP BY into a PRIMARY KEY sink
]


@needs_corpus
@pytest.mark.parametrize(("name", "stop"), CASES, ids=[f"{n}-{s.name}" for n, s in CASES])
def test_a_suite_query_stopped_and_restarted_writes_the_golden_output(
    tmp_path: Path, name: str, stop: signal.Signals
) -> None:
    outcome = restart_suite.run_query(name, stop, tmp_path, require_output=True)
    assert outcome.matched, outcome.reason
