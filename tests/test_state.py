"""``state_dir``: rows and source state survive a clean restart and a crash."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from arroyo_lite import Session
from arroyo_lite.connectors.base import SourceState
from arroyo_lite.runtime.persist import StateDir, StateError
from tests.support.crash import kill_9, saved_bytes, session_process
from tests.support.full_disk import run_with_failing_writes
from tests.support.http_app import STATE, make_app
from tests.support.threaded_server import serve, wait_for

IMPULSE_50 = (
    "CREATE TABLE imp WITH (connector = 'impulse', event_rate = '1000', message_count = '50');"
)


def counters(session: Session, table: str = "imp") -> list[int]:
    values: list[int] = (
        session.query(f"SELECT counter FROM {table} ORDER BY counter").column("counter").to_pylist()
    )
    return values


def test_clean_restart_keeps_every_row_and_resumes_the_source(tmp_path: Path) -> None:
    with Session(state_dir=tmp_path) as session:
        session.execute(IMPULSE_50)
        wait_for(lambda: session.status()[0].state is SourceState.FINISHED)
        assert counters(session) == list(range(50))
    with Session(state_dir=tmp_path) as session:
        session.execute(IMPULSE_50)
        assert counters(session) == list(range(50))  # reloaded before the source starts
        wait_for(lambda: session.status()[0].state is SourceState.FINISHED)
        assert counters(session) == list(range(50))  # the counter resumed at 50: nothing new


def test_changed_emits_no_duplicate_after_restart(tmp_path: Path) -> None:
    with serve(make_app()) as server:
        app_state = server.call(lambda: server.app[STATE])
        server.call(lambda: setattr(app_state, "sequence", [b'{"n": 1}']))
        ddl = (
            "CREATE TABLE feed (n BIGINT) WITH (connector = 'polling_http', "
            f"endpoint = '{server.url('/sequence')}', format = 'json', "
            "emit_behavior = 'changed', poll_interval_ms = '20');"
        )

        def polls(session: Session) -> int:
            return session.status()[0].polls

        with Session(state_dir=tmp_path) as session:
            session.execute(ddl)
            wait_for(lambda: polls(session) >= 3)
            assert session.query("SELECT n FROM feed").column("n").to_pylist() == [1]
        with Session(state_dir=tmp_path) as session:
            session.execute(ddl)
            assert session.query("SELECT n FROM feed").column("n").to_pylist() == [1]
            wait_for(lambda: polls(session) >= 5)
            # Same body as before the restart: the saved 'changed' state suppresses it.
            assert session.query("SELECT n FROM feed").column("n").to_pylist() == [1]
            server.call(lambda: setattr(app_state, "sequence", [b'{"n": 2}']))
            wait_for(lambda: session.query("SELECT count(*) AS c FROM feed")["c"][0].as_py() == 2)
            assert session.query("SELECT n FROM feed ORDER BY n")["n"].to_pylist() == [1, 2]


def test_retention_applies_to_reloaded_rows(tmp_path: Path) -> None:
    with Session(state_dir=tmp_path) as session:
        session.execute(IMPULSE_50)
        wait_for(lambda: session.status()[0].state is SourceState.FINISHED)
    with Session(state_dir=tmp_path) as session:
        session.execute(
            "CREATE TABLE imp WITH (connector = 'impulse', event_rate = '1000', "
            "message_count = '50', 'retention.max_rows' = '10');"
        )
        assert counters(session) == list(range(40, 50))
    # The segments were rewritten to what was kept.
    segments = list((tmp_path / "tables" / "imp").iterdir())
    assert len(segments) == 1


def test_changed_schema_is_a_clear_error(tmp_path: Path) -> None:
    old = pa.schema([("n", pa.int64()), ("_timestamp", pa.timestamp("ns"))])
    prepared = StateDir(tmp_path)
    prepared.rewrite_table("feed", old, pa.table([[1], [0]], schema=old), {})
    prepared.release()
    with Session(state_dir=tmp_path) as session, pytest.raises(StateError) as info:
        session.execute(
            "CREATE TABLE feed (n TEXT) WITH (connector = 'polling_http', "
            "endpoint = 'http://127.0.0.1:9/', format = 'json');"
        )
    assert "different schema" in info.value.message
    assert info.value.hint is not None and "remove" in info.value.hint


def test_crash_loses_no_saved_row_and_resumes_without_gaps(tmp_path: Path) -> None:
    sql = "CREATE TABLE imp WITH (connector = 'impulse', event_rate = '2000');"
    proc = session_process(tmp_path, sql)
    try:
        wait_for(lambda: saved_bytes(tmp_path, "imp") > 20_000, within=60)
    finally:
        kill_9(proc)
    with Session(state_dir=tmp_path) as session:
        session.execute(sql)
        reloaded = counters(session)
        assert len(reloaded) > 100
        assert reloaded == list(range(len(reloaded)))  # a prefix: nothing lost in between
        wait_for(lambda: len(counters(session)) > len(reloaded) + 100)
        after = counters(session)
        assert after == list(range(len(after)))  # resumed at the next counter: no duplicate


def test_a_state_dir_is_used_by_one_session_at_a_time(tmp_path: Path) -> None:
    with Session(state_dir=tmp_path), pytest.raises(StateError, match="in use"):
        Session(state_dir=tmp_path)
    with Session(state_dir=tmp_path) as again:  # released on close
        assert again.state_dir == tmp_path


def saved_rows(directory: Path) -> int:
    """Rows in a table's segment files, as written."""
    from arroyo_lite.runtime.segments import read_segment

    total = 0
    for segment in sorted(directory.glob("*.arrows")):
        records, damage = read_segment(segment)
        total += sum(batch.num_rows for record in records for batch, _ in record.batches)
        assert not damage
    return total


