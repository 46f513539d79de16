"""Push endpoints of the demo API: stand-ins that speak the protocols of real public streams.

``GET /v2/stream/recentchange`` (Server-Sent Events, as Wikimedia EventStreams)
    Wiki edits as ``event: message`` with a JSON ``id`` (topic, partition, offset) and a
    recentchange object as data (``type``, ``title``, ``user``, ``bot``, ``wiki``,
    ``server_name``, ``length: {old, new}``, ``meta: {dt, domain, ...}``). A comment ``:ok``
    opens the stream; ``Last-Event-ID`` resumes after the offset it names. ``?rate=`` sets
    events per second (default 20); ``?limit=N`` closes the stream after ``N`` events.
``GET /api/v1/streaming/public`` (Server-Sent Events, as Mastodon's streaming API)
    ``event: update`` with a status JSON (``id``, ``content``, ``account``, ``tags: [{name,
    url}]``), now and then ``event: delete`` with a status id, and ``:thump`` heartbeats.
    Same ``?rate=`` and ``?limit=``.
``GET /subscribe`` (WebSocket, as Bluesky's Jetstream)
    Commit events as JSON text frames: ``{did, time_us, kind: "commit", commit: {rev,
    operation, collection, rkey, record, cid}}``, posts (``app.bsky.feed.post`` with ``text``,
    ``langs`` and hashtag ``facets``) and likes (``app.bsky.feed.like``). Query parameters
    ``wantedCollections`` (repeatable) filter; ``requireHello=true`` sends nothing until the
    client's first ``{"type": "options_update", "payload": {"wantedCollections": [...]}}``
    message, which (as in Jetstream) also replaces the filter. ``?rate=`` and ``?limit=``.
``GET /ws/app`` (WebSocket, as firesky.tv's feed)
    Binary frames holding CBOR: ``{"info": {"post": {"text", "facets": [{"features":
    [{"tag"}]}]}}}`` (what ``planner/bluesky_trends.sql`` of Arroyo's corpus reads with
    ``cbor_to_json``).

Every generator is seeded per connection, so a stream's content depends only on its position.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import random
from collections.abc import Iterator
from typing import Any

import orjson
from aiohttp import WSMsgType, web

WIKIS = (
    ("enwiki", "en.wikipedia.org"),
    ("dewiki", "de.wikipedia.org"),
    ("frwiki", "fr.wikipedia.org"),
    ("wikidatawiki", "www.wikidata.org"),
    ("commonswiki", "commons.wikimedia.org"),
)
TITLES = ("Stream processing", "Apache Arrow", "DuckDB", "Server-sent events", "WebSocket",
          "Rust (programming language)", "Lisbon", "Oslo", "Nairobi", "Denver")  # fmt: skip
USERS = ("Alice", "Bob", "Carol", "Dave", "EditBot", "Erin", "Frank", "ArchiveBot")
CHANGE_TYPES = ("edit", "edit", "edit", "new", "log", "categorize")
TAGS = ("python", "rust", "sql", "streaming", "duckdb", "arrow", "opensource", "bluesky")
TOPIC = "eqiad.mediawiki.recentchange"


def _iso(ts: float) -> str:
    return (
        dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def recent_change(offset: int, now: float) -> dict[str, Any]:
    """The recentchange event at ``offset`` (deterministic for an offset, apart from times)."""
    rng = random.Random(offset)
    wiki, domain = rng.choice(WIKIS)
    user = rng.choice(USERS)
    old = rng.randint(100, 50_000)
    return {
        "$schema": "/mediawiki/recentchange/1.0.0",
        "meta": {
            "uri": f"https://{domain}/wiki/{rng.choice(TITLES).replace(' ', '_')}",
            "id": f"00000000-0000-4000-8000-{offset:012d}",
            "dt": _iso(now),
            "domain": domain,
            "stream": "mediawiki.recentchange",
            "topic": TOPIC,
            "partition": 0,
            "offset": offset,
        },
        "id": 1_500_000_000 + offset,
        "type": rng.choice(CHANGE_TYPES),
        "namespace": rng.choice((0, 0, 0, 1, 2, 14)),
        "title": rng.choice(TITLES),
        "comment": rng.choice(("typo", "copyedit", "added source", "revert", "")),
        "timestamp": int(now),
        "user": user,
        "bot": user.endswith("Bot"),
        "minor": rng.random() < 0.3,
        "length": {"old": old, "new": old + rng.randint(-500, 2_000)},
        "server_name": domain,
        "wiki": wiki,
    }


def _offset_after(last_event_id: str | None) -> int:
    """The offset following a Wikimedia-style ``Last-Event-ID`` (0 if none or unreadable)."""
    if not last_event_id:
        return 0
    try:
        ids = orjson.loads(last_event_id)
        return int(ids[0]["offset"]) + 1
    except (orjson.JSONDecodeError, LookupError, TypeError, ValueError):
        return 0


def _rate_and_limit(request: web.Request) -> tuple[float, int | None]:
    try:
        rate = float(request.query.get("rate", "20"))
        limit = int(request.query["limit"]) if "limit" in request.query else None
    except ValueError as e:
        raise web.HTTPBadRequest(text=f"bad rate or limit: {e}") from e
    if not rate > 0:
        raise web.HTTPBadRequest(text="rate must be > 0")
    return rate, limit


def _paced(rate: float, limit: int | None, start: int = 0) -> Iterator[tuple[int, float]]:
    """``(index, delay before it)`` for each event: bursts of up to 50 per 50 ms tick."""
    per_tick = max(1, round(rate * 0.05))
    tick = per_tick / rate
    i = start
    while limit is None or i < start + limit:
        yield i, tick if (i - start) % per_tick == 0 and i != start else 0.0
        i += 1


async def _open_sse(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    return response


async def recentchange(request: web.Request) -> web.StreamResponse:
    """Wikimedia EventStreams' ``/v2/stream/recentchange`` (see the module docstring)."""
    rate, limit = _rate_and_limit(request)
    start = _offset_after(request.headers.get("Last-Event-ID"))
    response = await _open_sse(request)
    with contextlib.suppress(ConnectionResetError):  # the client went away: just stop
        await response.write(b":ok\n\n")
        for offset, delay in _paced(rate, limit, start):
            if delay:
                await asyncio.sleep(delay)
            now = dt.datetime.now(dt.UTC).timestamp()
            event_id = orjson.dumps([{"topic": TOPIC, "partition": 0, "offset": offset}])
            data = orjson.dumps(recent_change(offset, now))
            await response.write(b"event: message\nid: " + event_id + b"\ndata: " + data + b"\n\n")
    return response


