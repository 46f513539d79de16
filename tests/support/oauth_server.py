"""An OAuth2 authorization server's token endpoint (RFC 6749 section 4.4, client credentials
grant) and a protected resource that accepts its bearer tokens (RFC 6750), on aiohttp.

Token endpoint ``POST /oauth/token``, as the RFC requires:
* the request is ``application/x-www-form-urlencoded`` with ``grant_type=client_credentials``
  and an optional ``scope``; other methods get 405, other content types ``invalid_request``;
* the client authenticates with HTTP Basic (section 2.3.1: id and secret form-urlencoded,
  then Basic-encoded) or with ``client_id``/``client_secret`` in the body, not both;
* success (section 5.1): 200, JSON ``{"access_token", "token_type": "Bearer", "expires_in",
  "scope"?}`` with ``Cache-Control: no-store`` and ``Pragma: no-cache``;
* errors (section 5.2): 400 JSON ``{"error": "invalid_request" | "unsupported_grant_type" |
  "invalid_scope"}``, and ``invalid_client`` as 401 with ``WWW-Authenticate: Basic`` when
  the client used Basic (400 otherwise).

Resource ``GET /api/items``: 200 with two items for ``Authorization: Bearer <live token>``,
else 401 with ``WWW-Authenticate: Bearer error="invalid_token"`` (RFC 6750 section 3).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass, field
from urllib.parse import unquote

from aiohttp import web

CLIENT_ID = "arroyo-client"
CLIENT_SECRET = "cl1ent-Secret-Value-42"
SCOPES = frozenset({"read", "write"})


@dataclass
class OAuthState:
    expires_in: int = 3600
    #: Tokens the resource accepts (a test revokes one to make the resource answer 401).
    live: set[str] = field(default_factory=set)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    resource_requests: int = 0


OAUTH = web.AppKey("oauth", OAuthState)


def _error(code: str, status: int = 400, basic: bool = False) -> web.Response:
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    if basic:
        headers["WWW-Authenticate"] = 'Basic realm="token"'
    return web.json_response({"error": code}, status=status, headers=headers)


async def token(request: web.Request) -> web.Response:
    state = request.app[OAUTH]
    if request.method != "POST":
        return web.Response(status=405, headers={"Allow": "POST"})
    if request.content_type != "application/x-www-form-urlencoded":
        return _error("invalid_request")
    form = await request.post()
    state.token_requests.append({k: str(v) for k, v in form.items()})
    header = request.headers.get("Authorization", "")
    basic = header.startswith("Basic ")
    if basic and "client_secret" in form:
        return _error("invalid_request")  # section 2.3: one method per request
    if basic:
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return _error("invalid_client", 401, basic=True)
        client_id, client_secret = unquote(user), unquote(password)
    else:
        client_id = str(form.get("client_id", ""))
        client_secret = str(form.get("client_secret", ""))
    if form.get("grant_type") != "client_credentials":
        return _error("unsupported_grant_type" if "grant_type" in form else "invalid_request")
    if (client_id, client_secret) != (CLIENT_ID, CLIENT_SECRET):
        return _error("invalid_client", 401 if basic else 400, basic=basic)
    scope = str(form.get("scope", ""))
    if scope and not set(scope.split()) <= SCOPES:
        return _error("invalid_scope")
    issued = secrets.token_urlsafe(24)
    state.live.add(issued)
    answer: dict[str, object] = {
        "access_token": issued,
        "token_type": "Bearer",
        "expires_in": state.expires_in,
    }
    if scope:
        answer["scope"] = scope
    return web.json_response(answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


async def items(request: web.Request) -> web.Response:
    state = request.app[OAUTH]
    state.resource_requests += 1
    header = request.headers.get("Authorization", "")
    if not header.startswith("Bearer ") or header[7:] not in state.live:
        return web.Response(
            status=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )
    return web.json_response([{"id": 1}, {"id": 2}])


def make_oauth_app() -> web.Application:
    app = web.Application()
    app[OAUTH] = OAuthState()
    app.router.add_route("*", "/oauth/token", token)
    app.router.add_get("/api/items", items)
    return app
