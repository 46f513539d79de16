"""A poll's pages reach the table together: a reader never sees the first pages of a poll
without the rest (the rows of all pages of one poll form one poll, issue 10 item 3).

The test makes the reader's moment deterministic instead of racing it: while page 3 of the
first poll is held by the server, the table must still be empty; once it is answered, all
rows of the three pages are there, in one source batch."""

from __future__ import annotations

import threading

import pytest

from arroyo_lite import Session
from tests.support.collection import CollectionState, make_collection_app
from tests.support.threaded_server import serve, wait_for

pytestmark = pytest.mark.timeout(120)


def test_a_polls_pages_appear_together_in_one_batch() -> None:
    state = CollectionState()
    # Pages of 2: ab | cd | e, at offsets 0, 2 and 4.
    state.put(*({"id": k, "score": n} for n, k in enumerate("abcde")))
    page_3_asked = threading.Event()
    release = threading.Event()

    def hold_page_3() -> None:
        page_3_asked.set()
        release.wait(30)

    with serve(make_collection_app(state)) as server, Session() as session:
        server.call(lambda: state.on_page.__setitem__(4, hold_page_3))
        session.execute(
            f"""CREATE TABLE feed (id TEXT, score BIGINT) WITH (
              connector = 'polling_http', endpoint = '{server.url("/items")}', format = 'json',
              'records.path' = '$.items[*]',
              'pagination.type' = 'offset', 'pagination.limit' = 2,
              'pagination.records_path' = '$.items', 'pagination.has_more_path' = '$.more',
              poll_interval_ms = 60000);"""
        )
        assert page_3_asked.wait(30)
        # Pages 1 and 2 are in the client's hands; none of their rows may be visible yet.
        assert session.query("SELECT count(*) AS n FROM feed").to_pylist() == [{"n": 0}]
        release.set()
        wait_for(lambda: session.query("SELECT count(*) AS n FROM feed").to_pylist()[0]["n"] > 0)
        rows = session.query("SELECT id FROM feed ORDER BY id").column("id").to_pylist()
        assert rows == list("abcde")
        snapshot = session.store.snapshot(["feed"])["feed"]
        assert [b.num_rows for b in snapshot.source_batches(0)] == [5]
