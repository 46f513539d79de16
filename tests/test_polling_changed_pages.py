"""``emit_behavior = 'changed'`` on a paginated table: a poll is compared with the last poll
emitted as a whole (all its pages, or none of them), never page by page. Compared per page,
every page differs from the page before it, so an unchanged collection came back on every
poll. Against the loopback server's ``/pages/link`` (the same 3 pages on every poll)."""

from __future__ import annotations

from typing import Any

import pytest

from arroyo_lite.sql import compile_sql
from tests.support.http_app import url
from tests.support.polling import RunningSource

pytestmark = pytest.mark.timeout(60)


def paged_table(endpoint: str, compare: str | None) -> Any:
    extra = f", 'changed.compare' = '{compare}'" if compare else ""
    sql = (
        f"CREATE TABLE t (id BIGINT) WITH (connector = 'polling_http', endpoint = '{endpoint}', "
        f"format = 'json', 'pagination.type' = 'header_link', emit_behavior = 'changed'{extra});"
    )
    return compile_sql(sql).tables[0]


@pytest.mark.parametrize("compare", [None, "rows"])
async def test_an_unchanged_paginated_collection_is_emitted_once(
    server: Any, compare: str | None
) -> None:
    config = paged_table(url(server, "/pages/link?n=3&per=2"), compare)
    async with RunningSource(config) as src:
        await src.sleeping_after(1)
        for polls in (2, 3):
            await src.manual.advance(src.pending_delay())
            await src.sleeping_after(polls)
    assert src.status.failures == 0, src.status.last_error
    assert [r["id"] for r in src.rows()] == list(range(6))  # the first poll's 3 pages, once
    assert len(src.batches) == 1
    assert src.status.unchanged_polls == 2
    assert src.status.rows == 6
    assert src.status.extra["pages"] == 3  # the last poll still fetched every page
