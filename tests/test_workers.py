"""``--workers N``: sources run in worker processes and feed one session (issue 16 item 2).

Real worker processes, real HTTP servers on 127.0.0.1, real DuckDB; the deadlines of
``wait_for`` are for hung tests, not speed requirements.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from arroyo_lite import Session
from arroyo_lite.connectors.base import SourceState
from tests.support.feeds import FeedState, make_feed_app, quakes
from tests.support.http_app import make_app
from tests.support.threaded_server import serve, wait_for

pytestmark = pytest.mark.timeout(180)

SECRET = "tok-3f9a1c-very-secret"


def polled(url: str, name: str, interval_ms: int = 20, extra: str = "") -> str:
    return f"""
    CREATE TABLE {name} (n BIGINT) WITH (
      connector = 'polling_http', endpoint = '{url}', format = 'json',
      poll_interval_ms = {interval_ms}{extra}
    );
    """


def count(session: Session, table: str) -> int:
    value: int = session.query(f"SELECT count(*) AS c FROM {table}").column("c")[0].as_py()
    return value


def status_of(session: Session, table: str) -> object:
    return next(s for s in session.status() if s.table == table)


def hosting_pid(session: Session) -> int:
    """The pid of a worker process that runs at least one table."""
    stats = wait_for(lambda: [s for s in session.worker_stats() if s.tables])
    pid: int = stats[0].pid
    return pid


def test_rows_arrive_from_worker_processes() -> None:
    with serve(make_app()) as server, Session(workers=2) as session:
        session.execute(
            polled(server.url("/counter"), "a")
            + polled(server.url("/counter"), "b")
            + "CREATE TABLE pulse WITH (connector = 'impulse', event_rate = 200, "
            "message_count = 40);"
        )
        wait_for(lambda: count(session, "a") >= 3 and count(session, "b") >= 3)
        wait_for(lambda: status_of(session, "pulse").state is SourceState.FINISHED)
        assert count(session, "pulse") == 40
        got = session.query("SELECT counter FROM pulse ORDER BY counter").column(0).to_pylist()
        assert got == list(range(40))
        # (Status comes once a second, rows at once: wait for both tables' first.)
        statuses = wait_for(
            lambda: (st := {s.table: s for s in session.status()})
            and all(st[t].last_status_code == 200 for t in ("a", "b"))
            and st
        )
        workers = wait_for(
            lambda: (w := session.worker_stats()) and sum(s.poll_starts for s in w) >= 2 and w
        )
    # Each table ran in a worker process, not this one: two tables per worker at most.
    assert {statuses["a"].extra["worker"], statuses["b"].extra["worker"]} == {1, 2}
    assert len(workers) == 2 and os.getpid() not in {w.pid for w in workers}
    assert statuses["a"].state is SourceState.RUNNING
    assert statuses["a"].polls >= 1 and statuses["a"].last_status_code == 200


def test_status_errors_and_logs_arrive_masked(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    header = ", headers = 'Authorization: Bearer {{ TOKEN }}'"
    with serve(make_app()) as server, Session(workers=2, env={"TOKEN": SECRET}) as session:
        session.execute(
            polled(server.url("/status/500?echo=1"), "broken", extra=header)
            + polled(server.url("/invalid"), "bad", extra=", bad_data = 'fail'")
        )
        wait_for(lambda: status_of(session, "broken").failures >= 2)
        wait_for(lambda: status_of(session, "bad").state is SourceState.FAILED)
        broken, bad = status_of(session, "broken"), status_of(session, "bad")
        table = session.query(
            'SELECT "table", state, failures, last_error FROM arroyo_status ORDER BY "table"'
        )
    assert broken.consecutive_failures >= 1
    assert broken.last_error is not None and "500" in broken.last_error
    assert bad.failures == 1 and bad.last_error
    assert table.column("table").to_pylist() == ["bad", "broken"]
    assert table.column("state")[0].as_py() == "failed"
    assert table.column("failures")[1].as_py() >= 2
    forwarded = [r.getMessage() for r in caplog.records if "broken" in r.getMessage()]
    assert forwarded, "the worker's warning about 'broken' reached this process's log"
    everything = repr(broken) + repr(bad) + str(table) + caplog.text
    assert SECRET not in everything


def test_status_after_recovery_keeps_the_last_error() -> None:
    # Statuses that only move counters are taken in when read: the error of the failures
    # before must survive the many such statuses after them (as in one process).
    with serve(make_app()) as server, Session(workers=2) as session:
        session.execute(polled(server.url("/fail?times=2"), "flaky"))
        wait_for(lambda: count(session, "flaky") >= 5)
        # A status sent after those rows (the status comes once a second).
        status = wait_for(
            lambda: (s := status_of(session, "flaky")).rows >= 5
            and s.consecutive_failures == 0
            and s
        )
    assert status.state is SourceState.RUNNING
    assert status.failures == 2 and status.polls >= 7
    assert status.last_error is not None and "500" in status.last_error
    assert status.last_status_code == 200 and status.extra["worker"] in {1, 2}


def dedup_table(url: str) -> str:
    return f"""
    CREATE TABLE quakes (id TEXT PRIMARY KEY, properties STRUCT<mag DOUBLE, time BIGINT>)
    WITH (connector = 'polling_http', endpoint = '{url}', format = 'json',
          poll_interval_ms = 20, 'records.path' = '$.features[*]', emit_behavior = 'dedup');
    """


def quake_ids(session: Session) -> list[str]:
    values: list[str] = session.query("SELECT id FROM quakes ORDER BY id").column("id").to_pylist()
    return values


@pytest.mark.parametrize("second_workers", [2, 1])
def test_state_resumes_after_a_restart(tmp_path: Path, second_workers: int) -> None:
    """What a worker's source keeps (dedup's seen keys) is stored by the session with the
    rows, and resumes: with workers again, or in one process."""
    feed = FeedState(quakes=quakes(100), window=(0, 30))
    with serve(make_feed_app(feed)) as server:
        url = server.url("/usgs")
        with Session(state_dir=tmp_path, flush_interval=0.05, workers=2) as session:
            session.execute(dedup_table(url))
            wait_for(lambda: len(quake_ids(session)) == 30)
        server.call(lambda: setattr(feed, "window", (10, 45)))
        with Session(state_dir=tmp_path, workers=second_workers) as session:
            session.execute(dedup_table(url))
            wait_for(lambda: len(quake_ids(session)) == 45)
            found = quake_ids(session)
            keys = wait_for(lambda: status_of(session, "quakes").state_keys == 45)
    assert keys
    assert len(found) == len(set(found)) == 45  # each quake once


def test_killed_worker_is_reported_and_its_tables_resume(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR)
    feed = FeedState(quakes=quakes(100), window=(0, 20))
    with serve(make_feed_app(feed)) as server, Session(workers=2) as session:
        session.execute(dedup_table(server.url("/usgs")))
        wait_for(lambda: len(quake_ids(session)) == 20)
        os.kill(hosting_pid(session), signal.SIGKILL)
        status = wait_for(
            lambda: (s := status_of(session, "quakes")).last_error
            and "SIGKILL" in s.last_error
            and s
        )
        server.call(lambda: setattr(feed, "window", (0, 30)))
        wait_for(lambda: len(quake_ids(session)) == 30)
        found = quake_ids(session)
    assert status.failures >= 1
    assert "worker process" in status.last_error
    assert any("was killed by SIGKILL" in r.getMessage() for r in caplog.records)
    # Restarted from what the session stored: nothing lost, nothing twice.
    assert len(found) == len(set(found)) == 30


def test_a_worker_dying_too_often_fails_its_tables(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    with serve(make_app()) as server, Session(workers=2) as session:
        session.execute(polled(server.url("/counter"), "a"))
        killed: set[int] = set()
        for _ in range(3):
            pid = wait_for(
                lambda: next(
                    (s.pid for s in session.worker_stats() if s.tables and s.pid not in killed),
                    None,
                )
            )
            killed.add(pid)
            os.kill(pid, signal.SIGKILL)
            wait_for(functools.partial(_gone, pid))  # reaped by the session
        status = wait_for(
            lambda: (s := status_of(session, "a")).state is SourceState.FAILED and s
        )
    assert "too often" in (status.last_error or "")
    assert any("its 1 tables stop" in r.getMessage() for r in caplog.records)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


CLI = [sys.executable, "-c", "from arroyo_lite.cli import main; main()"]


def test_cli_run_with_workers_prints_rows_and_ends_with_its_sources(tmp_path: Path) -> None:
    sql = tmp_path / "p.sql"
    sql.write_text(
        "CREATE TABLE pulse WITH (connector = 'impulse', event_rate = 100, message_count = 30);"
        "\nSELECT counter FROM pulse;\n"
    )
    done = subprocess.run(
        [*CLI, "run", str(sql), "--workers", "2", "--for", "600", "--format", "jsonl"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f'{{"counter":{i}}}' for i in range(30)]
    assert "Traceback" not in done.stderr


def test_cli_run_with_workers_stops_on_sigterm_with_state_saved(tmp_path: Path) -> None:
    """SIGTERM stops the workers in order: what they sent is stored, and a second run
    resumes after it (an impulse's counter: no row twice, none skipped)."""
    sql = tmp_path / "p.sql"
    sql.write_text(
        "CREATE TABLE pulse WITH (connector = 'impulse', event_rate = 50);\n"
        "SELECT counter FROM pulse;\n"
    )
    state = tmp_path / "state"
    args = [*CLI, "run", str(sql), "--workers", "2", "--format", "jsonl", "--state-dir"]
    with subprocess.Popen(
        [*args, str(state)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None
        first = [process.stdout.readline() for _ in range(5)]
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "Traceback" not in err
    printed = [int(line.split(":")[1].strip(" }\n")) for line in first + out.splitlines()]
    assert printed == list(range(len(printed)))
    done = subprocess.run(
        [*args, str(state), "--for", "2"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    again = [int(line.split(":")[1].strip(" }")) for line in done.stdout.splitlines()]
    # The second run prints the restored rows first, then new ones after the last stored.
    assert again[: len(printed)] == printed
    assert again == list(range(len(again)))


def test_pause_resume_and_drop_a_table_run_by_a_worker() -> None:
    """A paused table keeps its operator (counters, state) in its worker and resumes there;
    a dropped one is gone, and its name can be used again."""
    with serve(make_app()) as server, Session(workers=2) as session:
        session.execute(polled(server.url("/counter"), "a"))
        wait_for(lambda: status_of(session, "a").polls >= 3)
        session.pause("a")
        paused = wait_for(lambda: (s := status_of(session, "a")).state is SourceState.PAUSED and s)
        worker = paused.extra["worker"]
        session.resume("a")
        resumed = wait_for(lambda: (s := status_of(session, "a")).polls > paused.polls + 2 and s)
        assert resumed.state is SourceState.RUNNING and resumed.extra["worker"] == worker
        session.drop("a")
        assert "a" not in [s.table for s in session.status()]
        session.execute(polled(server.url("/counter"), "a"))
        wait_for(lambda: count(session, "a") >= 2)
        # (Status comes once a second, rows at once: wait for the new table's first.)
        again = wait_for(lambda: (s := status_of(session, "a")).polls and s)
    assert again.state is SourceState.RUNNING


def test_run_and_repl_help_document_workers() -> None:
    from click.testing import CliRunner

    from arroyo_lite.cli import main

    for command in ("run", "repl"):
        result = CliRunner().invoke(main, [command, "--help"])
        assert result.exit_code == 0 and "--workers N" in result.output


def test_workers_need_the_system_clock_and_a_positive_count() -> None:
    from arroyo_lite.clock import ManualClock

    with pytest.raises(ValueError, match="system's time"):
        Session(workers=2, clock=ManualClock())
    with pytest.raises(ValueError, match="at least 1"):
        Session(workers=0)
