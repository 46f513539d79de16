"""A ``debezium_json`` source and an ``emit_behavior = 'snapshot'`` poll are one kind of
updating table (arroyo_lite/runtime/updating.py): the store holds the current rows (no
``_retract`` column), queries over either are updating (``Session.stream`` yields changes),
validation treats both as updating, and ``--state-dir`` restores a debezium table's current
rows. Real files, real sessions, real DuckDB."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from arroyo_lite import Session
from arroyo_lite.config import RETRACT_COLUMN
from arroyo_lite.errors import ValidationErrors
from arroyo_lite.runtime.persist import StateDir
from arroyo_lite.sql import compile_sql

WAIT_S = 60.0  # a bound on waiting, never a speed assertion


def _envelope(op: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    return json.dumps({"before": before, "after": after, "op": op})


def _debezium_file(path: Path) -> Path:
    lines = [
        _envelope("c", None, {"id": 1, "v": 10}),
        _envelope("c", None, {"id": 2, "v": 20}),
        _envelope("u", {"id": 1, "v": 10}, {"id": 1, "v": 11}),
        _envelope("d", {"id": 2, "v": 20}, None),
    ]
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def _create(path: Path) -> str:
    return (
        "CREATE TABLE src (id INT PRIMARY KEY, v INT) WITH (connector = 'single_file', "
        f"path = '{path}', format = 'debezium_json', type = 'source');"
    )


def _finished(session: Session) -> None:
    deadline = time.monotonic() + WAIT_S
    while not session.sources_finished():
        assert time.monotonic() < deadline, "the file source never finished"
        time.sleep(0.05)


def test_a_debezium_table_holds_its_current_rows_and_its_queries_are_updating(
    tmp_path: Path,
) -> None:
    with Session() as session:
        session.execute(_create(_debezium_file(tmp_path / "in.json")))
        _finished(session)
        assert session.store.is_updating("src")
        assert RETRACT_COLUMN not in session.store.schema("src").names
        rows = session.query("SELECT id, v FROM src ORDER BY id").to_pylist()
        assert rows == [{"id": 1, "v": 11}]
        # A query over it yields changes, as one over a snapshot poll does.
        stream = session.stream("SELECT id, v FROM src", timeout=WAIT_S)
        try:
            first = next(stream)
        finally:
            stream.close()
        assert RETRACT_COLUMN in first.schema.names
        assert first.to_pylist() == [{"id": 1, "v": 11, RETRACT_COLUMN: False}]


def test_state_dir_restores_a_debezium_tables_current_rows(tmp_path: Path) -> None:
    source = _debezium_file(tmp_path / "in.json")
    state = tmp_path / "state"
    with Session(state_dir=state) as session:
        session.execute(_create(source))
        _finished(session)
        schema = session.store.schema("src")
    # What was saved is the current rows (not the four changes).
    saved = StateDir(state, lock=False)
    batches, _ = saved.load_table("src", schema)
    saved.release()
    assert [r for b in batches for r in b.select(["id", "v"]).to_pylist()] == [{"id": 1, "v": 11}]
    with Session(state_dir=state) as session:
        session.execute(_create(source))  # resumes after the lines read: nothing new
        _finished(session)
        rows = session.query("SELECT id, v FROM src ORDER BY id").to_pylist()
    assert rows == [{"id": 1, "v": 11}]


def test_validation_treats_a_snapshot_poll_as_updating_as_a_debezium_source(
    tmp_path: Path,
) -> None:
    tables = (
        "CREATE TABLE snap (id INT PRIMARY KEY, v INT) WITH (connector = 'polling_http', "
        "endpoint = 'http://127.0.0.1:9/x', format = 'json', emit_behavior = 'snapshot');\n"
        f"{_create(tmp_path / 'in.json')}\n"
        "CREATE TABLE out (id INT, v INT) WITH (connector = 'single_file', "
        f"path = '{tmp_path / 'o.json'}', format = 'json', type = 'sink');\n"
    )
    for table in ("snap", "src"):
        try:
            compile_sql(tables + f"INSERT INTO out SELECT id, v FROM {table};", env={})
        except ValidationErrors as e:
            messages = [error.message for error in e.errors]
        else:
            messages = []
        assert any("input is updating" in m for m in messages), (table, messages)
