"""``emit_behavior = 'snapshot'`` against a local paged collection API: the table holds the
latest row per key, a key gone from the list is deleted, continuous queries see the changes
(``_retract``), and a failed page or a dropped record deletes nothing."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from arroyo_lite import Session
from arroyo_lite.errors import ArroyoLiteError
from tests.support.collection import CollectionState, make_collection_app
from tests.support.threaded_server import serve, wait_for

pytestmark = pytest.mark.timeout(120)


def create(url: str, *, extra: str = "") -> str:
    return f"""
    CREATE TABLE board (
      id TEXT PRIMARY KEY,
      player TEXT,
      score BIGINT,
      seq BIGINT METADATA FROM 'poll'
    ) WITH (
      connector = 'polling_http', endpoint = '{url}', format = 'json',
      'records.path' = '$.items[*]',
      'pagination.type' = 'offset', 'pagination.limit' = 2,
      'pagination.records_path' = '$.items', 'pagination.has_more_path' = '$.more',
      emit_behavior = 'snapshot', poll_interval_ms = 20, max_backoff_ms = 50{extra}
    );
    """


def player(key: str, score: int) -> dict[str, Any]:
    return {"id": key, "player": f"player {key}", "score": score, "ignored": "x"}


def rows(session: Session) -> list[tuple[str, int]]:
    table = session.query("SELECT id, score FROM board ORDER BY id")
    return list(zip(table.column("id").to_pylist(), table.column("score").to_pylist(), strict=True))


def settled(state: CollectionState, session: Session) -> list[tuple[str, int]] | None:
    """The table's rows once two more polls than now have been answered (so the current
    state of the server was polled whole at least once)."""
    target = state.polls + 2
    wait_for(lambda: state.polls >= target and session.status()[0].polls >= target)
    return rows(session)


def test_table_follows_inserts_updates_and_deletes_and_stream_shows_them() -> None:
    state = CollectionState()
    state.put(player("a", 10), player("b", 20), player("c", 30))
    with serve(make_collection_app(state)) as server, Session() as session:
        session.execute(create(server.url("/items")))
        wait_for(lambda: rows(session) == [("a", 10), ("b", 20), ("c", 30)])
        stream = session.stream("SELECT id, score FROM board", timeout=60)
        seen: list[dict[str, Any]] = []

        def take(count: int) -> list[dict[str, Any]]:
            while len(seen) < count:
                seen.extend(next(stream).to_pylist())
            return seen[:count]

        # A query started now sees the current rows as additions.
        first = take(3)
        assert sorted((r["id"], r["score"], r["_retract"]) for r in first) == [
            ("a", 10, False), ("b", 20, False), ("c", 30, False),
        ]  # fmt: skip
        # One poll later: b is revised, c is gone, d is new (a unchanged: nothing for it).
        change = lambda: (state.put(player("b", 25), player("d", 40)), state.items.pop("c"))  # noqa: E731
        server.call(lambda: state.staged.append(change))
        wait_for(lambda: rows(session) == [("a", 10), ("b", 25), ("d", 40)])
        changes = take(7)[3:]
        assert [r["_retract"] for r in changes] == [True, True, False, False]
        assert sorted((r["id"], r["score"]) for r in changes[:2]) == [("b", 20), ("c", 30)]
        assert sorted((r["id"], r["score"]) for r in changes[2:]) == [("b", 25), ("d", 40)]
        stream.close()
        # Polls of an unchanged list change nothing, and no row is added twice.
        assert settled(state, session) == [("a", 10), ("b", 25), ("d", 40)]
        status = session.query(
            "SELECT rows, updated_rows, deleted_rows, state_keys FROM arroyo_status"
        ).to_pylist()
    assert status == [{"rows": 5, "updated_rows": 1, "deleted_rows": 1, "state_keys": 3}]


def test_unchanged_row_keeps_the_row_emitted_for_it() -> None:
    """A row whose content did not change is not emitted again: its metadata columns (the
    poll that brought it) stay those of its last change."""
    state = CollectionState()
    state.put(player("a", 1), player("b", 2))
    with serve(make_collection_app(state)) as server, Session() as session:
        session.execute(create(server.url("/items")))
        wait_for(lambda: len(rows(session)) == 2)
        first = session.query("SELECT id, seq FROM board ORDER BY id").to_pylist()
        server.call(lambda: state.put(player("b", 3)))
        wait_for(lambda: rows(session) == [("a", 1), ("b", 3)])
        settled(state, session)
        later = session.query("SELECT id, seq FROM board ORDER BY id").to_pylist()
    assert later[0] == first[0]
    assert later[1]["seq"] > first[1]["seq"]


def test_a_snapshot_is_all_pages_and_a_failed_page_deletes_nothing() -> None:
    state = CollectionState()
    state.put(*(player(k, i) for i, k in enumerate("abcde")))  # three pages of two
    with serve(make_collection_app(state)) as server, Session() as session:
        session.execute(create(server.url("/items")))
        wait_for(lambda: len(rows(session)) == 5)

        def fail_and_drop() -> None:
            state.fail_offset = 2  # the second page fails ...
            state.items.pop("e")  # ... of a list from which e is gone

        server.call(lambda: state.staged.append(fail_and_drop))  # at a poll's start
        failures = session.status()[0].failures
        wait_for(lambda: session.status()[0].failures >= failures + 3)
        assert [k for k, _ in rows(session)] == list("abcde")  # nothing deleted
        assert session.status()[0].deleted_rows == 0
        server.call(lambda: setattr(state, "fail_offset", None))
        wait_for(lambda: [k for k, _ in rows(session)] == list("abcd"))
        assert session.status()[0].deleted_rows == 1


def test_a_snapshot_with_a_dropped_record_deletes_nothing() -> None:
    """With bad_data = 'drop', a record that fails to decode may be one still listed: the
    snapshot updates and adds rows but deletes none."""
    state = CollectionState()
    state.put(player("a", 1), player("b", 2))
    with serve(make_collection_app(state)) as server, Session() as session:
        session.execute(create(server.url("/items"), extra=", bad_data = 'drop'"))
        wait_for(lambda: len(rows(session)) == 2)

        def break_b() -> None:
            state.items.pop("b")
            state.put(player("a", 5))
            state.bad = '{"id": "b", "player": "player b", "score": "not a number"}'

        server.call(break_b)
        wait_for(lambda: session.status()[0].dropped_rows > 0 and rows(session)[0] == ("a", 5))
        assert rows(session) == [("a", 5), ("b", 2)]
        server.call(lambda: setattr(state, "bad", None))
        wait_for(lambda: rows(session) == [("a", 5)])


def test_queries_over_the_table_are_updating() -> None:
    state = CollectionState()
    state.put(player("a", 10), player("b", 20))
    with serve(make_collection_app(state)) as server, Session() as session:
        session.execute(create(server.url("/items")))
        wait_for(lambda: len(rows(session)) == 2)
        stream = session.stream("SELECT sum(score) AS total FROM board", timeout=60)
        batch = next(stream)
        assert batch.to_pylist() == [{"total": 30, "_retract": False}]
        server.call(lambda: state.items.pop("a"))
        assert next(stream).to_pylist() == [
            {"total": 30, "_retract": True}, {"total": 20, "_retract": False},
        ]  # fmt: skip
        stream.close()
        # Into an append-only sink it is refused, with Arroyo's message.
        with pytest.raises(ArroyoLiteError, match="input is updating, but sink is not"):
            session.execute(
                "CREATE TABLE out (id TEXT, score BIGINT) WITH (connector = 'blackhole');"
                "INSERT INTO out SELECT id, score FROM board;"
            )


def test_snapshot_needs_a_primary_key() -> None:
    with Session() as session, pytest.raises(ArroyoLiteError) as info:
        session.execute(
            "CREATE TABLE t (id TEXT) WITH (connector = 'polling_http', "
            "endpoint = 'http://127.0.0.1:9/x', format = 'json', emit_behavior = 'snapshot');"
        )
    assert "emit_behavior = 'snapshot' needs a PRIMARY KEY column" in str(info.value)


def test_change_batches_keep_the_table_schema() -> None:
    state = CollectionState()
    state.put(player("a", 1))
    with serve(make_collection_app(state)) as server, Session() as session:
        session.execute(create(server.url("/items")))
        wait_for(lambda: len(rows(session)) == 1)
        table = session.query("SELECT * FROM board")
    assert table.schema.names == ["id", "player", "score", "seq", "_timestamp"]
    assert table.schema.field("score").type == pa.int64()
