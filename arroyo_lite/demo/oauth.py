"""An OAuth2 token endpoint (RFC 6749 section 4.4, client credentials) and a protected
resource that accepts its bearer tokens (RFC 6750), for the demo API and the tests.

Token endpoint ``POST /oauth/token``, as the RFC requires:

* the request is ``application/x-www-form-urlencoded`` with ``grant_type=client_credentials``
  and an optional ``scope``; other methods get 405, other content types ``invalid_request``;
* the client authenticates with HTTP Basic (``client_secret_basic``, section 2.3.1: id and
  secret form-urlencoded, then Basic-encoded) or with ``client_id``/``client_secret`` in the
  body (``client_secret_post``), not both;
* success (section 5.1): 200, JSON ``{"access_token", "token_type": "Bearer", "expires_in",
  "scope"?}`` with ``Cache-Control: no-store`` and ``Pragma: no-cache``;
* errors (section 5.2): 400 JSON ``{"error": "invalid_request" | "unsupported_grant_type" |
  "invalid_scope", "error_description"}``, and ``invalid_client`` as 401 with
  ``WWW-Authenticate: Basic`` when the client used Basic (400 otherwise, as 5.2 allows).

Resource ``GET /oauth/api/orders``: 200 with the latest orders (JSON array) for
``Authorization: Bearer <live token>``, else 401 with ``WWW-Authenticate: Bearer
error="invalid_token"`` (RFC 6750 section 3). A token lives ``expires_in`` seconds.
"""

from __future__ import annotations

import base64
import binascii
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import unquote

from aiohttp import web

#: The demo's client credentials (documented in the example that uses them).
DEMO_CLIENT_ID = "demo-client"
DEMO_CLIENT_SECRET = "demo-client-secret"
SCOPES = frozenset({"read", "write", "orders:read"})


@dataclass
class OAuthState:
    """The token endpoint's clients and the tokens it issued."""

    client_id: str = DEMO_CLIENT_ID
    client_secret: str = DEMO_CLIENT_SECRET
    expires_in: int = 3600
    #: Tokens the resource accepts, with their expiry (monotonic seconds); a test revokes one
    #: (``live.pop(token)``) to make the resource answer 401.
    live: dict[str, float] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    resource_requests: int = 0
    started: float = field(default_factory=time.time)


OAUTH = web.AppKey("oauth", OAuthState)
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _error(code: str, description: str, status: int = 400, basic: bool = False) -> web.Response:
    headers = dict(_NO_STORE)
    if basic:
        headers["WWW-Authenticate"] = 'Basic realm="token"'
    body = {"error": code, "error_description": description}
    return web.json_response(body, status=status, headers=headers)


def _basic_credentials(header: str) -> tuple[str, str] | None:
    try:
        user, sep, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (unquote(user), unquote(password)) if sep else None


async def token(request: web.Request) -> web.Response:
    state = request.app[OAUTH]
    if request.method != "POST":
        return web.Response(status=405, headers={"Allow": "POST"})
    if request.content_type != "application/x-www-form-urlencoded":
        return _error("invalid_request", "the body must be application/x-www-form-urlencoded")
    form = await request.post()
    state.token_requests.append({k: str(v) for k, v in form.items()})
    header = request.headers.get("Authorization", "")
    basic = header.startswith("Basic ")
    if basic and "client_secret" in form:
        return _error("invalid_request", "more than one client authentication method")
    if basic:
        credentials = _basic_credentials(header)
        if credentials is None:
            return _error("invalid_client", "malformed Basic credentials", 401, basic=True)
        client_id, client_secret = credentials
    else:
        client_id = str(form.get("client_id", ""))
        client_secret = str(form.get("client_secret", ""))
    if form.get("grant_type") != "client_credentials":
        if "grant_type" in form:
            return _error("unsupported_grant_type", "only client_credentials is supported")
        return _error("invalid_request", "grant_type is missing")
    if (client_id, client_secret) != (state.client_id, state.client_secret):
        return _error("invalid_client", "client authentication failed", 401 if basic else 400,
                      basic=basic)  # fmt: skip
    scope = str(form.get("scope", ""))
    if scope and not set(scope.split()) <= SCOPES:
        return _error("invalid_scope", f"unknown scope; known: {' '.join(sorted(SCOPES))}")
    issued = secrets.token_urlsafe(24)
    state.live[issued] = time.monotonic() + state.expires_in
    answer: dict[str, object] = {
        "access_token": issued,
        "token_type": "Bearer",
        "expires_in": state.expires_in,
    }
    if scope:
        answer["scope"] = scope
    return web.json_response(answer, headers=_NO_STORE)


def bearer_accepted(request: web.Request) -> bool:
    """Whether ``request`` carries a live token of this app's token endpoint."""
    state = request.app[OAUTH]
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        return False
    expires = state.live.get(header[7:])
    return expires is not None and time.monotonic() < expires


def _invalid_token() -> web.Response:
    return web.Response(status=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


async def orders(request: web.Request) -> web.Response:
    """The five latest orders (one more every 2 s since the app started), newest first."""
    state = request.app[OAUTH]
    state.resource_requests += 1
    if not bearer_accepted(request):
        return _invalid_token()
    latest = 20 + int((time.time() - state.started) / 2)
    rows = [
        {"id": n, "customer": f"customer-{n % 7}", "total": round(10 + (n * 37 % 900) / 10, 2),
         "created": int(state.started) + 2 * (n - 20)}
        for n in range(latest, latest - 5, -1)
    ]  # fmt: skip
    return web.json_response(rows)


def add_oauth_routes(app: web.Application, state: OAuthState | None = None) -> None:
    """``/oauth/token`` and ``/oauth/api/orders`` on ``app`` (state under ``app[OAUTH]``)."""
    app[OAUTH] = state or OAuthState()
    app.router.add_route("*", "/oauth/token", token)
    app.router.add_get("/oauth/api/orders", orders)
