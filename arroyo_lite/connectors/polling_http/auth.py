"""How a ``polling_http`` request is authenticated: small strategies in httpx's ``Auth`` shape.

An :class:`Auth` turns the request a poll wants to send into the requests actually sent:
:meth:`Auth.auth_flow` is a generator that yields a request, receives its response (the
poll step sends it), and may yield more (a token fetch, a retry with fresh credentials)
before returning; the response to the last request yielded is the poll's. This is httpx's
``Auth.auth_flow(request) -> Generator[Request, Response, None]``, so an OAuth strategy is one
more class here. :class:`StaticHeaders`: the table's ``headers`` (and the credentials of
``auth.type`` 'basic', 'bearer' and 'api_key', as a header or a query parameter), with their
``{{ VAR }}`` values substituted once, sent on every request. :class:`ClientCredentials`:
OAuth2 client credentials (RFC 6749 section 4.4), the token fetched by the flow itself (so
``test`` shows the token request), cached until shortly before it expires, shared by every
table with the same credentials, and fetched again after one 401.

2xx responses are sent into the flow; a 401/403 is thrown into it
(:class:`~.http.CredentialsRejectedError`) at the ``yield`` that sent the request, so a
strategy can refresh and send again, or let it end the poll. A failure of a request the
strategy made itself (:meth:`Auth.is_auth_request`) is reported as ``auth failed: ...``.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, replace
from urllib.parse import quote, urlencode

import orjson
from yarl import URL

from arroyo_lite.connectors.polling_http.http import (
    CredentialsRejectedError,
    HttpError,
    HttpRequest,
    HttpResponse,
)
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

    def alone(self, request: HttpRequest) -> HttpRequest | None:
        """The request :meth:`auth_flow` yields for ``request`` when that is its only one
        whatever the answer (it ends after the first response and re-raises what is thrown
        in), so the poll step may send it without driving the generator; ``None`` when the
        flow may send others (a token request, a retry). Overridden together with
        :meth:`auth_flow`."""
        return request if type(self).auth_flow is Auth.auth_flow else None

    def is_auth_request(self, request: HttpRequest) -> bool:
        """Whether ``request`` is one this strategy made for itself (a token request)."""
        return False


class StaticHeaders(Auth):
    """The same headers on every request (values already substituted, kept as secrets).

    The authenticated request is built once per base request and reused: a request derives
    its aiohttp headers, URL and timeout when built, which costs at 1,000 polls/s.
    """

    def __init__(
        self,
        headers: tuple[tuple[str, str], ...],
        secrets: Secrets,
        params: tuple[tuple[str, str], ...] = (),
    ) -> None:
        self.headers = headers
        self.params = params
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
        yield self._authed_for(request)

    def alone(self, request: HttpRequest) -> HttpRequest | None:
        return self._authed_for(request)

    def _authed_for(self, request: HttpRequest) -> HttpRequest:
        if request is not self._base:
            self._base = request
            url = request.url
            if self.params:
                url = str(URL(url).update_query(dict(self.params)))
            self._authed = replace(
                request,
                url=url,
                headers=request.headers + self.headers,
                secrets=request.secrets | self.secrets,
            )
        assert self._authed is not None
        return self._authed


def basic_header(username: str, password: str) -> str:
    """``Basic base64(user:password)`` (RFC 7617)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


#: A token is fetched again this long before it expires (or at half its life if shorter).
REFRESH_MARGIN_S = 30.0


@dataclass
class _Token:
    value: str
    expires_at: float | None  # monotonic seconds; None: no expires_in given


#: Tokens by credentials (token URL, client id, client secret, scope): shared by the tables
#: of a process that use the same ones. Kept in memory only (never in a state file).
_TOKENS: dict[tuple[str, str, str, str], _Token] = {}


