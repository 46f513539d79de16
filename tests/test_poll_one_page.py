"""A one-page poll's short path (``PollingHttpOperator._one_page``, issue 16 item 1) behaves as
the general path does.

Two tables poll the same scripted answers from a real aiohttp server on 127.0.0.1 on the
system clock (so small bodies take the deferred decode): one without pagination (the short
path), one with ``pagination.type = 'header_link'`` whose answers carry no next link (the
general path, one page each time). The script covers a small body with an ``ETag``, the 304
answering it, a body too big to decode inline, a 5xx, a 404, a body with a bad record
(dropped) and one without validators. After every poll both tables must have made the same
requests (conditional headers included) and show the same status and rows.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from aiohttp import web

from arroyo_lite.clock import SystemClock
from arroyo_lite.config import BadData, Format
from arroyo_lite.connectors.polling_http.operator import OFFLOAD_BYTES, PollingHttpOperator
from tests.support.http_app import wait_until
from tests.support.polling import ID_NAME, RunningSource, polling_table

pytestmark = pytest.mark.timeout(60)

BIG = orjson.dumps([{"id": i, "name": f"row {i}"} for i in range(30_000)])
SCRIPT: list[tuple[int, bytes, dict[str, str]]] = [
    (200, b'{"id": 1, "name": "a"}', {"ETag": '"e1"'}),
    (304, b"", {"ETag": '"e1"'}),
    (200, BIG, {"ETag": '"e2"'}),
    (500, b"oops", {}),
    (404, b"gone", {}),
    (200, b'[{"id": 2, "name": "b"}, {"id": "bad"}]', {}),
    (200, b'{"id": 3, "name": "c"}', {}),
]
AFTER = (200, b'{"id": 9, "name": "z"}', {})


class Observed(PollingHttpOperator):
    """Keeps the status as each poll starts (every earlier poll's outcome taken in full)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.seen: list[tuple[Any, ...]] = []

    def poll_started(self, due: float, started: float) -> None:
        s = self.status
        self.seen.append(
            (
                s.polls, s.failures, s.consecutive_failures, s.rows, s.bytes, s.dropped_rows,
                s.unchanged_polls, s.last_status_code, s.last_error, s.extra.get("pages"),
            )
        )  # fmt: skip


async def test_the_short_path_is_the_general_path(aiohttp_server: Any) -> None:
    assert len(BIG) > OFFLOAD_BYTES
    requests: dict[str, list[str | None]] = {"short": [], "general": []}

    async def answer(request: web.Request) -> web.Response:
        sent = requests[request.match_info["which"]]
        sent.append(request.headers.get("If-None-Match"))
        status, body, headers = SCRIPT[len(sent) - 1] if len(sent) <= len(SCRIPT) else AFTER
        kind = {"Content-Type": "application/json"} if status == 200 else {}
        return web.Response(status=status, body=body, headers={**headers, **kind})

    app = web.Application()
    app.router.add_get("/{which}", answer)
    server = await aiohttp_server(app)
    sources = {}
    for which, paging in (("short", {}), ("general", {"pagination_type": "header_link"})):
        config = polling_table(
            str(server.make_url(f"/{which}")),
            name=which,
            columns=ID_NAME,
            fmt=Format.JSON,
            bad_data=BadData.DROP,
            poll_interval_ms=20,
            max_backoff_ms=20,
            **paging,
        )
        sources[which] = RunningSource(config, clock=SystemClock(), operator_class=Observed)
    short, general = sources["short"], sources["general"]
    polls = len(SCRIPT) + 2
    async with short, general:
        observed = [src.operator for src in (short, general)]
        assert all(isinstance(o, Observed) for o in observed)
        await wait_until(
            lambda: all(len(o.seen) > polls for o in observed),  # type: ignore[attr-defined]
            what="both tables through the script",
        )
    assert short.operator._step.single_page and not general.operator._step.single_page
    seen_short, seen_general = short.operator.seen[:polls], general.operator.seen[:polls]
    assert seen_short == seen_general
    assert requests["short"][:polls] == requests["general"][:polls]
    assert requests["short"][:3] == [None, '"e1"', '"e1"']
    rows = seen_short[-1][3]
    assert short.rows()[:rows] == general.rows()[:rows]
    assert short.rows()[0] == {"id": 1, "name": "a"} and rows == 1 + 30_000 + 1 + 1 + 1
    # The failures and the bad record were seen as such (the script was not skipped).
    assert seen_short[-1][1] == 2 and seen_short[-1][5] == 1 and seen_short[-1][6] == 1
