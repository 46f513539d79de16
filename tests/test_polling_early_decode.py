"""A paginated poll's pages are decoded while the next ones are fetched
(connectors/polling_http/early.py), and that changes nothing a reader can see: the rows of
all pages in page order, as one batch; bad data on a later page dropped or failing the table
as before; a page that fails to arrive fails the poll with no row emitted; ``changed`` (which
may skip decoding an unchanged page by its digest) decodes after the fetches, as before.
Against a real loopback server (tests/support/collection.py, pages of 2)."""

from __future__ import annotations

import asyncio
import gc
import logging
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from arroyo_lite.config import BadData, Format
from arroyo_lite.connectors.polling_http.early import EarlyDecodes
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.formats import make_decoder
from tests.support.collection import CollectionState, make_collection_app
from tests.support.polling import ID_NAME, RunningSource, polling_table

pytestmark = pytest.mark.timeout(60)

PAGED = {
    "pagination_type": "offset",
    "pagination_limit": 2,
    "pagination_records_path": "$.items",
    "pagination_has_more_path": "$.more",
}


async def collection(aiohttp_server: Any, *records: dict[str, Any]) -> tuple[Any, CollectionState]:
    state = CollectionState()
    state.put(*records)
    server: TestServer = await aiohttp_server(make_collection_app(state))
    return server, state


def table(server: Any, bad_data: BadData = BadData.FAIL, **options: Any) -> Any:
    return polling_table(
        str(server.make_url("/items")),
        columns=ID_NAME,
        fmt=Format.JSON,
        bad_data=bad_data,
        records_path="$.items[*]",
        **PAGED,
        **options,
    )


RECORDS = [{"id": n, "name": f"r{n}"} for n in range(7)]


async def test_the_rows_of_every_page_come_in_order_in_one_batch(aiohttp_server: Any) -> None:
    server, state = await collection(aiohttp_server, *RECORDS)
    async with RunningSource(table(server)) as src:
        await src.sleeping_after(1)
    assert state.hits == 4
    assert [b.num_rows for b in src.batches] == [7]
    assert src.rows() == RECORDS
    assert src.status.rows == 7


async def test_bad_data_on_a_later_page_is_dropped_or_fails_as_before(aiohttp_server: Any) -> None:
    bad = [*RECORDS[:3], {"id": "three", "name": "r3"}, *RECORDS[4:]]  # page 2's second record
    server, _ = await collection(aiohttp_server, *bad)
    async with RunningSource(table(server, BadData.DROP)) as src:
        await src.sleeping_after(1)
    assert src.rows() == [r for r in RECORDS if r["id"] != 3]
    assert src.status.dropped_rows == 1
    async with RunningSource(table(server, BadData.FAIL)) as failing:
        assert failing.task is not None
        error = await asyncio.wait_for(failing.task, 30)
    assert error is not None and "JSON does not match schema" in error.message
    assert failing.rows() == []


async def test_a_page_that_fails_to_arrive_fails_the_poll_with_no_row(aiohttp_server: Any) -> None:
    server, state = await collection(aiohttp_server, *RECORDS)
    state.fail_offset = 6  # page 4: pages 1 to 3 were fetched (and decoded) before it failed
    async with RunningSource(table(server)) as src:
        await src.sleeping_after(1)
        assert src.status.failures == 1
        assert src.rows() == []
        state.fail_offset = None
        await src.manual.advance(src.pending_delay())
        await src.sleeping_after(2)
    assert src.rows() == RECORDS  # each row once


async def test_changed_decodes_its_pages_after_the_fetches(aiohttp_server: Any) -> None:
    server, _ = await collection(aiohttp_server, *RECORDS)
    async with RunningSource(table(server, emit_behavior="changed")) as src:
        await src.sleeping_after(1)
    assert [b.num_rows for b in src.batches] == [7]
    assert src.rows() == RECORDS


async def test_decodes_run_in_page_order_and_abandoned_errors_are_taken(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = polling_table("http://127.0.0.1:1/", columns=ID_NAME, fmt=Format.JSON)
    early = EarlyDecodes(make_decoder(config), iter(range(100, 200)).__next__)
    bodies = [b'[{"id": 1}, {"id": 2}]', b'{"id": 3, "name": "c"}']
    early.catch_up(bodies)
    early.catch_up([*bodies, b'{"id": "bad"}'])
    assert early.started == 3
    first, at = await early.result(0)
    assert first.batch is not None and first.batch.column("id").to_pylist() == [1, 2]
    assert at == 100
    second, at = await early.result(1)
    assert second.batch is not None and second.batch.column("name").to_pylist() == ["c"]
    assert at == 101
    with pytest.raises(FatalSourceError, match="JSON does not match schema"):
        await early.result(2)
    # A failed decode nobody awaits (the poll failed first) is taken on abandon: no warning.
    unasked = EarlyDecodes(make_decoder(config), iter(range(10)).__next__)
    unasked.catch_up([b'{"id": "bad"}', b"{}"])
    await asyncio.wait(unasked._tasks)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        unasked.abandon()
        del unasked
        gc.collect()
    assert "never retrieved" not in caplog.text
