"""One poll of a ``polling_http`` table: the requests of a paginator, sent through an auth.

:class:`PollStep` is what the operator runs on every tick and what ``arroyo-lite test``
runs once (:mod:`.probe`), so both send exactly the same requests. :meth:`PollStep.pages`
walks the paginator's sequence (:mod:`.paging`, dlt's shape) and sends each request through
the auth flow (:mod:`.auth`, httpx's shape), yielding every page's 2xx response; a failed
request raises :func:`.http.fetch`'s errors and ends the poll.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, replace

import aiohttp

from arroyo_lite.connectors.polling_http.auth import Auth, StaticHeaders
from arroyo_lite.connectors.polling_http.http import HttpRequest, HttpResponse, fetch
from arroyo_lite.connectors.polling_http.options import PollingHttpOptions
from arroyo_lite.connectors.polling_http.paging import Paginator, SinglePage
from arroyo_lite.secrets import Secrets, url_password


@dataclass(frozen=True, slots=True)
class PollStep:
    """A table's request (without credentials), its auth, and how to page one poll."""

    request: HttpRequest
    auth: Auth
    paginator: Callable[[], Paginator] = SinglePage

    @property
    def secrets(self) -> Secrets:
        """Every credential value this step sends: mask them in all output."""
        return self.request.secrets | self.auth.secrets

    def with_timeout(self, seconds: float) -> PollStep:
        """The same step with another request timeout (``arroyo-lite test --timeout``)."""
        return replace(self, request=replace(self.request, timeout_s=seconds))

    def first_request(self) -> HttpRequest:
        """The first request a poll sends, credentials included (to show it, masked)."""
        flow = self.auth.auth_flow(self.paginator().init_request(self.request))
        try:
            return next(flow)
        finally:
            flow.close()

    async def pages(self, session: aiohttp.ClientSession) -> AsyncGenerator[HttpResponse, None]:
        """Send the poll's requests in order, yielding each page's response."""
        paginator = self.paginator()
        request = paginator.init_request(self.request)
        while True:
            response = await self._send(session, request)
            yield response
            paginator.update_state(response)
            if not paginator.has_next_page:
                return
            request = paginator.update_request(request)

    async def _send(self, session: aiohttp.ClientSession, request: HttpRequest) -> HttpResponse:
        """One logical request through the auth flow (httpx's ``_send_handling_auth``)."""
        flow = self.auth.auth_flow(request)
        try:
            sent = next(flow)
            while True:
                response = await fetch(session, sent)
                try:
                    sent = flow.send(response)
                except StopIteration:
                    return response
        finally:
            flow.close()


def poll_step(options: PollingHttpOptions, env: Mapping[str, str]) -> PollStep:
    """A table's poll step: its request, its ``headers`` as :class:`StaticHeaders`, one page.

    Raises :class:`~arroyo_lite.errors.FatalSourceError` (``Environment variable NAME not
    found``) when a header names an unset variable: no retry can fix that.
    """
    request = HttpRequest(
        method=options.method,
        url=options.endpoint,
        headers=(),
        # Sent verbatim, and without an automatic Content-Type (as Arroyo): see fetch().
        body=options.body.encode("utf-8") if options.body is not None else None,
        timeout_s=options.timeout_ms / 1000.0,
        max_body_bytes=options.max_body_bytes,
        # A password in the endpoint's userinfo is a credential too.
        secrets=Secrets.of([url_password(options.endpoint) or ""]),
    )
    return PollStep(request, StaticHeaders.from_templates(options.headers, env))
