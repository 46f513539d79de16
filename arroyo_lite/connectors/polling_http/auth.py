"""How a ``polling_http`` request is authenticated: small strategies in httpx's ``Auth`` shape.

An :class:`Auth` turns the request a poll wants to send into the requests actually sent:
:meth:`Auth.auth_flow` is a generator that yields a request, receives its response (the
poll step sends it), and may yield more (a token fetch, a retry with fresh credentials)
before returning; the response to the last request yielded is the poll's. This is httpx's
``Auth.auth_flow(request) -> Generator[Request, Response, None]``, so an OAuth strategy is one
more class here. Today's only strategy is :class:`StaticHeaders`: the table's ``headers``,
with their ``{{ VAR }}`` values substituted once, sent on every request.

Responses reach the flow only for 2xx answers today (:func:`.http.fetch` raises on others);
a strategy that must see a 401 changes that in the poll step, not in its callers.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import replace

from arroyo_lite.connectors.polling_http.http import HttpRequest, HttpResponse
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.secrets import MissingVariableError, Secrets, substitute

#: What :meth:`Auth.auth_flow` returns: yields requests, is sent their responses.
AuthFlow = Generator[HttpRequest, HttpResponse, None]


class Auth:
    """An authentication strategy. The default sends the request unchanged.

    ``secrets`` are the credential values it adds, masked in everything reported.
    """

    secrets: Secrets = Secrets()

    def auth_flow(self, request: HttpRequest) -> AuthFlow:
        yield request


class StaticHeaders(Auth):
    """The same headers on every request (values already substituted, kept as secrets).

    The authenticated request is built once per base request and reused: a request derives
    its aiohttp headers, URL and timeout when built, which costs at 1,000 polls/s.
    """

    def __init__(self, headers: tuple[tuple[str, str], ...], secrets: Secrets) -> None:
        self.headers = headers
        self.secrets = secrets
        self._base: HttpRequest | None = None
        self._authed: HttpRequest | None = None

    @classmethod
    def from_templates(
        cls, templates: tuple[tuple[str, str], ...], env: Mapping[str, str]
    ) -> StaticHeaders:
        """Substitute ``{{ VAR }}`` in each header value *after* splitting (a secret may hold
        ``,`` or ``:``). Raises :class:`FatalSourceError` for an unset variable."""
        secrets = Secrets()
        headers: list[tuple[str, str]] = []
        for name, template in templates:
            try:
                value, found = substitute(template, env)
            except MissingVariableError as e:
                raise FatalSourceError(
                    str(e), hint="set the variable and start the table again"
                ) from e
            secrets = secrets | found
            headers.append((name, value))
        return cls(tuple(headers), secrets)

    def auth_flow(self, request: HttpRequest) -> AuthFlow:
        if request is not self._base:
            self._base = request
            self._authed = replace(
                request,
                headers=request.headers + self.headers,
                secrets=request.secrets | self.secrets,
            )
        assert self._authed is not None
        yield self._authed
