"""Stand-ins for real APIs in the demo app, each following its published contract, so the
``sql_examples/`` for them run locally.

``GET /github/repos/{owner}/{repo}/issues`` -- GitHub's REST "list repository issues":
    ``per_page`` (default 30, at most 100) and ``page``; newest first; ``Link`` with
    ``next``/``last``/``prev``/``first``; a weak ``ETag`` per page and ``304`` on a matching
    ``If-None-Match`` (not counted against the budget, as GitHub does); ``X-RateLimit-Limit``,
    ``-Remaining``, ``-Used``, ``-Reset`` (epoch seconds) and ``-Resource: core``; a spent budget
    answers ``403`` with ``{"message": "API rate limit exceeded ...", "documentation_url"}``.
    With ``Authorization: Bearer|token <any>`` the budget is :attr:`GitHubState.limit` per
    :attr:`GitHubState.window_s`; without, a tenth of it. A new issue opens every
    :attr:`GitHubState.open_every_s` seconds.
``GET /stripe/v1/charges`` -- Stripe's list API: ``Authorization: Bearer sk_test_...`` (or
    Basic with the key as user name), else 401 with Stripe's error object; ``limit`` (1-100,
    default 10), ``starting_after`` (an object id; unknown: 400 ``resource_missing``),
    ``created[gt|gte|lt|lte]`` (epoch seconds); newest first; ``{"object": "list", "url",
    "has_more", "data": [charge, ...]}``. A new charge every :attr:`StripeState.every_s`.
``GET /fdsnws/event/1/query`` -- the USGS FDSN event service: ``format=geojson``,
    ``starttime``/``endtime`` (ISO 8601, UTC; default the last 30 days up to now),
    ``orderby=time`` (default, newest first) or ``time-asc``; a GeoJSON FeatureCollection with
    ``metadata.count``; more than 20,000 events matching is a 400, as USGS answers. One
    event every 2 s of wall-clock time (ids ``dm<n>``), so consecutive windows never overlap.

The OAuth2 token endpoint and its protected resource are in :mod:`arroyo_lite.demo.oauth`.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import math
import time
from dataclasses import dataclass, field

import orjson
from aiohttp import web
from yarl import URL

GITHUB_DOCS = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"
#: Seconds between two demo quakes.
QUAKE_EVERY_S = 2
#: USGS' most events per query.
USGS_SEARCH_LIMIT = 20_000


@dataclass
class GitHubState:
    """The demo repository's issues and the rate-limit budget of its API."""

    limit: int = 60
    window_s: int = 60
    open_every_s: float = 5.0
    initial_issues: int = 45
    started: float = field(default_factory=time.time)
    #: Requests counted per (window start, authenticated).
    used: dict[tuple[int, bool], int] = field(default_factory=dict)
    requests: int = 0
    not_modified: int = 0
    rate_limited: int = 0


@dataclass
class StripeState:
    started: float = field(default_factory=time.time)
    initial_charges: int = 25
    #: Seconds between two new charges.
    every_s: float = 2.0
    requests: int = 0


GITHUB = web.AppKey("github", GitHubState)
STRIPE = web.AppKey("stripe", StripeState)


