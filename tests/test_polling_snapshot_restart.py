"""``emit_behavior = 'snapshot'`` with ``--state-dir``: after a restart (clean, or ``kill -9``)
the table comes back with the rows of the last snapshot, and the first poll after it is
compared with that snapshot (a key gone while the process was down is deleted, a revised one
updated, the others unchanged: nothing added twice)."""

from __future__ import annotations

from pathlib import Path

import pytest

from arroyo_lite import Session
from tests.support.collection import CollectionState, make_collection_app
from tests.support.crash import kill_9, saved_bytes, session_process
from tests.support.threaded_server import serve, wait_for
from tests.test_polling_snapshot import create, player, rows

pytestmark = pytest.mark.timeout(120)


def test_clean_restart_resumes_the_snapshot(tmp_path: Path) -> None:
    state = CollectionState()
    state.put(player("a", 1), player("b", 2), player("c", 3))
    with serve(make_collection_app(state)) as server:
        url = server.url("/items")
        with Session(state_dir=tmp_path, flush_interval=0.05) as session:
            session.execute(create(url))
            wait_for(lambda: len(rows(session)) == 3)
        server.call(lambda: (state.items.pop("a"), state.put(player("c", 30))))
        with Session(state_dir=tmp_path) as session:
            session.execute(create(url))
            wait_for(lambda: rows(session) == [("b", 2), ("c", 30)])
            status = session.status()[0]
    assert (status.rows, status.updated_rows, status.deleted_rows) == (1, 1, 1)


def test_kill_9_then_restart_resumes_the_snapshot(tmp_path: Path) -> None:
    state = CollectionState()
    state.put(*(player(k, i) for i, k in enumerate("abcde")))
    with serve(make_collection_app(state)) as server:
        url = server.url("/items")
        proc = session_process(tmp_path, create(url))
        try:
            # The first snapshot's state is saved once written (it changes only then).
            wait_for(lambda: state.polls >= 5 and saved_bytes(tmp_path, "board") > 1_000, within=60)
        finally:
            kill_9(proc)
        server.call(lambda: (state.items.pop("b"), state.put(player("d", 40), player("f", 5))))
        with Session(state_dir=tmp_path) as session:
            session.execute(create(url))
            expected = [("a", 0), ("c", 2), ("d", 40), ("e", 4), ("f", 5)]
            wait_for(lambda: rows(session) == expected)
            stream = session.stream("SELECT id FROM board", timeout=30)
            current = sorted(r["id"] for r in next(stream).to_pylist())
            stream.close()
            status = session.status()[0]
    assert current == ["a", "c", "d", "e", "f"]
    # Resumed: one insert (f), one update (d), one delete (b); a, c, e not emitted again.
    assert (status.rows, status.updated_rows, status.deleted_rows) == (2, 1, 1)


def test_a_table_redefined_as_snapshot_starts_from_its_source_state(tmp_path: Path) -> None:
    """Rows an append-only definition saved under the name are not replayed into the
    updating table (its content comes from its own snapshot state)."""
    state = CollectionState()
    state.put(player("a", 1), player("b", 2))
    with serve(make_collection_app(state)) as server:
        url = server.url("/items")
        appending = create(url).replace("emit_behavior = 'snapshot'", "emit_behavior = 'all'")
        with Session(state_dir=tmp_path, flush_interval=0.05) as session:
            session.execute(appending)
            wait_for(lambda: len(rows(session)) >= 4)
        with Session(state_dir=tmp_path) as session:
            session.execute(create(url))
            wait_for(lambda: rows(session) == [("a", 1), ("b", 2)])
            assert session.status()[0].state == "running"