def mastodon_status(n: int, now: float) -> dict[str, Any]:
    """A public status with 0-3 hashtags (deterministic for ``n``)."""
    rng = random.Random(n)
    tags = rng.sample(TAGS, rng.randint(0, 3))
    text = " ".join(f"#{t}" for t in tags)
    return {
        "id": str(110_000_000_000_000_000 + n),
        "created_at": _iso(now),
        "content": f"<p>post {n} {text}</p>",
        "account": {"id": str(1000 + n % 17), "acct": f"{rng.choice(USERS).lower()}@demo"},
        "tags": [{"name": t, "url": f"https://mastodon.example/tags/{t}"} for t in tags],
        "language": "en",
    }


async def mastodon_public(request: web.Request) -> web.StreamResponse:
    """Mastodon's ``/api/v1/streaming/public`` (see the module docstring)."""
    rate, limit = _rate_and_limit(request)
    response = await _open_sse(request)
    with contextlib.suppress(ConnectionResetError):  # the client went away: just stop
        for n, delay in _paced(rate, limit):
            if delay:
                await asyncio.sleep(delay)
                await response.write(b":thump\n\n")
            now = dt.datetime.now(dt.UTC).timestamp()
            if n % 10 == 9:
                status_id = 110_000_000_000_000_000 + n
                await response.write(b"event: delete\ndata: %d\n\n" % status_id)
                continue
            data = orjson.dumps(mastodon_status(n, now))
            await response.write(b"event: update\ndata: " + data + b"\n\n")
    return response


def jetstream_event(n: int, time_us: int) -> dict[str, Any]:
    """A Jetstream commit event: a post (two in three) or a like."""
    rng = random.Random(n)
    did = f"did:plc:{rng.getrandbits(60):015x}"
    if n % 3 == 2:
        collection = "app.bsky.feed.like"
        record: dict[str, Any] = {
            "$type": collection,
            "createdAt": _iso(time_us / 1e6),
            "subject": {"uri": f"at://{did}/app.bsky.feed.post/{n - 1:013d}", "cid": "bafy"},
        }
    else:
        collection = "app.bsky.feed.post"
        tags = rng.sample(TAGS, rng.randint(0, 2))
        record = {
            "$type": collection,
            "createdAt": _iso(time_us / 1e6),
            "langs": [rng.choice(("en", "en", "pt", "ja", "de"))],
            "text": f"post {n} " + " ".join(f"#{t}" for t in tags),
            "facets": [
                {"features": [{"$type": "app.bsky.richtext.facet#tag", "tag": t}]} for t in tags
            ],
        }
    return {
        "did": did,
        "time_us": time_us,
        "kind": "commit",
        "commit": {
            "rev": f"3l{n:011d}",
            "operation": "create",
            "collection": collection,
            "rkey": f"{n:013d}",
            "record": record,
            "cid": f"bafyrei{n:020d}",
        },
    }


