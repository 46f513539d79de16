"""Pagination inside one poll (issue 10, item 3), against a real loopback server that pages
the way real APIs do (tests/support/http_app.py ``/pages/{kind}``): every kind with 1, 2 and
many pages, an endless server stopped by the page cap, a failing page 3 (the poll fails and
its retry emits no row twice), a next link to another origin refused, and ``test`` showing
every page."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from arroyo_lite.connectors.polling_http.paging import next_link
from arroyo_lite.connectors.polling_http.probe import probe
from arroyo_lite.sql import compile_sql
from tests.support.http_app import STATE, make_app, url
from tests.support.polling import RunningSource

pytestmark = pytest.mark.timeout(60)

#: kind -> (the server's shape, the WITH options, the column list, which rows identify pages)
KINDS = {
    "header_link": ("link", "'pagination.type' = 'header_link'", "id BIGINT"),
    "json_link": (
        "json",
        "'pagination.type' = 'json_link', 'pagination.next_url_path' = '$.next'",
        "page BIGINT",
    ),
    "cursor": (
        "cursor",
        "'pagination.type' = 'cursor', 'pagination.cursor_path' = 'next_cursor', "
        "'pagination.has_more_path' = 'has_more'",
        "page BIGINT",
    ),
    "offset": (
        "offset",
        "'pagination.type' = 'offset', 'pagination.limit' = 2, 'pagination.total_path' = 'total'",
        "page BIGINT",
    ),
    "page_number": ("number", "'pagination.type' = 'page_number'", "id BIGINT"),
}


def table(endpoint: str, options: str, columns: str, extra: str = "") -> Any:
    sql = (
        f"CREATE TABLE t ({columns}) WITH (connector = 'polling_http', endpoint = '{endpoint}', "
        f"format = 'json', {options}{extra});"
    )
    return compile_sql(sql, env={"KEY": "set at run time"}).tables[0]


def hits(server: Any, kind: str) -> int:
    return server.app[STATE].count(f"/pages/{kind}")


@pytest.mark.parametrize("pages", [1, 2, 25])
@pytest.mark.parametrize("kind", list(KINDS))
async def test_every_kind_follows_every_page_of_a_poll(server: Any, kind: str, pages: int) -> None:
    shape, options, columns = KINDS[kind]
    config = table(url(server, f"/pages/{shape}?n={pages}&per=2"), options, columns)
    async with RunningSource(config) as src:
        await src.sleeping_after(1)
    assert src.status.failures == 0, src.status.last_error
    rows = src.rows()
    if columns == "id BIGINT":
        assert [r["id"] for r in rows] == list(range(pages * 2))
    else:
        assert [r["page"] for r in rows] == list(range(1, pages + 1))
    # page_number learns that the last page was the last from the empty page after it.
    assert hits(server, shape) == pages + (kind == "page_number")
    assert src.status.extra["pages"] == hits(server, shape)
    # One poll: the schedule saw one poll, however many pages.
    assert src.status.polls == 1


async def test_an_endless_server_is_stopped_by_the_page_cap_and_reported(server: Any) -> None:
    config = table(
        url(server, "/pages/link?n=0&per=1"),
        "'pagination.type' = 'header_link', 'pagination.max_pages' = 7",
        "id BIGINT",
    )
    async with RunningSource(config) as src:
        await src.sleeping_after(1)
    assert hits(server, "link") == 7
    assert [r["id"] for r in src.rows()] == list(range(7))
    assert src.status.extra["capped_polls"] == 1
    assert src.status.extra["page_cap"] == (
        "stopped after 7 pages (pagination.max_pages); the server had more"
    )
    result = await probe(config, {})
    assert result.notes[-1] == src.status.extra["page_cap"]


async def test_the_default_cap_is_finite(server: Any) -> None:
    config = table(url(server, "/pages/number?n=0&per=1"), KINDS["page_number"][1], "id BIGINT")
    async with RunningSource(config) as src:
        await src.sleeping_after(1)
    assert hits(server, "number") == 100


async def test_a_failing_page_fails_the_poll_and_the_retry_emits_each_row_once(
    server: Any,
) -> None:
    config = table(url(server, "/pages/link?n=4&per=2&fail=3&fail_times=1"),
                   KINDS["header_link"][1], "id BIGINT")  # fmt: skip
    async with RunningSource(config) as src:
        await src.sleeping_after(1)
        assert src.status.failures == 1
        assert src.status.last_error == "HTTP request failed: http server responded with 500"
        assert src.rows() == []  # pages 1 and 2 arrived, but the poll failed: nothing emitted
        await src.manual.advance(src.pending_delay())
        await src.sleeping_after(2)
    assert [r["id"] for r in src.rows()] == list(range(8))


async def test_headers_and_query_apply_to_every_page(server: Any) -> None:
    config = table(
        url(server, "/pages/number?n=3&per=1"),
        KINDS["page_number"][1] + ", headers = 'X-Key: {{ KEY }}', 'query.extra' = 'yes'",
        "id BIGINT",
    )
    async with RunningSource(config, env={"KEY": "k-secret-1"}) as src:
        await src.sleeping_after(1)
    seen = [r for r in server.app[STATE].requests if r.path == "/pages/number"]
    assert [r.query["page"] for r in seen] == ["1", "2", "3", "4"]
    assert all(r.headers["X-Key"] == "k-secret-1" and r.query["extra"] == "yes" for r in seen)


async def test_a_next_link_to_another_origin_is_not_followed(server: Any) -> None:
    other = TestServer(make_app(), host="127.0.0.1")
    await other.start_server()
    try:
        target = url(other, "/counter")
        config = table(
            url(server, "/echo"),
            "'pagination.type' = 'json_link', 'pagination.next_url_path' = 'query.next'",
            "method TEXT",
            extra=f", 'query.next' = '{target}', headers = 'X-Key: {{{{ KEY }}}}'",
        )
        async with RunningSource(config, env={"KEY": "k-secret-2"}) as src:
            await src.sleeping_after(1)
        assert other.app[STATE].requests == []
        assert src.status.last_error == (
            f"HTTP request failed: the next page is on another origin ({target}); not followed"
        )
    finally:
        await other.close()


async def test_test_shows_every_page_with_its_rows(server: Any) -> None:
    config = table(url(server, "/pages/link?n=3&per=2"), KINDS["header_link"][1], "id BIGINT")
    result = await probe(config, {})
    assert result.ok and result.total_rows == 6
    assert len(result.notes) == 3
    for page, line in enumerate(result.notes, start=1):
        assert line.startswith(f"GET {url(server, '/pages/link')}?n=3&per=2")
        assert f"page={page}" in line or page == 1
        assert " -> 200 OK (" in line and line.endswith(", 2 row(s)")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ('<https://a/x?page=2>; rel="next", <https://a/x?page=9>; rel="last"', "https://a/x?page=2"),
        ('<https://a/x?page=9>; rel="last", <https://a/x?page=2>; rel=next', "https://a/x?page=2"),
        ('<https://a/1>; rel="prev first"', None),
        ('<https://a/3>; rel="prev next"', "https://a/3"),
        ("", None),
    ],
)
def test_link_headers_are_read_per_rfc_8288(header: str, expected: str | None) -> None:
    assert next_link(header) == expected


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("'pagination.limit' = 5", "'pagination.limit' is only read with 'pagination.type' = "
         "'offset'"),
        ("'pagination.type' = 'cursor', 'pagination.page_param' = 'p'",
         "'pagination.page_param' is only read with 'pagination.type' = 'page_number'"),
        ("'pagination.type' = 'json_link', 'pagination.next_url_path' = 'a..b'",
         "invalid value for 'pagination.next_url_path': cannot read the path 'a..b' at '..b'"),
        ("'pagination.type' = 'links'", "invalid value for 'pagination.type': 'links'"),
        ("'pagination.type' = 'offset', 'pagination.max_pages' = 0",
         "invalid value for 'pagination.max_pages': 0 (must be greater than 0)"),
    ],
)  # fmt: skip
def test_bad_pagination_options_are_positioned_errors(options: str, message: str) -> None:
    from arroyo_lite.errors import ValidationErrors

    with pytest.raises(ValidationErrors) as info:
        table("http://h/x", options, "id BIGINT")
    (error,) = list(info.value)
    assert error.message == message
    assert error.position is not None