def test_retention_bounds_the_state_directory_while_running(tmp_path: Path) -> None:
    from arroyo_lite.runtime.persist import REWRITE_SLACK_ROWS

    total, kept = 400_000, 1000
    ddl = (
        "CREATE TABLE imp WITH (connector = 'impulse', event_rate = '1000000', "
        f"message_count = '{total}', 'retention.max_rows' = '{kept}');"
    )
    with Session(state_dir=tmp_path, flush_interval=0.02) as session:
        session.execute(ddl)
        wait_for(lambda: session.status()[0].state is SourceState.FINISHED)
    # After every flush the segments hold at most 2 x kept + slack rows: far fewer than were
    # received, so they were rewritten to the rows kept while the source ran.
    on_disk = saved_rows(tmp_path / "tables" / "imp")
    assert kept <= on_disk <= 2 * kept + REWRITE_SLACK_ROWS < total
    with Session(state_dir=tmp_path) as session:
        session.execute(ddl)
        assert counters(session) == list(range(total - kept, total))


def test_a_rewrite_supersedes_segments_a_crash_left_behind(tmp_path: Path) -> None:
    schema = pa.schema([("n", pa.int64()), ("_timestamp", pa.timestamp("ns"))])

    def rows(*ns: int) -> pa.Table:
        return pa.table([list(ns), list(ns)], schema=schema)

    state_dir = StateDir(tmp_path)
    writer = state_dir.open_writer("t", schema)
    writer.write(rows(0, 1, 2, 3), {"k": b"old"})
    writer.close()
    first = next((tmp_path / "tables" / "t").glob("*.arrows"))
    old = first.read_bytes()
    state_dir.rewrite_table("t", schema, rows(2, 3), {"k": b"kept"})
    first.write_bytes(old)  # as if a crash came between the rename and the removal
    writer = state_dir.open_writer("t", schema)
    writer.write(rows(4), {"k": b"new"})
    writer.close()
    batches, state = state_dir.load_table("t", schema)
    assert pa.Table.from_batches(batches, schema=schema).column("n").to_pylist() == [2, 3, 4]
    assert state == {"k": b"new"}
    state_dir.release()


def test_a_failed_write_loses_nothing_the_next_flush_writes_it(tmp_path: Path) -> None:
    # RLIMIT_FSIZE makes every file write fail (EFBIG) like a full disk would, in a child
    # process so the limit touches nothing else. Lifting it lets the retries succeed.
    done = run_with_failing_writes(
        f"""
        with Session(state_dir={str(tmp_path)!r}, flush_interval=0.05) as s:
            resource.setrlimit(resource.RLIMIT_FSIZE, (0, hard))
            s.execute("CREATE TABLE imp WITH (connector = 'impulse', event_rate = '1000', "
                      "message_count = '300');")
            deadline = time.monotonic() + 60
            while (len(failures) < 2 or s.query("SELECT count(*) FROM imp")[0][0].as_py() < 300):
                assert time.monotonic() < deadline, "no failed write seen"
                time.sleep(0.02)
            resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
        print(failures[0])
        """
    )
    assert done.returncode == 0, done.stderr
    assert "cannot save rows of table 'imp'" in done.stdout
    assert "retrying at the next flush" in done.stdout
    with Session(state_dir=tmp_path) as session:
        session.execute(IMPULSE_50.replace("'50'", "'300'"))
        assert counters(session) == list(range(300))  # every row, none twice
