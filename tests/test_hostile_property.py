"""Property: arbitrary bytes as response bodies never kill a table under ``bad_data = 'drop'``
(issue 8).

One real session polls one real server on 127.0.0.1 with a table per format and framing
(structured JSON with every kind of column, a virtual column, a JSON column; unstructured
JSON; raw_string; raw_bytes), all with ``bad_data = 'drop'``, plus a control table on a good
endpoint. hypothesis picks each body; after every poll every table must still be running,
its last error one line without a traceback, and the control table must have one more row.
"""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from arroyo_lite import Session
from arroyo_lite.clock import ManualClock
from arroyo_lite.connectors.base import SourceState
from tests.support.threaded_server import serve, wait_for

pytestmark = pytest.mark.timeout(300)

STRUCTURED = (
    "id BIGINT NOT NULL, j JSON, t TIMESTAMP, d DECIMAL(6, 2), s STRUCT<a DOUBLE[]>, "
    "b BOOLEAN, v BIGINT GENERATED ALWAYS AS (id + 1) STORED"
)
TABLES = {
    "json": (STRUCTURED, "format = 'json'"),
    "json_newline": (STRUCTURED, "format = 'json', framing = 'newline'"),
    "json_cut": (
        STRUCTURED,
        "format = 'json', framing = 'newline', 'framing.newline.max_length' = '7'",
    ),
    "json_unstructured": ("value JSON", "format = 'json', 'json.unstructured' = true"),
    "raw_string": ("value TEXT", "format = 'raw_string'"),
    "raw_string_newline": ("value TEXT", "format = 'raw_string', framing = 'newline'"),
    "raw_bytes": ("value BYTEA", "format = 'raw_bytes'"),
    "raw_bytes_newline": ("value BYTEA", "format = 'raw_bytes', framing = 'newline'"),
}

JSONISH = st.lists(
    st.sampled_from(
        [b"{", b"}", b"[", b"]", b",", b":", b'"id"', b'"j"', b'"t"', b'"d"', b'"s"', b'"a"',
         b"1", b"-2.5e3", b"1e400", b'"x"', b"null", b"true", b"\n", b" ", b"\\ud800",
         b'"2024-01-01T00:00:00Z"', b"\xff", b'"\\u00e9"', b'"\\ud800"', b"},{", b"[" * 40,
         b"99999999999999999999", b"\x00", b"\r\n", b'{"id":1}', b'{"j":"\\ud800"}',
         b"[" * 1100]
    ),
    max_size=60,
).map(b"".join)
BODIES = st.one_of(
    st.binary(max_size=400),
    JSONISH,
    # Past the small-body threshold, so the native paths see them too.
    st.tuples(JSONISH, st.integers(1100, 3000)).map(lambda p: p[0] + b" " * p[1]),
    st.tuples(JSONISH, st.integers(30, 80)).map(lambda p: b"\n".join([p[0]] * p[1])),
)


def _ddl(server: Any) -> str:
    statements = [
        f"CREATE TABLE {name} ({columns}) WITH (connector = 'polling_http', {options}, "
        f"bad_data = 'drop', endpoint = '{server.url('/body')}');"
        for name, (columns, options) in TABLES.items()
    ]
    statements.append(
        "CREATE TABLE control (value TEXT) WITH (connector = 'polling_http', "
        f"format = 'raw_string', endpoint = '{server.url('/good')}');"
    )
    return "\n".join(statements)


def test_arbitrary_bodies_never_kill_a_dropping_table() -> None:
    served = {"body": b""}
    app = web.Application()

    async def body(request: web.Request) -> web.Response:
        return web.Response(body=served["body"], content_type="application/json")

    async def good(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app.router.add_get("/body", body)
    app.router.add_get("/good", good)
    clock = ManualClock()
    with serve(app) as server, Session(clock=clock, env={}) as session:
        session.execute(_ddl(server))
        tables = len(TABLES) + 1

        def settled(polls: int) -> dict[str, Any] | None:
            statuses = {s.table: s for s in session.status()}
            sleeping = session.runtime.run_sync(lambda: clock.sleepers)
            failed = sum(s.state is SourceState.FAILED for s in statuses.values())
            polled = all(
                s.polls >= polls or s.state is SourceState.FAILED for s in statuses.values()
            )
            return statuses if polled and sleeping >= tables - failed else None

        wait_for(lambda: settled(1))
        polls = [1]

        @settings(
            max_examples=60,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(BODIES)
        @example(b"[" * 100_000)  # the attacks, always tried
        @example(b'{"v":"\\ud800"}')
        @example(b'{"id":1} {"id":2,"j":"\\ud800"}')
        def poll_with(data: bytes) -> None:
            served["body"] = data
            polls[0] += 1
            session.runtime.call(clock.advance(1.0))
            statuses: dict[str, Any] = wait_for(lambda: settled(polls[0]))
            for name, status in statuses.items():
                assert status.state is SourceState.RUNNING, (name, data, status.last_error)
                error = status.last_error or ""
                assert "Traceback" not in error and "\n" not in error, (name, data, error)
                assert status.polls == polls[0], (name, status.polls)
            control = session.query("SELECT count(*) FROM control").column(0)[0].as_py()
            assert control == polls[0]

        poll_with()