class ClientCredentials(Auth):
    """OAuth2 client credentials grant (RFC 6749 section 4.4) with a cached bearer token."""

    def __init__(
        self,
        inner: StaticHeaders,
        *,
        token_url: str,
        client_id: str,
        client_secret: str,
        scope: str | None,
        client_auth: str,
        timeout_s: float,
        secrets: Secrets,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.token_url = token_url
        self.client_id, self.client_secret, self.scope = client_id, client_secret, scope
        self.client_auth = client_auth
        self.timeout_s = timeout_s
        self._credentials = secrets | inner.secrets
        self.secrets = self._credentials
        self.now = now
        self._key = (token_url, client_id, client_secret, scope or "")

    def token_request(self) -> HttpRequest:
        """The form-encoded POST of RFC 6749 section 4.4.2 (client auth per section 2.3.1)."""
        form = {"grant_type": "client_credentials"}
        if self.scope:
            form["scope"] = self.scope
        headers = [
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Accept", "application/json"),
        ]
        if self.client_auth == "basic":
            # 2.3.1: id and secret are form-urlencoded before the Basic encoding.
            user, password = quote(self.client_id, safe=""), quote(self.client_secret, safe="")
            headers.append(("Authorization", basic_header(user, password)))
        else:
            form |= {"client_id": self.client_id, "client_secret": self.client_secret}
        body = urlencode(form)
        secrets = self._credentials | Secrets.of(
            [basic_header(quote(self.client_id, safe=""), quote(self.client_secret, safe=""))
             .removeprefix("Basic "), urlencode({"s": self.client_secret})[2:]]
        )  # fmt: skip
        return HttpRequest(
            "POST", self.token_url, tuple(headers), body.encode(), self.timeout_s,
            64 * 1024, secrets,
        )  # fmt: skip

    def is_auth_request(self, request: HttpRequest) -> bool:
        return request.method == "POST" and request.url == self.token_url and any(
            name == "Content-Type" and value == "application/x-www-form-urlencoded"
            for name, value in request.headers
        )

    def _valid(self) -> _Token | None:
        token = _TOKENS.get(self._key)
        if token is None:
            return None
        if token.expires_at is not None and self.now() >= token.expires_at:
            return None
        return token

    def _take(self, response: HttpResponse) -> _Token:
        """Read a section 5.1 answer: JSON with access_token, token_type, expires_in."""
        try:
            answer = orjson.loads(response.body)
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("access_token"), str):
            raise HttpError("auth failed: the token endpoint's answer has no access_token")
        kind = str(answer.get("token_type", "bearer"))
        if kind.lower() != "bearer":
            raise HttpError(f"auth failed: token_type '{kind}' is not supported (only bearer)")
        expires_in = answer.get("expires_in")
        expires_at = None
        if isinstance(expires_in, int | float) and expires_in > 0:
            margin = min(REFRESH_MARGIN_S, expires_in / 2)
            expires_at = self.now() + expires_in - margin
        token = _Token(answer["access_token"], expires_at)
        _TOKENS[self._key] = token
        return token

    def auth_flow(self, request: HttpRequest) -> AuthFlow:
        token = self._valid()
        fresh = token is None
        if token is None:
            token = self._take((yield self.token_request()))
        try:
            yield self._with(request, token)
        except CredentialsRejectedError:
            if fresh:
                # A token issued for this very request was refused: another one would be
                # too. The rejection is the poll's answer (refreshed once, then reported).
                raise
            # The token may have been revoked or expired early: fetch one once more.
            if _TOKENS.get(self._key) is token:
                del _TOKENS[self._key]
            token = self._take((yield self.token_request()))
            yield self._with(request, token)

    def _with(self, request: HttpRequest, token: _Token) -> HttpRequest:
        """``request`` with the table's headers and the token; the token becomes one of
        :attr:`secrets` (masked in everything the table reports)."""
        self.secrets = self._credentials | Secrets.of([token.value])
        flow = self.inner.auth_flow(request)
        base = next(flow)
        flow.close()
        return replace(
            base,
            headers=(*base.headers, ("Authorization", f"Bearer {token.value}")),
            secrets=base.secrets | self.secrets,
        )