def _iso(epoch: float) -> str:
    return dt.datetime.fromtimestamp(int(epoch), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _issue(state: GitHubState, owner: str, repo: str, number: int) -> dict[str, object]:
    opened = state.started + (number - state.initial_issues) * state.open_every_s
    labels = [{"name": name} for name in ("bug", "enhancement", "docs") if number % 3 == 0]
    return {
        "id": 1_000_000 + number,
        "number": number,
        "title": f"Issue {number}: {('crash on', 'support for', 'document')[number % 3]} "
        f"{('windows', 'joins', 'sinks', 'UDFs')[number % 4]}",
        "state": "open",
        "user": {"login": f"user{number % 11}"},
        "labels": labels[:1],
        "comments": number % 5,
        "html_url": f"https://github.com/{owner}/{repo}/issues/{number}",
        "created_at": _iso(opened),
        "updated_at": _iso(opened),
    }


def _github_budget(
    state: GitHubState, authenticated: bool, now: float, count: bool
) -> tuple[dict[str, str], bool]:
    """The rate-limit headers after this request, and whether the budget was already spent."""
    window = int(now // state.window_s) * state.window_s
    limit = state.limit if authenticated else max(1, state.limit // 10)
    key = (window, authenticated)
    used = state.used.get(key, 0)
    spent = used >= limit
    if count and not spent:
        used = state.used[key] = used + 1
    headers = {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(limit - used),
        "X-RateLimit-Used": str(used),
        "X-RateLimit-Reset": str(window + state.window_s),
        "X-RateLimit-Resource": "core",
    }
    return headers, spent


async def github_issues(request: web.Request) -> web.Response:
    state = request.app[GITHUB]
    state.requests += 1
    owner, repo = request.match_info["owner"], request.match_info["repo"]
    now = time.time()
    authorization = request.headers.get("Authorization", "")
    authenticated = authorization.startswith(("Bearer ", "token ")) and len(authorization) > 7
    try:
        per_page = min(max(int(request.query.get("per_page", "30")), 1), 100)
        page = max(int(request.query.get("page", "1")), 1)
    except ValueError:
        return web.json_response({"message": "Invalid request."}, status=422)
    newest = state.initial_issues + int((now - state.started) / state.open_every_s)
    last_page = max(1, math.ceil(newest / per_page))
    first = newest - (page - 1) * per_page
    issues = [_issue(state, owner, repo, n) for n in range(first, max(first - per_page, 0), -1)]
    body = orjson.dumps(issues)
    etag = 'W/"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    match = request.headers.get("If-None-Match")
    unchanged = match is not None and etag in [t.strip() for t in match.split(",")]
    headers, spent = _github_budget(state, authenticated, now, count=not unchanged)
    if spent:
        state.rate_limited += 1
        message = {
            "message": "API rate limit exceeded for user ID 1." if authenticated
            else "API rate limit exceeded for 127.0.0.1.",
            "documentation_url": GITHUB_DOCS,
        }  # fmt: skip
        return web.json_response(message, status=403, headers=headers)
    if unchanged:
        state.not_modified += 1
        return web.Response(status=304, headers={**headers, "ETag": etag})

    def link(to: int) -> str:
        return str(request.url.update_query({"per_page": str(per_page), "page": str(to)}))

    links = []
    if page < last_page:
        links += [f'<{link(page + 1)}>; rel="next"', f'<{link(last_page)}>; rel="last"']
    if page > 1:
        links += [f'<{link(page - 1)}>; rel="prev"', f'<{link(1)}>; rel="first"']
    if links:
        headers["Link"] = ", ".join(links)
    headers["ETag"] = etag
    return web.Response(body=body, content_type="application/json", headers=headers)


def _stripe_error(status: int, kind: str, message: str, **extra: str) -> web.Response:
    return web.json_response({"error": {"type": kind, "message": message, **extra}}, status=status)


def _stripe_key(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return header[7:]
    if header.startswith("Basic "):
        try:
            return base64.b64decode(header[6:]).decode().partition(":")[0]
        except (ValueError, UnicodeDecodeError):
            return None
    return None


def _charge(state: StripeState, n: int) -> dict[str, object]:
    return {
        "id": f"ch_demo{n:08d}",
        "object": "charge",
        "amount": 500 + (n * 7919) % 20_000,
        "currency": ("usd", "eur", "gbp")[n % 3],
        "status": "failed" if n % 10 == 0 else "succeeded",
        "created": int(state.started + (n - state.initial_charges) * state.every_s),
        "description": f"Order #{10_000 + n}",
    }


async def stripe_charges(request: web.Request) -> web.Response:
    state = request.app[STRIPE]
    state.requests += 1
    key = _stripe_key(request)
    if not key or not key.startswith(("sk_test_", "sk_live_", "rk_test_", "rk_live_")):
        return _stripe_error(
            401, "invalid_request_error",
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth "
            "(e.g. 'Authorization: Bearer YOUR_SECRET_KEY')."
            if not key else f"Invalid API Key provided: {key[:8]}****",
        )  # fmt: skip
    q = request.query
    try:
        limit = int(q.get("limit", "10"))
        bounds = {op: int(q[f"created[{op}]"]) for op in ("gt", "gte", "lt", "lte")
                  if f"created[{op}]" in q}  # fmt: skip
    except ValueError:
        return _stripe_error(400, "invalid_request_error", "Invalid integer", param="limit")
    if not 1 <= limit <= 100:
        return _stripe_error(
            400, "invalid_request_error",
            "This value must be greater than or equal to 1 and less than or equal to 100.",
            param="limit",
        )  # fmt: skip
    newest = state.initial_charges + int((time.time() - state.started) / state.every_s)
    charges = [_charge(state, n) for n in range(newest, 0, -1)]

    def inside(created: int) -> bool:
        return (
            created > bounds.get("gt", -1) and created >= bounds.get("gte", -1)
            and created < bounds.get("lt", 1 << 62) and created <= bounds.get("lte", 1 << 62)
        )  # fmt: skip

    charges = [c for c in charges if inside(int(c["created"]))]  # type: ignore[call-overload]
    after = q.get("starting_after")
    if after is not None:
        ids = [c["id"] for c in charges]
        if after not in ids:
            if not after.startswith("ch_demo") or not after[7:].isdigit():
                return _stripe_error(
                    400, "invalid_request_error", f"No such charge: '{after}'",
                    code="resource_missing", param="starting_after",
                )  # fmt: skip
            # A real id outside the filter: list from the one older than it.
            charges = [c for c in charges if str(c["id"]) < after]
        else:
            charges = charges[ids.index(after) + 1 :]
    body = {
        "object": "list",
        "url": "/v1/charges",
        "has_more": len(charges) > limit,
        "data": charges[:limit],
    }
    return web.json_response(body, headers={"Request-Id": f"req_demo{state.requests}"})


def _parse_time(text: str) -> float:
    """An FDSN time: ISO 8601, UTC unless it says otherwise (a date alone is midnight)."""
    when = dt.datetime.fromisoformat(text.strip().replace(" ", "T"))
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.timestamp()


def _quake(n: int) -> dict[str, object]:
    at_ms = n * QUAKE_EVERY_S * 1000
    lat, lon = ((n * 7.31) % 140) - 70, ((n * 13.7) % 360) - 180
    return {
        "type": "Feature",
        "id": f"dm{n}",
        "properties": {
            "mag": round(1 + (n * 0.37) % 5, 2),
            "place": f"{(n * 17) % 90 + 1} km of Demo Ridge",
            "time": at_ms,
            "updated": at_ms + 60_000,
            "type": "earthquake",
            "url": f"https://earthquake.usgs.gov/earthquakes/eventpage/dm{n}",
        },
        "geometry": {"type": "Point", "coordinates": [round(lon, 3), round(lat, 3), 10.0]},
    }


async def fdsn_query(request: web.Request) -> web.Response:
    q = request.query
    if q.get("format", "quakeml") != "geojson":
        return web.Response(status=400, text="Error 400: Bad Request\n\nonly format=geojson here\n")
    now = time.time()
    try:
        end = _parse_time(q["endtime"]) if "endtime" in q else now
        start = _parse_time(q["starttime"]) if "starttime" in q else end - 30 * 86400
    except ValueError as e:
        return web.Response(status=400, text=f"Error 400: Bad Request\n\nBad time value: {e}\n")
    end = min(end, now)
    # Events at n * QUAKE_EVERY_S seconds: those with start <= time <= end.
    first, last = math.ceil(start / QUAKE_EVERY_S), math.floor(end / QUAKE_EVERY_S)
    count = max(0, last - first + 1)
    if count > USGS_SEARCH_LIMIT:
        return web.Response(
            status=400,
            text=f"Error 400: Bad Request\n\n{count} matching events exceeds search limit of "
            f"{USGS_SEARCH_LIMIT}. Modify the search to match fewer events.\n",
        )
    numbers = range(first, last + 1)
    ordered = numbers if q.get("orderby") == "time-asc" else reversed(numbers)
    body = {
        "type": "FeatureCollection",
        "metadata": {
            "generated": int(now * 1000),
            "url": str(URL(str(request.url))),
            "title": "USGS Earthquakes (demo)",
            "status": 200,
            "api": "1.14.1",
            "count": count,
        },
        "features": [_quake(n) for n in ordered],
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


#: The index lines of these endpoints (``GET /``).
API_ENDPOINTS = {
    "/github/repos/{owner}/{repo}/issues": "GitHub-like issues: Link pages, ETag, X-RateLimit-*",
    "/stripe/v1/charges": "Stripe-like list: has_more + starting_after, Bearer sk_test_...",
    "/oauth/token": "OAuth2 client credentials token endpoint (RFC 6749 section 4.4)",
    "/oauth/api/orders": "a resource that wants a bearer token from /oauth/token",
    "/fdsnws/event/1/query": "USGS-like event query: starttime/endtime window, GeoJSON",
}


def add_api_routes(app: web.Application) -> None:
    """The GitHub, Stripe and USGS stand-ins (their state under ``app[GITHUB]`` etc.)."""
    app[GITHUB] = GitHubState()
    app[STRIPE] = StripeState()
    app.router.add_get("/github/repos/{owner}/{repo}/issues", github_issues)
    app.router.add_get("/stripe/v1/charges", stripe_charges)
    app.router.add_get("/fdsnws/event/1/query", fdsn_query)
