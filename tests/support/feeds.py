"""Stand-ins for APIs that wrap their records and overlap from poll to poll.

* ``/usgs``: the USGS earthquake feed's GeoJSON contract (``FeatureCollection`` with
  ``metadata.generated`` changing on every response, ``features`` newest first, each with
  ``id``, ``properties.mag/place/time/updated`` and a ``geometry`` point, then ``bbox``).
  The feed shows the quakes in ``state.window`` (a slice of ``state.quakes``), so
  consecutive polls overlap the way "the last hour" does; ``revise`` changes a magnitude.
* ``/wrapped``: ``{"data": [...], "next": ...}`` with ``n`` records (``?n=``), or a body
  given verbatim in ``state.body``.

Each app holds its mutable state in ``app[STATE]``, changed by the test between polls.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

STATE: web.AppKey[FeedState] = web.AppKey("feed_state")


@dataclass
class Quake:
    id: str
    mag: float
    time_ms: int
    place: str = "10 km NE of Ridgecrest, CA"
    updated_ms: int = 0


@dataclass
class FeedState:
    quakes: list[Quake] = field(default_factory=list)
    window: tuple[int, int] = (0, 0)
    body: bytes | None = None
    generated_ms: int = 1_700_000_000_000
    hits: int = 0
    #: Extra response headers of the next answers.
    headers: dict[str, str] = field(default_factory=dict)
    #: When set, every answer first moves the window this many quakes on (a feed that
    #: advances with time, here with each request).
    slide: int = 0

    def revise(self, quake_id: str, mag: float) -> None:
        for quake in self.quakes:
            if quake.id == quake_id:
                quake.mag = mag
                quake.updated_ms += 60_000


def quakes(n: int) -> list[Quake]:
    return [Quake(f"ci{40000000 + i}", round(1.0 + (i % 40) / 10, 1), 1_700_000_000_000 + i * 1000)
            for i in range(n)]  # fmt: skip


def feature(q: Quake) -> dict[str, Any]:
    return {
        "type": "Feature",
        "properties": {
            "mag": q.mag, "place": q.place, "time": q.time_ms,
            "updated": q.time_ms + q.updated_ms, "tz": None, "url": f"https://eq.example/{q.id}",
            "status": "automatic", "tsunami": 0, "sig": 12, "net": "ci", "code": q.id[2:],
            "magType": "ml", "type": "earthquake", "title": f"M {q.mag} - {q.place}",
        },
        "geometry": {"type": "Point", "coordinates": [-117.6, 35.7, 7.2]},
        "id": q.id,
    }  # fmt: skip


async def usgs(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.hits += 1
    state.generated_ms += 60_000
    if state.slide:
        lo, hi = state.window
        state.window = (lo + state.slide, hi + state.slide)
    lo, hi = state.window
    shown = list(reversed(state.quakes[lo:hi]))  # newest first, as USGS sorts
    body = {
        "type": "FeatureCollection",
        "metadata": {
            "generated": state.generated_ms, "url": str(request.url),
            "title": "USGS All Earthquakes, Past Hour", "status": 200, "api": "1.10.3",
            "count": len(shown),
        },
        "features": [feature(q) for q in shown],
        "bbox": [-180.0, -90.0, 0.0, 180.0, 90.0, 700.0],
    }  # fmt: skip
    return web.json_response(body, headers=state.headers)


async def wrapped(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.hits += 1
    if state.body is not None:
        return web.Response(body=state.body, content_type="application/json",
                            headers=state.headers)  # fmt: skip
    n = int(request.query.get("n", "3"))
    data = [{"id": i, "name": f"item-{i}", "tags": {"k": i % 3}} for i in range(n)]
    text = json.dumps({"data": data, "next": None, "total": n})
    return web.Response(text=text, content_type="application/json", headers=state.headers)


def make_feed_app(state: FeedState | None = None) -> web.Application:
    app = web.Application()
    app[STATE] = state or FeedState()
    app.router.add_get("/usgs", usgs)
    app.router.add_get("/wrapped", wrapped)
    return app
