"""A stand-in for a paged collection API (a leaderboard, a list of open incidents).

``GET /items?offset=O&limit=L`` answers ``{"items": [...], "offset": O, "more": bool}``
(PagerDuty's classic pagination shape) over ``state.items`` (an ordered ``id -> record``
mapping the test changes between polls). Knobs on :class:`CollectionState`:

* ``staged``: changes (callables) applied at the next poll's first page, so a change never
  lands between the pages of one poll (an API serving consistent snapshots).
* ``fail_offset``: a page at that offset answers ``500`` (a failed page), while set.
* ``bad``: raw JSON text of records appended to every answer's first page (bad data).
* ``on_page``: ``offset -> change``: when a page at that offset is asked for, the change
  runs first, once (a record inserted at the head, or removed, while a client pages: the
  later pages shift). :meth:`CollectionState.insert_head` is such a change.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

STATE: web.AppKey[CollectionState] = web.AppKey("collection_state")


@dataclass
class CollectionState:
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_offset: int | None = None
    bad: str | None = None
    on_page: dict[int, Callable[[], object]] = field(default_factory=dict)
    staged: list[Callable[[], object]] = field(default_factory=list)
    #: Requests, and first-page requests (polls), answered so far.
    hits: int = 0
    polls: int = 0

    def put(self, *records: dict[str, Any]) -> None:
        for record in records:
            self.items[str(record["id"])] = record

    def insert_head(self, *records: dict[str, Any]) -> None:
        """Put ``records`` first in the list."""
        self.items = {**{str(r["id"]): r for r in records}, **self.items}


async def items(request: web.Request) -> web.Response:
    state = request.app[STATE]
    state.hits += 1
    offset = int(request.query.get("offset", "0"))
    limit = int(request.query.get("limit", "100"))
    if offset == 0:
        state.polls += 1
        for change in state.staged:
            change()
        state.staged.clear()
    if state.fail_offset is not None and offset == state.fail_offset:
        return web.json_response({"error": "page unavailable"}, status=500)
    change = state.on_page.pop(offset, None) if offset else None
    if change is not None:
        change()
    listed = list(state.items.values())
    chunk = listed[offset : offset + limit]
    parts = [json.dumps(r) for r in chunk]
    if offset == 0 and state.bad is not None:
        parts.append(state.bad)
    more = "true" if offset + len(chunk) < len(listed) else "false"
    text = f'{{"items": [{", ".join(parts)}], "offset": {offset}, "more": {more}}}'
    return web.Response(text=text, content_type="application/json")


def make_collection_app(state: CollectionState) -> web.Application:
    app = web.Application()
    app[STATE] = state
    app.router.add_get("/items", items)
    return app
