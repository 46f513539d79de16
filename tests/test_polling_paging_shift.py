"""A paged list whose records shift between pages while a poll pages through it (a record
inserted at the head after the first page was read, or one removed): with offset paging the
record at a page boundary is then listed twice, or skipped.

What holds (README, Pagination): with ``emit_behavior = 'dedup'`` a record listed twice in
one poll is emitted once, and one the poll skipped is emitted by the next poll that lists it,
so none is emitted twice and none is lost while it stays in the list. With ``'snapshot'`` a
record listed twice is kept once; one skipped is deleted by that poll and inserted back by
the next."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from arroyo_lite import Session
from tests.support.collection import CollectionState, make_collection_app
from tests.support.threaded_server import serve, wait_for

pytestmark = pytest.mark.timeout(120)


def create(url: str, behavior: str) -> str:
    return f"""
    CREATE TABLE feed (id TEXT PRIMARY KEY, score BIGINT) WITH (
      connector = 'polling_http', endpoint = '{url}', format = 'json',
      'records.path' = '$.items[*]',
      'pagination.type' = 'offset', 'pagination.limit' = 2,
      'pagination.records_path' = '$.items', 'pagination.has_more_path' = '$.more',
      emit_behavior = '{behavior}', poll_interval_ms = 20
    );
    """


def record(key: str, score: int = 0) -> dict[str, Any]:
    return {"id": key, "score": score}


def emitted(session: Session) -> Counter[str]:
    ids = session.query("SELECT id FROM feed").column("id").to_pylist()
    return Counter(ids)


def test_dedup_a_record_inserted_at_the_head_while_paging() -> None:
    state = CollectionState()
    state.put(*(record(k) for k in "abcde"))  # pages: ab | cd | e
    with serve(make_collection_app(state)) as server, Session() as session:
        session.execute(create(server.url("/items"), "dedup"))
        wait_for(lambda: sum(emitted(session).values()) == 5)

        def shift_next_poll() -> None:
            # Next poll: after page 1 (a b), two records arrive at the head, so page 2
            # lists a b again and this poll never sees the newcomers (the next one does).
            state.put(record("x"), record("y"))
            state.on_page[2] = lambda: state.insert_head(record("n1"), record("n2"))

        server.call(shift_next_poll)
        wait_for(lambda: "n1" in emitted(session) and "n2" in emitted(session))
        target = state.polls + 2
        wait_for(lambda: state.polls >= target)
        counts = emitted(session)
        deduplicated = session.status()[0].deduplicated_rows
    assert set(counts) == set("abcdexy") | {"n1", "n2"}
    assert all(n == 1 for n in counts.values()), counts  # nothing emitted twice
    assert deduplicated > 0


def test_dedup_a_record_removed_while_paging_is_emitted_by_the_next_poll() -> None:
    state = CollectionState()
    state.put(*(record(k) for k in "abcd"))
    with serve(make_collection_app(state)) as server, Session() as session:
        session.execute(create(server.url("/items"), "dedup"))
        wait_for(lambda: sum(emitted(session).values()) == 4)

        def shift_next_poll() -> None:
            # Next poll lists a b | c d | e f; after page 1, a leaves, so page 2 is d e and
            # page 3 f: this poll skips c (emitted before) and sees e and f.
            state.put(record("c", 1), record("e"), record("f"))  # c revised: news
            state.on_page[2] = lambda: state.items.pop("a")

        server.call(shift_next_poll)
        wait_for(lambda: {"e", "f"} <= set(emitted(session)))
        wait_for(lambda: emitted(session)["c"] == 2)  # the next poll brings c's revision
        counts = emitted(session)
    assert counts == Counter({"a": 1, "b": 1, "c": 2, "d": 1, "e": 1, "f": 1})


def test_snapshot_a_record_inserted_at_the_head_while_paging() -> None:
    state = CollectionState()
    state.put(*(record(k) for k in "abcde"))
    with serve(make_collection_app(state)) as server, Session() as session:
        session.execute(create(server.url("/items"), "snapshot"))
        wait_for(lambda: sum(emitted(session).values()) == 5)

        def shift_next_poll() -> None:
            state.on_page[2] = lambda: state.insert_head(record("n1"))

        server.call(shift_next_poll)
        wait_for(lambda: "n1" in emitted(session))
        counts = emitted(session)
        deleted = session.status()[0].deleted_rows
    assert counts == Counter({k: 1 for k in "abcde"} | {"n1": 1})
    assert deleted == 0  # the shift listed b twice (kept once) and skipped nothing