async def jetstream(request: web.Request) -> web.WebSocketResponse:
    """Bluesky Jetstream's ``/subscribe`` (see the module docstring)."""
    rate, limit = _rate_and_limit(request)
    wanted = set(request.query.getall("wantedCollections", []))
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    hello = asyncio.Event()

    async def read_options() -> None:
        async for message in ws:
            if message.type is not WSMsgType.TEXT:
                continue
            try:
                update = orjson.loads(message.data)
                if update.get("type") == "options_update":
                    wanted.clear()
                    wanted.update(update.get("payload", {}).get("wantedCollections", []))
            except (orjson.JSONDecodeError, AttributeError):
                pass  # Jetstream ignores what it cannot read
            hello.set()

    reader = asyncio.ensure_future(read_options())
    try:
        if request.query.get("requireHello") == "true":
            await hello.wait()
        base_us = int(dt.datetime.now(dt.UTC).timestamp() * 1e6)
        for n, delay in _paced(rate, limit):
            if delay:
                await asyncio.sleep(delay)
            event = jetstream_event(n, base_us + n * 1000)
            if wanted and event["commit"]["collection"] not in wanted:
                continue
            if ws.closed:
                break
            await ws.send_str(orjson.dumps(event).decode())  # Jetstream sends text frames
        await ws.close()
    except ConnectionResetError:
        pass  # the client went away
    finally:
        reader.cancel()
    return ws


def firesky_message(n: int) -> bytes:
    """A firesky.tv-style message: CBOR of ``{"info": {"post": {...}}}``."""
    rng = random.Random(n)
    tags = rng.sample(TAGS, rng.randint(0, 2))
    post = {
        "text": f"post {n}",
        "facets": [{"features": [{"tag": t}]} for t in tags],
    }
    return cbor_encode({"info": {"post": post}, "seq": n})


async def firesky(request: web.Request) -> web.WebSocketResponse:
    """firesky.tv's ``/ws/app`` (see the module docstring)."""
    rate, limit = _rate_and_limit(request)
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    with contextlib.suppress(ConnectionResetError):  # the client went away: just stop
        for n, delay in _paced(rate, limit):
            if delay:
                await asyncio.sleep(delay)
            if ws.closed:
                break
            await ws.send_bytes(firesky_message(n))
        await ws.close()
    return ws


def cbor_encode(value: Any) -> bytes:
    """Minimal CBOR (RFC 8949) for the demo: maps, arrays, text, ints, bools, null, floats."""
    import struct

    def head(major: int, n: int) -> bytes:
        if n < 24:
            return bytes([major << 5 | n])
        for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
            if n < 1 << (8 * size):
                return bytes([major << 5 | info]) + n.to_bytes(size, "big")
        raise ValueError("integer too large for CBOR")

    if value is None:
        return b"\xf6"
    if value is True or value is False:
        return b"\xf5" if value else b"\xf4"
    if isinstance(value, int):
        return head(0, value) if value >= 0 else head(1, -1 - value)
    if isinstance(value, float):
        return b"\xfb" + struct.pack(">d", value)
    if isinstance(value, str):
        raw = value.encode()
        return head(3, len(raw)) + raw
    if isinstance(value, bytes):
        return head(2, len(value)) + value
    if isinstance(value, list | tuple):
        return head(4, len(value)) + b"".join(cbor_encode(v) for v in value)
    if isinstance(value, dict):
        items = b"".join(cbor_encode(k) + cbor_encode(v) for k, v in value.items())
        return head(5, len(value)) + items
    raise TypeError(f"cannot encode {type(value).__name__} as CBOR")


def add_stream_routes(app: web.Application) -> None:
    """Register the push endpoints on the demo ``app``."""
    app.router.add_get("/v2/stream/recentchange", recentchange)
    app.router.add_get("/api/v1/streaming/public", mastodon_public)
    app.router.add_get("/subscribe", jetstream)
    app.router.add_get("/ws/app", firesky)


#: Lines for the demo index (path -> what it is).
STREAM_ENDPOINTS = {
    "/v2/stream/recentchange": "SSE: Wikimedia-style recent changes (Last-Event-ID resumes)",
    "/api/v1/streaming/public": "SSE: Mastodon-style public timeline (update/delete events)",
    "/subscribe": "WebSocket: Jetstream-style Bluesky commits (wantedCollections, options_update)",
    "/ws/app": "WebSocket: firesky-style CBOR binary frames",
}
