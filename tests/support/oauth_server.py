"""The OAuth2 token endpoint of the demo API (:mod:`arroyo_lite.demo.oauth`: RFC 6749 section
4.4, client credentials, both client authentication methods, section 5.2 errors) with test
credentials, and a protected resource ``GET /api/items`` that answers 200 with two items for
a live bearer token, else 401 with ``WWW-Authenticate: Bearer error="invalid_token"``
(RFC 6750 section 3). ``app[OAUTH]`` is the :class:`OAuthState` (tokens issued, requests).
"""

from __future__ import annotations

from aiohttp import web

from arroyo_lite.demo.oauth import OAUTH, OAuthState, add_oauth_routes, bearer_accepted

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "OAUTH", "OAuthState", "make_oauth_app"]

CLIENT_ID = "arroyo-client"
CLIENT_SECRET = "cl1ent-Secret-Value-42"


async def items(request: web.Request) -> web.Response:
    request.app[OAUTH].resource_requests += 1
    if not bearer_accepted(request):
        return web.Response(
            status=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
        )
    return web.json_response([{"id": 1}, {"id": 2}])


def make_oauth_app() -> web.Application:
    app = web.Application()
    add_oauth_routes(app, OAuthState(client_id=CLIENT_ID, client_secret=CLIENT_SECRET))
    app.router.add_get("/api/items", items)
    return app
