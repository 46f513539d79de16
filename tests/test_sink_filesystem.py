"""The ``filesystem`` sink: JSON and Parquet files under a local path, rolled, partitioned,
committed atomically; a crash (``kill -9``) and a restart with ``--state-dir`` neither lose
nor duplicate rows; a full disk (``RLIMIT_FSIZE`` in a child process) leaves no corrupt file
and loses nothing once space returns. Parquet files open with DuckDB, pyarrow and polars."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from arroyo_lite import Session
from arroyo_lite.config import TableKind
from arroyo_lite.connectors.base import SourceContext, SourceState
from arroyo_lite.connectors.filesystem import wal
from arroyo_lite.connectors.filesystem.operator import MANIFEST, FilesystemSink
from arroyo_lite.errors import SqlError
from arroyo_lite.sql import compile_sql
from tests.support.crash import session_process
from tests.support.sinks import sink_table
from tests.support.threaded_server import wait_for

ROOT = Path(__file__).resolve().parents[1]


def pipeline(path: Path, count: int | None, options: str = "", rate: int = 2000) -> str:
    limit = f", message_count = '{count}'" if count is not None else ""
    return f"""
    CREATE TABLE imp WITH (connector = 'impulse', event_rate = '{rate}'{limit});
    CREATE TABLE out (counter BIGINT, bucket BIGINT) WITH (connector = 'filesystem',
        type = 'sink', path = '{path}', format = 'parquet'{options});
    INSERT INTO out SELECT counter, counter % 3 FROM imp;
    """


def finished_files(path: Path, suffix: str = ".parquet") -> list[Path]:
    """The committed files (not what is in progress)."""
    return sorted(p for p in path.rglob(f"*{suffix}") if "__in_progress" not in p.parts)


def counters(path: Path) -> list[int]:
    files = finished_files(path)
    if not files:
        return []
    return sorted(pq.read_table(files).column("counter").to_pylist())  # type: ignore[arg-type]


def sink(session: Session) -> Any:
    return next(s for s in session.status() if s.table == "out")


def test_parquet_partitioned_files_open_with_duckdb_pyarrow_and_polars(tmp_path: Path) -> None:
    out = tmp_path / "out"
    options = ", partition_fields = 'bucket', time_partition_pattern = '%Y'"
    with Session() as session:
        session.execute(pipeline(out, 300, options))
        wait_for(lambda: sink(session).rows == 300)
    files = finished_files(out)
    year = str(__import__("datetime").date.today().year)
    assert {p.parent.relative_to(out).as_posix() for p in files} == {
        f"{year}/bucket={b}" for b in range(3)
    }
    assert not list((out / "__in_progress").glob("*.wal"))
    total = duckdb.sql(
        f"SELECT count(*), count(DISTINCT counter) FROM read_parquet('{out}/*/*/*.parquet')"
    ).fetchall()
    assert total == [(300, 300)]
    for path in files:
        table = pq.read_table(path)
        assert table.column_names == ["counter", "bucket"]
        bucket = int(path.parent.name.split("=")[1])
        assert set(table.column("bucket").to_pylist()) == {bucket}
    polars = pytest.importorskip("polars")
    frame = polars.read_parquet([str(p) for p in files])
    assert sorted(frame["counter"].to_list()) == list(range(300))


def test_json_files_hold_one_object_per_row(tmp_path: Path) -> None:
    out = tmp_path / "out"
    sql = pipeline(out, 20).replace("'parquet'", "'json'")
    with Session() as session:
        session.execute(sql)
        wait_for(lambda: sink(session).rows == 20)
    files = finished_files(out, ".json")
    assert [p.name for p in files] == ["00001-000.json"]
    rows = [json.loads(line) for line in files[0].read_text().splitlines()]
    assert rows == [{"counter": n, "bucket": n % 3} for n in range(20)]


def test_files_roll_by_size_and_by_time(tmp_path: Path) -> None:
    # By size, fed batch by batch (a session may hand the sink its rows in one batch on a
    # busy machine, and a file rolls between batches): 10 batches of 200 rows (4,800 bytes
    # of Arrow data each) make 10 files over 4,096 bytes.
    by_size = tmp_path / "size"
    table = sink_table(pipeline(by_size, 2000, ", target_file_size = '4096'"))

    async def write_by_size() -> None:
        sink = FilesystemSink(table, SourceContext())
        await sink.open()
        for start in range(0, 2000, 200):
            counter = pa.array(range(start, start + 200))
            await sink.write(
                pa.record_batch(
                    [counter, pc.bit_wise_and(counter, 1), counter.cast(pa.timestamp("ns"))],
                    names=["counter", "bucket", "_timestamp"],
                )
            )
        await sink.close()

    asyncio.run(write_by_size())
    assert len(finished_files(by_size)) == 10
    assert counters(by_size) == list(range(2000))
    by_time = tmp_path / "time"
    with Session() as session:
        session.execute(pipeline(by_time, None, ", rollover_seconds = '1'", rate=50))
        # Files appear while the source runs, each complete when it appears.
        wait_for(lambda: len(finished_files(by_time)) >= 2, within=60)
        for path in finished_files(by_time):
            assert pq.read_table(path).num_rows > 0
    got = counters(by_time)
    assert got == list(range(len(got)))


def test_a_restart_after_kill_9_neither_loses_nor_duplicates_rows(tmp_path: Path) -> None:
    out, state = tmp_path / "out", tmp_path / "state"
    # (A rate that leaves rows to come when the second file appears, even on a busy machine
    # where the sink takes in a backlog at once.)
    sql = pipeline(out, 6000, ", rollover_seconds = '1'", rate=600)
    proc = session_process(state, sql)
    try:
        wait_for(lambda: len(finished_files(out)) >= 2, within=60)
    finally:
        proc.send_signal(signal.SIGKILL)  # no clean shutdown: a crash
        proc.wait(30)
    before = counters(out)
    assert 0 < len(before) < 6000
    with Session(state_dir=state) as session:
        session.execute(sql)
        wait_for(lambda: session.status()[0].state is SourceState.FINISHED, within=60)
        wait_for(lambda: sink(session).rows >= 6000 - len(before), within=60)
    assert counters(out) == list(range(6000))  # every row, none twice


def test_a_full_disk_leaves_no_corrupt_file_and_loses_nothing(tmp_path: Path) -> None:
    # RLIMIT_FSIZE makes every file write fail (EFBIG) like a full disk would, in a child
    # process so the limit touches nothing else. Lifting it is the space coming back.
    out = tmp_path / "out"
    sql = pipeline(out, None, ", target_file_size = '20000'", rate=2000)
    script = textwrap.dedent(
        f"""
        import resource, signal, time
        from arroyo_lite import Session
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG, not a kill
        _, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
        def out(s):
            return next(x for x in s.status() if x.table == "out")
        deadline = time.monotonic() + 90
        def until(condition, what):
            while not condition():
                assert time.monotonic() < deadline, what
                time.sleep(0.01)
        with Session() as s:
            s.execute({sql!r})
            until(lambda: out(s).rows >= 500, "no rows")
            resource.setrlimit(resource.RLIMIT_FSIZE, (1000, hard))
            until(lambda: out(s).state.value == "backoff", "no failed write seen")
            print(out(s).last_error, flush=True)
            time.sleep(0.5)  # retries fail meanwhile (the source keeps running)
            resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
            until(lambda: out(s).state.value == "running", "the sink did not recover")
            recovered_at = out(s).rows
            until(lambda: out(s).rows >= recovered_at + 500, "no rows after recovering")
            failures = out(s).failures
        print(out(s).rows, failures, flush=True)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=150
    )
    assert done.returncode == 0, done.stderr
    error, recovered = done.stdout.splitlines()
    assert error.startswith(f"cannot write to '{out}': ") and "File too large" in error
    rows, failures = (int(n) for n in recovered.split())
    assert failures >= 1
    # Every file readable, every row the sink was given there once, in counter order.
    assert counters(out) == list(range(rows))
    assert not list((out / "__in_progress").glob("*.tmp"))


