"""Which requests one poll of a ``polling_http`` table sends: paginators in dlt's shape.

A :class:`Paginator` is made fresh for each poll and drives its request sequence, as dlt's
``BasePaginator``: :meth:`~Paginator.init_request` adjusts the first request,
:meth:`~Paginator.update_state` reads each response (a next link, a cursor, a count),
:attr:`~Paginator.has_next_page` says whether to go on, and :meth:`~Paginator.update_request`
turns the previous request into the next one. A pagination kind (page numbers, cursors,
``Link`` headers) is one more class here. Today's only one is :class:`SinglePage`: Arroyo
sends exactly one request per poll.
"""

from __future__ import annotations

from arroyo_lite.connectors.polling_http.http import HttpRequest, HttpResponse


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
