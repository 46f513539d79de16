"""Which requests one poll of a ``polling_http`` table sends: paginators in dlt's shape.

A :class:`Paginator` is made fresh for each poll and drives its request sequence, as dlt's
``BasePaginator``: :meth:`~Paginator.init_request` adjusts the first request,
:meth:`~Paginator.update_state` reads each response (a next link, a cursor, a count),
:attr:`~Paginator.has_next_page` says whether to go on, and :meth:`~Paginator.update_request`
turns the previous request into the next one. A pagination kind (page numbers, cursors,
``Link`` headers) is one more class here: :class:`SinglePage` (Arroyo: one request per
poll, the default), :class:`HeaderLink`, :class:`JsonLink`, :class:`BodyCursor`,
:class:`OffsetLimit` and :class:`PageNumber` (``pagination.type``, dlt's names). The
poll step caps the pages of one poll (``pagination.max_pages``). A next link to another
origin is refused (:class:`PagingError`): the next request would carry the credentials.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

import orjson
from yarl import URL

from arroyo_lite.connectors.polling_http.http import HttpRequest, HttpResponse
from arroyo_lite.formats.json_path import JsonPath, as_text


class Paginator:
    """The request sequence of one poll. Subclasses override the steps they need."""

    def __init__(self) -> None:
        self.has_next_page = True

    def init_request(self, request: HttpRequest) -> HttpRequest:
        """The first request of the poll (default: the table's request as it is)."""
        return request

    def update_state(self, response: HttpResponse) -> None:
        """Read a page's response; set :attr:`has_next_page`."""
        raise NotImplementedError

    def update_request(self, request: HttpRequest) -> HttpRequest:
        """The request after ``request`` (called only while :attr:`has_next_page`)."""
        raise NotImplementedError


class SinglePage(Paginator):
    """One request per poll, the table's own (what Arroyo does)."""

    def update_state(self, response: HttpResponse) -> None:
        self.has_next_page = False

    def update_request(self, request: HttpRequest) -> HttpRequest:
        return request


def origin(url: URL) -> tuple[str, str, int | None]:
    """Scheme, host and port: what must not change between pages carrying credentials."""
    return (url.scheme, (url.host or "").lower(), url.port)


class PagingError(Exception):
    """A page's answer leads somewhere a poll must not go (another origin)."""


def _json(response: HttpResponse) -> Any:
    try:
        return orjson.loads(response.body)
    except orjson.JSONDecodeError:
        return None


def _with_params(request: HttpRequest, **params: str) -> HttpRequest:
    return replace(request, url=str(URL(request.url).update_query(params)))


def _same_origin_url(request: HttpRequest, response: HttpResponse, link: str) -> str:
    """``link`` resolved against the page it came from; refused if it leaves the origin
    (the next request carries the table's credentials)."""
    target = URL(response.url).join(URL(link))
    if origin(target) != origin(URL(request.url)):
        shown = request.secrets.mask(str(target))
        raise PagingError(f"the next page is on another origin ({shown}); not followed")
    return str(target)


class Records:
    """How many records a page holds (to stop on an empty page)."""

    def __init__(self, path: JsonPath | None) -> None:
        self.path = path

    def count(self, document: Any) -> int | None:
        found = self.path.find(document) if self.path is not None else document
        return len(found) if isinstance(found, list) else None


_NEXT_LINK = re.compile(r'<([^>]*)>\s*((?:;[^,;]*)*)')


def next_link(header: str | None) -> str | None:
    """The ``rel="next"`` target of a ``Link`` header (RFC 8288), or ``None``."""
    if not header:
        return None
    for match in _NEXT_LINK.finditer(header):
        params = match.group(2).lower()
        if re.search(r';\s*rel\s*=\s*"?(?:[^"]*\s)?next(?:\s[^"]*)?"?', params):
            return match.group(1)
    return None


class HeaderLink(Paginator):
    """``Link: <url>; rel="next"`` (GitHub, GitLab): follow it until there is none."""

    def __init__(self) -> None:
        super().__init__()
        self._next: str | None = None

    def update_state(self, response: HttpResponse) -> None:
        self._next = next_link(response.headers.get("Link"))
        self._response = response
        self.has_next_page = self._next is not None

    def update_request(self, request: HttpRequest) -> HttpRequest:
        assert self._next is not None
        return replace(request, url=_same_origin_url(request, self._response, self._next))


class JsonLink(Paginator):
    """The next page's URL in the body (``next_url_path``); stops on null or empty."""

    def __init__(self, path: JsonPath) -> None:
        super().__init__()
        self.path = path
        self._next: str | None = None

    def update_state(self, response: HttpResponse) -> None:
        self._next = as_text(self.path.find(_json(response))) or None
        self._response = response
        self.has_next_page = self._next is not None

    def update_request(self, request: HttpRequest) -> HttpRequest:
        assert self._next is not None
        return replace(request, url=_same_origin_url(request, self._response, self._next))


class BodyCursor(Paginator):
    """A cursor in the body (``cursor_path``) sent back as ``cursor_param``; stops when it
    is null/empty or the ``has_more_path`` flag is false (Stripe, Slack)."""

    def __init__(self, path: JsonPath, param: str, has_more: JsonPath | None) -> None:
        super().__init__()
        self.path, self.param, self.has_more = path, param, has_more
        self._cursor: str | None = None

    def update_state(self, response: HttpResponse) -> None:
        document = _json(response)
        self._cursor = as_text(self.path.find(document)) or None
        more = self.has_more.find(document) if self.has_more is not None else True
        self.has_next_page = self._cursor is not None and more is not False

    def update_request(self, request: HttpRequest) -> HttpRequest:
        assert self._cursor is not None
        return _with_params(request, **{self.param: self._cursor})


class OffsetLimit(Paginator):
    """``offset``/``limit`` parameters; stops on a short or empty page, at ``total_path``
    (the number of records), or when ``has_more_path`` is false."""

    def __init__(
        self,
        limit: int,
        offset_param: str,
        limit_param: str,
        records: Records,
        total: JsonPath | None,
        has_more: JsonPath | None,
    ) -> None:
        super().__init__()
        self.limit, self.offset_param, self.limit_param = limit, offset_param, limit_param
        self.records, self.total, self.has_more = records, total, has_more
        self.offset = 0

    def init_request(self, request: HttpRequest) -> HttpRequest:
        return _with_params(request, **{self.offset_param: "0", self.limit_param: str(self.limit)})

    def update_state(self, response: HttpResponse) -> None:
        document = _json(response)
        count = self.records.count(document)
        self.offset += self.limit
        total = self.total.find(document) if self.total is not None else None
        more = self.has_more.find(document) if self.has_more is not None else None
        self.has_next_page = not (
            (count is not None and count < self.limit)
            or (isinstance(total, int) and self.offset >= total)
            or more is False
        )

    def update_request(self, request: HttpRequest) -> HttpRequest:
        return _with_params(request, **{self.offset_param: str(self.offset)})


class PageNumber(Paginator):
    """``page`` numbers from ``start_page``; stops on an empty page, after ``total_path``
    (the number of pages), or when ``has_more_path`` is false."""

    def __init__(
        self,
        param: str,
        start: int,
        records: Records,
        total: JsonPath | None,
        has_more: JsonPath | None,
    ) -> None:
        super().__init__()
        self.param, self.page, self.start = param, start, start
        self.records, self.total, self.has_more = records, total, has_more

    def init_request(self, request: HttpRequest) -> HttpRequest:
        return _with_params(request, **{self.param: str(self.page)})

    def update_state(self, response: HttpResponse) -> None:
        document = _json(response)
        count = self.records.count(document)
        total = self.total.find(document) if self.total is not None else None
        more = self.has_more.find(document) if self.has_more is not None else None
        pages_seen = self.page - self.start + 1
        self.has_next_page = not (
            count == 0 or (isinstance(total, int) and pages_seen >= total) or more is False
        )
        self.page += 1

    def update_request(self, request: HttpRequest) -> HttpRequest:
        return _with_params(request, **{self.param: str(self.page)})


#: ``pagination.type`` values (dlt's names) -> what they follow.
KINDS = {
    "header_link": "the Link: <...>; rel=\"next\" header",
    "json_link": "a next URL in the body (pagination.next_url_path)",
    "cursor": "a cursor in the body (pagination.cursor_path) sent as pagination.cursor_param",
    "offset": "offset/limit query parameters",
    "page_number": "page numbers as a query parameter",
}
