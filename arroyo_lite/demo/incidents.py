"""The demo API's incident list: a collection polled whole (``emit_behavior = 'snapshot'``).

``GET /incidents`` answers like PagerDuty's ``GET /incidents`` (its "classic pagination"
contract): ``{"incidents": [...], "limit": L, "offset": O, "more": bool, "total": N}``,
``?offset=`` and ``?limit=`` (default 25, at most 100) page through the *open* incidents
(``triggered`` or ``acknowledged``), oldest first. Each incident is ``{id, incident_number,
title, status, urgency, service: {id, summary}, created_at, updated_at}``.

The incidents evolve one step per poll: a request with ``offset`` 0 (the first page of a
poll) moves the world on, later pages read the same state, so all pages of one poll are one
consistent snapshot. Each step, seeded: an open incident may be acknowledged, an
acknowledged one resolved (it leaves the list), and a new one may be triggered. The state
is in :class:`IncidentBoard`, one per app.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass, field

import orjson
from aiohttp import web

SERVICES = (
    ("PSVC01", "checkout-api"),
    ("PSVC02", "search"),
    ("PSVC03", "payments-gateway"),
    ("PSVC04", "mobile-push"),
)
TROUBLES = (
    "High error rate",
    "Latency above SLO",
    "Disk almost full",
    "Certificate expires soon",
    "Queue backlog growing",
)
#: The demo clock starts here and moves one minute per step.
EPOCH = dt.datetime(2026, 1, 5, 9, 0, tzinfo=dt.UTC)
DEFAULT_LIMIT, MAX_LIMIT = 25, 100


def _iso(minute: int) -> str:
    return (EPOCH + dt.timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")


@dataclass
class IncidentBoard:
    """The open incidents; :meth:`step` moves them on by one poll."""

    seed: int | None = None
    #: Open incidents at the start (triggered at once).
    initial: int = 6
    steps: int = 0
    numbers: int = 0
    open: dict[str, dict[str, object]] = field(default_factory=dict)
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        for _ in range(self.initial):
            self._trigger()

    def _trigger(self) -> None:
        self.numbers += 1
        service_id, service = self.rng.choice(SERVICES)
        incident_id = f"Q{self.numbers:04d}DEMO"
        now = _iso(self.steps)
        self.open[incident_id] = {
            "id": incident_id,
            "incident_number": self.numbers,
            "title": f"{self.rng.choice(TROUBLES)} on {service}",
            "status": "triggered",
            "urgency": "high" if self.rng.random() < 0.4 else "low",
            "service": {"id": service_id, "summary": service},
            "created_at": now,
            "updated_at": now,
        }

    def step(self) -> None:
        """One poll's worth of change."""
        self.steps += 1
        now = _iso(self.steps)
        for incident in list(self.open.values()):
            roll = self.rng.random()
            if incident["status"] == "triggered" and roll < 0.3:
                incident.update(status="acknowledged", updated_at=now)
            elif incident["status"] == "acknowledged" and roll < 0.25:
                del self.open[str(incident["id"])]  # resolved: no longer listed
        if self.rng.random() < 0.5:
            self._trigger()

    def page(self, offset: int, limit: int) -> dict[str, object]:
        listed = list(self.open.values())
        chunk = listed[offset : offset + limit]
        return {
            "incidents": chunk,
            "limit": limit,
            "offset": offset,
            "more": offset + len(chunk) < len(listed),
            "total": len(listed),
        }


BOARD = web.AppKey("incident_board", IncidentBoard)


def _int(request: web.Request, name: str, default: int) -> int | None:
    text = request.query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        return None
    return value if value >= 0 else None


async def incidents(request: web.Request) -> web.Response:
    board = request.app[BOARD]
    offset = _int(request, "offset", 0)
    limit = _int(request, "limit", DEFAULT_LIMIT)
    if offset is None or limit is None or limit == 0:
        error = {"error": {"message": "Invalid Input Provided", "code": 2001}}
        return web.json_response(error, status=400)
    if offset == 0:
        board.step()
    body = board.page(offset, min(limit, MAX_LIMIT))
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def add_incident_routes(app: web.Application, *, seed: int | None = None) -> None:
    """Register ``/incidents`` on the demo ``app`` (its board seeded with ``seed``)."""
    app[BOARD] = IncidentBoard(seed=seed)
    app.router.add_get("/incidents", incidents)


#: Lines for the demo index (path -> what it is).
INCIDENT_ENDPOINTS = {
    "/incidents": "PagerDuty-style open incidents (offset/limit pages); changes every poll",
}
