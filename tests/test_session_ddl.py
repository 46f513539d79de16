"""DROP TABLE/VIEW, CREATE OR REPLACE VIEW, COPY (query) TO, pause/resume: the session side of
what the REPL offers (the REPL's own pty tests are in test_repl_commands_pty.py)."""

from __future__ import annotations

import json
import time

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from arroyo_lite import Session
from arroyo_lite.connectors.base import SourceState
from arroyo_lite.errors import ArroyoLiteError, QueryError, SqlError
from arroyo_lite.sql.statements import Copy

WAIT = 60.0
IMPULSE = "CREATE TABLE imp WITH (connector = 'impulse', event_rate = '500');"


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


def count(session: Session, table: str = "imp") -> int:
    return int(session.query(f"SELECT count(*) AS n FROM {table}").column("n")[0].as_py())


def state(session: Session, table: str = "imp") -> SourceState:
    return next(s.state for s in session.status() if s.table == table)


@pytest.fixture
def session():
    with Session(env={}) as s:
        yield s


def test_drop_table_stops_the_source_and_its_rows_go(session):
    session.execute(IMPULSE)
    wait_until(lambda: count(session) > 0, "rows")
    session.execute("DROP TABLE imp;")
    assert "imp" not in session.tables()
    assert [s.table for s in session.status()] == []
    with pytest.raises(QueryError):
        session.query("SELECT * FROM imp")
    # The name is free again, and the new table starts empty (its counter from 0).
    session.execute(IMPULSE.replace("'500'", "'1'"))
    wait_until(lambda: count(session) > 0, "rows of the new table")
    assert session.query("SELECT min(counter) AS m FROM imp").column("m")[0].as_py() == 0


def test_drop_refusals_name_the_fix(session):
    session.execute(IMPULSE + "CREATE VIEW v AS SELECT counter FROM imp;")
    with pytest.raises(ArroyoLiteError) as refused:
        session.execute("DROP TABLE imp;")
    assert "view 'v' depends on it" in refused.value.message
    assert refused.value.hint == "drop the views that read it first: DROP VIEW v"
    with pytest.raises(ArroyoLiteError) as wrong_kind:
        session.execute("DROP VIEW imp;")
    assert wrong_kind.value.message == "'imp' is a table, not a view"
    with pytest.raises(ArroyoLiteError) as missing:
        session.execute("DROP TABLE nope;")
    assert "table 'nope' does not exist" in str(missing.value)
    session.execute("DROP TABLE IF EXISTS nope;")  # no error
    session.execute("DROP VIEW v; DROP TABLE imp;")
    assert session.tables() == []


def test_drop_table_with_a_state_dir_deletes_its_saved_rows(tmp_path):
    with Session(env={}, state_dir=tmp_path, flush_interval=0.05) as session:
        session.execute(IMPULSE)
        wait_until(lambda: count(session) > 0, "rows")
        saved = tmp_path / "tables"
        wait_until(lambda: any(saved.rglob("*")), "saved segments")
        session.execute("DROP TABLE imp;")
        assert not any(p.is_file() for p in saved.rglob("*"))
    with Session(env={}, state_dir=tmp_path) as again:
        again.execute(IMPULSE.replace("'500'", "'1'"))
        wait_until(lambda: count(again) > 0, "rows")
        # Nothing came back from before the DROP: the counter starts over.
        assert again.query("SELECT min(counter) AS m FROM imp").column("m")[0].as_py() == 0


def test_create_or_replace_view_replaces_and_keeps_the_old_one_on_error(session):
    session.execute("CREATE VIEW v AS SELECT 1 AS a;")
    with pytest.raises(ArroyoLiteError, match="already defined"):
        session.execute("CREATE VIEW v AS SELECT 2 AS a;")
    session.execute("CREATE OR REPLACE VIEW v AS SELECT 2 AS b;")
    assert session.query("SELECT * FROM v").to_pylist() == [{"b": 2}]
    with pytest.raises(ArroyoLiteError):
        session.execute("CREATE OR REPLACE VIEW v AS SELECT nope FROM nowhere;")
    assert session.query("SELECT * FROM v").to_pylist() == [{"b": 2}]
    session.execute(IMPULSE)
    with pytest.raises(ArroyoLiteError, match="already defined"):
        session.execute("CREATE OR REPLACE VIEW imp AS SELECT 1 AS a;")  # a table, not a view


@pytest.mark.parametrize("suffix", ["csv", "parquet", "json"])
def test_copy_writes_a_snapshot_in_each_format(session, tmp_path, suffix):
    target = tmp_path / f"out.{suffix}"
    program = session.execute(
        "COPY (SELECT 1 AS a, 314.045::DOUBLE AS f UNION ALL SELECT 2, 0.5 ORDER BY a) "
        f"TO '{target}';"
    )
    (statement,) = program.statements
    assert isinstance(statement, Copy)
    assert not target.exists()  # COPY is the caller's to run, like a SELECT
    assert session.run_copy(statement) == 2
    if suffix == "csv":
        rows = pacsv.read_csv(target).to_pylist()
    elif suffix == "parquet":
        rows = pq.read_table(target).to_pylist()
    else:
        rows = [json.loads(line) for line in target.read_text().splitlines()]
    assert rows == [{"a": 1, "f": 314.045}, {"a": 2, "f": 0.5}]


def test_copy_errors(session, tmp_path):
    with pytest.raises(ArroyoLiteError) as no_query:
        session.execute(f"COPY imp TO '{tmp_path / 'x.csv'}';")
    assert "COPY needs a query in parentheses" in no_query.value.message
    with pytest.raises(ArroyoLiteError) as no_to:
        session.execute("COPY (SELECT 1);")
    assert "must be followed by TO 'file'" in no_to.value.message
    with pytest.raises(QueryError):
        session.copy("SELECT 1", f"'{tmp_path / 'no' / 'such' / 'dir.csv'}'")
    with pytest.raises(QueryError, match="only queries"):
        session.copy("DROP TABLE x", f"'{tmp_path / 'x.csv'}'")


def test_pause_and_resume_keep_the_sources_state(session):
    session.execute(IMPULSE)
    wait_until(lambda: count(session) >= 20, "rows")
    session.pause("imp")
    assert state(session) is SourceState.PAUSED
    paused_at = count(session)
    status = next(s for s in session.status() if s.table == "imp")
    assert status.rows == paused_at  # nothing more arrives once the pause returned
    with pytest.raises(SqlError, match="not running"):
        session.pause("imp")
    session.resume("imp")
    wait_until(lambda: count(session) > paused_at + 20, "rows after resuming")
    assert state(session) is SourceState.RUNNING
    # The impulse's counter (its durable state) went on from where it was: no repeat, no gap.
    stats = session.query(
        "SELECT count(*) AS n, count(DISTINCT counter) AS d, min(counter) AS lo, "
        "max(counter) AS hi FROM imp"
    ).to_pylist()[0]
    assert stats["n"] == stats["d"] == stats["hi"] - stats["lo"] + 1
    assert next(s for s in session.status() if s.table == "imp").rows >= stats["n"]
    with pytest.raises(SqlError, match="not paused"):
        session.resume("imp")
    with pytest.raises(SqlError, match="no source table named 'nope'"):
        session.pause("nope")