def test_recovery_commits_acknowledged_rows_once(tmp_path: Path) -> None:
    """The files the journal's last whole record acknowledged are committed on open (a
    record cut short after it is dropped); one already renamed (a crash between the rename
    and the next record) is not written twice."""
    program = sink_table(
        "CREATE TABLE out (n BIGINT) WITH (connector = 'filesystem', type = 'sink', "
        f"path = '{tmp_path}', format = 'parquet');"
    )
    progress = tmp_path / "__in_progress"
    progress.mkdir()
    schema = pa.schema([("n", pa.int64()), ("_timestamp", pa.timestamp("ns"))])

    def rows(*ns: int) -> pa.RecordBatch:
        return pa.record_batch([list(ns), list(ns)], schema=schema)

    one, two = "00001-000.parquet", "00002-000.parquet"
    log = wal.Journal(progress / wal.JOURNAL)
    log.append({"seq": 1, "taken": 3, "serial": 2, "open": {one: 3}},
               [wal.FileEntry(one, one, [rows(0, 1, 2)])])  # fmt: skip
    log.append({"seq": 2, "taken": 4, "serial": 3, "open": {one: 3, two: 1}},
               [wal.FileEntry(two, two, [rows(7)])])  # fmt: skip
    whole = log.size
    log.append({"seq": 3, "taken": 6, "serial": 3, "open": {one: 5, two: 1}},
               [wal.FileEntry(one, one, [rows(3, 4)])])  # fmt: skip
    log.close()
    os.truncate(progress / wal.JOURNAL, whole + 40)  # the last append, cut short
    pq.write_table(pa.table({"n": [7]}), tmp_path / two)
    (progress / MANIFEST).write_text(json.dumps({"seq": 0, "taken": 0, "serial": 1, "open": {}}))

    async def reopen() -> None:
        sink = FilesystemSink(program, SourceContext(replays_inputs=True))
        await sink.open()
        await sink.close()

    asyncio.run(reopen())
    assert pq.read_table(tmp_path / one).column("n").to_pylist() == [0, 1, 2]
    assert pq.read_table(tmp_path / two).column("n").to_pylist() == [7]
    assert not list(progress.glob("*.wal"))
    assert json.loads((progress / MANIFEST).read_text())["taken"] == 4  # the last whole record's


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("path = '/tmp/x', format = 'json'", "required option 'type' not set"),
        ("type = 'source', path = '/tmp/x', format = 'json'",
         "filesystem sources are not supported by arroyo-lite"),
        ("type = 'both', path = '/tmp/x', format = 'json'",
         "type must be one of 'source' or 'sink'"),
        ("type = 'sink', format = 'json'", "required option 'path' not set"),
        ("type = 'sink', path = '/tmp/x'",
         "filesystem sink requires a format, such as json or parquet"),
        ("type = 'sink', path = '/tmp/x', format = 'raw_string'", "Unsupported format: raw_string"),
        ("type = 'sink', path = 's3://bucket/x', format = 'json'",
         "invalid path 's3://bucket/x': arroyo-lite writes to local paths only"),
        ("type = 'sink', path = '/tmp/x', format = 'json', 'partitioning.fields' = [nope]",
         'Unable to get field named "nope". Valid fields: ["n", "_timestamp"]'),
        ("type = 'sink', path = '/tmp/x', format = 'json', partition_fields = 'nope'",
         'Unable to get field named "nope"'),  # (the older name, still read)
        ("type = 'sink', path = '/tmp/x', format = 'json', "
         "'rolling_policy.interval' = interval '0 seconds'", "rolling_policy.interval"),
        ("type = 'sink', path = '/tmp/x', format = 'json', rollover_seconds = '0'",
         "rolling_policy.interval"),
        ("type = 'sink', path = '/tmp/x', format = 'parquet', 'parquet.compression' = 'brotli'",
         "invalid value for 'parquet.compression': 'brotli'"),
        ("type = 'sink', path = '/tmp/x', format = 'json', rollover_seconds = '5', "
         "'rolling_policy.interval' = interval '5 seconds'",
         "'rollover_seconds' is the older name of 'rolling_policy.interval'"),
        ("type = 'sink', path = '/tmp/x', format = 'json', "
         "'rolling_policy.watermark_expiration' = true",
         "rolling_policy.watermark_expiration is not supported by arroyo-lite"),
    ],
)  # fmt: skip
def test_validation_uses_arroyos_rules(options: str, message: str) -> None:
    with pytest.raises(SqlError) as info:
        compile_sql(f"CREATE TABLE out (n BIGINT) WITH (connector = 'filesystem', {options});")
    assert message in str(info.value)
    assert info.value.position is not None


