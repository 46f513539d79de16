"""A poll step whose auth is one request (:meth:`~.auth.Auth.alone`) is sent without driving
the auth flow's generator (issue 16 item 1): the same requests, answers and errors as the
generator's way.

Each case runs the same table against a real aiohttp server on 127.0.0.1 twice: once as the
operator does (``StaticHeaders`` sent alone), once through the flow (the same strategy with
``alone`` turned off), and compares what the server saw and what the step returned or
raised: status, body, report lines, error type, message, status code, ``Retry-After``,
excerpt. The answers cover success, rejected credentials (401, 403), a 403 that is a rate
limit, 429, 5xx, a redirect, a spent budget waited out, and a refused connection.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from arroyo_lite.clock import SystemClock
from arroyo_lite.connectors.polling_http.auth import StaticHeaders
from arroyo_lite.connectors.polling_http.client import shared_session
from arroyo_lite.connectors.polling_http.http import HttpRequest
from arroyo_lite.connectors.polling_http.options import PollingHttpOptions
from arroyo_lite.connectors.polling_http.poll import PollReport, PollStep, poll_step
from arroyo_lite.connectors.polling_http.ratelimit import RateGate

pytestmark = pytest.mark.timeout(60)


class Driven(StaticHeaders):
    """The same headers, sent through :meth:`auth_flow` (the generator's way)."""

    def alone(self, request: HttpRequest) -> HttpRequest | None:
        return None


def app(seen: list[tuple[str, str | None]], hits: dict[str, int]) -> web.Application:

    async def answer(request: web.Request) -> web.StreamResponse:
        case = request.match_info["case"]
        seen.append((request.path_qs, request.headers.get("Authorization")))
        hits[case] = hits.get(case, 0) + 1
        if case == "ok":
            return web.json_response({"id": 1}, headers={"ETag": '"v1"'})
        if case == "spent":  # the budget is spent on the first request, back at once
            if hits[case] == 1:
                headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "0"}
                return web.Response(status=429, text="slow down", headers=headers)
            return web.json_response({"id": 2}, headers={"X-RateLimit-Remaining": "9"})
        if case == "moved":
            raise web.HTTPFound("/t/ok")
        status, _, retry = case.partition("-")
        headers = {"Retry-After": retry} if retry else {}
        return web.Response(status=int(status), text=f"no {case} token=s3cret", headers=headers)

    application = web.Application()
    application.router.add_get("/t/{case}", answer)
    return application


async def outcome(step: PollStep, gate: RateGate | None) -> tuple[Any, ...]:
    report = PollReport()
    async with shared_session() as session:
        try:
            [response] = await step.responses(session, report=report, gate=gate)
        except Exception as e:
            got: tuple[Any, ...] = (
                type(e).__name__,
                e.args,
                getattr(e, "status_code", None),
                getattr(e, "retry_after", None),
                getattr(e, "body_excerpt", None),
            )
        else:
            got = (response.status, response.body, response.url, response.headers.get("ETag"))
    # The report lines without their latency (it differs between two runs).
    lines = [line.split(" (")[0] for line in report.lines]
    return got, lines, report.pages


CASES = ["ok", "401", "403", "403-7", "429-3", "500", "503-2", "moved", "spent"]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("with_gate", [False, True])
async def test_sent_alone_is_sent_through_the_flow(case: str, with_gate: bool) -> None:
    seen: list[tuple[str, str | None]] = []
    hits: dict[str, int] = {}
    server = TestServer(app(seen, hits), host="127.0.0.1")
    await server.start_server()
    try:
        options = PollingHttpOptions(
            endpoint=str(server.make_url(f"/t/{case}")),
            auth_type="bearer",
            auth_token="s3cret",
        )
        step = poll_step(options, {})
        assert isinstance(step.auth, StaticHeaders)
        driven = Driven(step.auth.headers, step.auth.secrets, step.auth.params)
        results = []
        for auth in (step.auth, driven):
            seen.clear()
            hits.clear()
            gate = RateGate(SystemClock()) if with_gate else None
            this = PollStep(step.request, auth, template=step.template, cursor=step.cursor)
            assert (this.auth.alone(this.request) is not None) == (auth is step.auth)
            results.append((await outcome(this, gate), list(seen)))
    finally:
        await server.close()
    alone, through_flow = results
    assert alone == through_flow
    (got, lines, pages), requests = alone
    assert pages == (1 if isinstance(got[0], int) else 0)  # a failed request is no page
    assert lines and all("s3cret" not in line for line in lines)
    assert all(auth == "Bearer s3cret" for _, auth in requests)
    if case == "ok":
        assert got[0] == 200 and got[3] == '"v1"'
    elif case == "spent":
        # Waited out and sent again only with a gate (which reads the budget).
        assert (got[0], len(requests)) == ((200, 2) if with_gate else ("TransientHttpError", 1))
    elif case == "moved":
        assert got[0] == 200 and got[2].endswith("/t/ok") and len(requests) == 2
    else:
        assert got[0] in ("HttpError", "CredentialsRejectedError", "TransientHttpError")
        assert "s3cret" not in str(got)


async def test_a_refused_connection_fails_alike() -> None:
    server = TestServer(web.Application(), host="127.0.0.1")
    await server.start_server()
    url = str(server.make_url("/gone"))
    await server.close()  # nothing listens on that port any more
    step = poll_step(PollingHttpOptions(endpoint=url), {})
    assert isinstance(step.auth, StaticHeaders)
    driven = PollStep(step.request, Driven(step.auth.headers, step.auth.secrets))
    alone = await outcome(step, None)
    assert alone == await outcome(driven, None)
    assert alone[0][0] == "TransientHttpError" and "error connecting" in alone[0][1][0]
