"""The poll step's seams, on a real loopback server: a paginator (dlt's shape) decides the
requests of one poll, an auth (httpx's shape) sees each response and may send more."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from arroyo_lite.connectors.polling_http.auth import Auth, AuthFlow
from arroyo_lite.connectors.polling_http.client import shared_session
from arroyo_lite.connectors.polling_http.http import HttpRequest, HttpResponse
from arroyo_lite.connectors.polling_http.options import PollingHttpOptions
from arroyo_lite.connectors.polling_http.paging import Paginator, SinglePage
from arroyo_lite.connectors.polling_http.poll import PollStep, poll_step
from tests.support.http_app import STATE, url


async def _bodies(step: PollStep) -> list[Any]:
    async with shared_session() as session:
        return [json.loads(r.body) async for r in step.pages(session)]


async def test_a_table_polls_one_page_with_its_headers(server: Any) -> None:
    options = PollingHttpOptions(
        endpoint=url(server, "/echo"), headers=(("Authorization", "Bearer {{ T }}"),)
    )
    step = poll_step(options, {"T": "s3cret"})
    assert step.paginator is SinglePage
    [page] = await _bodies(step)
    assert page["headers"]["Authorization"] == "Bearer s3cret"
    assert step.secrets.mask("Bearer s3cret") == "Bearer ****"
    assert dict(step.first_request().headers)["Authorization"] == "Bearer s3cret"
    assert len(server.app[STATE].requests) == 1


class _PageNumbers(Paginator):
    """Pages ?page=1.. until the answer echoes page 3 (a pagination kind, as a test writes)."""

    def __init__(self) -> None:
        super().__init__()
        self.page = 1

    def init_request(self, request: HttpRequest) -> HttpRequest:
        return replace(request, url=f"{request.url}?page=1")

    def update_state(self, response: HttpResponse) -> None:
        self.has_next_page = int(json.loads(response.body)["query"]["page"]) < 3

    def update_request(self, request: HttpRequest) -> HttpRequest:
        self.page += 1
        return replace(request, url=request.url.split("?")[0] + f"?page={self.page}")


async def test_a_paginator_drives_the_requests_of_one_poll(server: Any) -> None:
    step = PollStep(
        poll_step(PollingHttpOptions(endpoint=url(server, "/echo")), {}).request,
        Auth(),
        _PageNumbers,
    )
    assert [page["query"] for page in await _bodies(step)] == [
        {"page": "1"}, {"page": "2"}, {"page": "3"},
    ]  # fmt: skip
    assert len(server.app[STATE].requests) == 3
    # A fresh paginator per poll: the next poll starts at page 1 again.
    assert (await _bodies(step))[0]["query"] == {"page": "1"}


class _Retrying(Auth):
    """Sends, looks at the answer, sends once more with a header learnt from it."""

    def auth_flow(self, request: HttpRequest) -> AuthFlow:
        first = yield request
        seen = json.loads(first.body)["method"]
        yield replace(request, headers=(*request.headers, ("X-Seen", seen)))


async def test_an_auth_flow_sees_responses_and_the_last_one_is_the_page(server: Any) -> None:
    base = poll_step(PollingHttpOptions(endpoint=url(server, "/echo")), {}).request
    [page] = await _bodies(PollStep(base, _Retrying()))
    assert page["headers"]["X-Seen"] == "GET"
    requests = server.app[STATE].requests
    assert len(requests) == 2 and "X-Seen" not in requests[0].headers