def test_blackhole_swallows_every_row() -> None:
    with Session() as session:
        session.execute(
            "CREATE TABLE imp WITH (connector = 'impulse', event_rate = '5000', "
            "message_count = '100');"
            "CREATE TABLE out WITH (connector = 'blackhole');"
            "INSERT INTO out SELECT * FROM imp;"
        )
        wait_for(lambda: sink(session).rows == 100)
        assert sink(session).connector == "blackhole"


def test_readme_sink_examples_validate() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("<!-- section: sinks -->")[1].split("<!-- /section: sinks -->")[0]
    webhook, filesystem = section.split("```sql\n")[2:4]
    prices = (
        "CREATE TABLE prices (symbol TEXT, price DOUBLE, volume BIGINT) WITH ("
        "connector = 'polling_http', endpoint = 'http://127.0.0.1:1/p', format = 'json');\n"
    )
    for block in (webhook, filesystem):
        program = compile_sql(prices + block.split("```")[0], env={"HOOK_TOKEN": "t"})
        assert [t.kind for t in program.tables] == [TableKind.SOURCE, TableKind.SINK]


def test_a_first_run_with_a_new_state_dir_skips_nothing_an_earlier_run_wrote(
    tmp_path: Path,
) -> None:
    # A run without --state-dir records in the directory's manifest how many rows it took;
    # a later run with a new (empty) state directory replays nothing, so it must not skip
    # that many of its own rows.
    out = tmp_path / "out"
    sql = pipeline(out, 50)
    for state in (None, tmp_path / "state"):
        with Session(state_dir=state) as session:
            session.execute(sql)
            wait_for(lambda: session.status()[0].state is SourceState.FINISHED, within=60)
            wait_for(lambda: sink(session).rows >= 50, within=60)
    assert counters(out) == sorted([*range(50), *range(50)])  # both runs' rows, once each
