"""Validation of sse and websocket tables: Arroyo's rules and words, positions, hints; and the
last event id kept in --state-dir across a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from arroyo_lite import Session
from arroyo_lite.errors import ValidationErrors
from arroyo_lite.sql import compile_sql
from tests.support.stream_app import STREAM_STATE, make_stream_app
from tests.support.threaded_server import serve, wait_for


def sse(options: str, columns: str = "value TEXT") -> str:
    return f"CREATE TABLE t ({columns}) WITH (connector = 'sse', {options});"


def ws(options: str, columns: str = "value TEXT") -> str:
    return f"CREATE TABLE t ({columns}) WITH (connector = 'websocket', {options});"


FMT = "format = 'raw_string'"

CASES = [
    # (sql, message, the text the error points at, hint fragment or None)
    (sse(FMT), "required option 'endpoint' not set", "WITH", "endpoint"),
    (sse("endpoint = 'http://x/s'"), "'format' must be set for SSE connection", "WITH",
     "format = 'json'"),
    (ws("endpoint = 'ws://x/s'"), "'format' must be set for WebSocket connection", "WITH",
     "format = 'json'"),
    (sse(f"{FMT}, endpoint = 'ftp://x/s'"), "invalid SSE URL 'ftp://x/s': the scheme must be "
     "http or https", "'ftp://x/s'", "full URL"),
    (sse(f"{FMT}, endpoint = 'http:///s'"), "invalid SSE URL 'http:///s': the URL has no host",
     "'http:///s'", None),
    (ws(f"{FMT}, endpoint = 'https://x/s'"), "invalid websocket URL 'https://x/s': the scheme "
     "must be ws or wss", "'https://x/s'", "did you mean 'wss:'?"),
    (sse(f"{FMT}, endpoint = 'http://x/s', headers = 'nocolon'"),
     "Invalid format for headers; should be a comma-separated list of colon-separated key "
     "value pairs", "'nocolon'", "Name: value"),
    (sse(f"{FMT}, endpoint = 'http://x/s', headers = 'A: {{{{ NOPE }}}}'"),
     "Environment variable NOPE not found", "'A: {{", "export NOPE"),
    (sse(f"{FMT}, endpoint = 'http://x/s', events = ','"),
     "invalid value for 'events': ',' (no event type named)", "','", "remove 'events'"),
    (sse(f"{FMT}, endpoint = 'http://x/s', reconnect_delay_ms = 0"),
     "invalid value for 'reconnect_delay_ms': 0 (must be greater than 0)", "0)", None),
    (sse(f"{FMT}, endpoint = 'http://x/s', max_backoff_ms = 'soon'"),
     "expected with option 'max_backoff_ms' to be an integer, but it was `soon`", "'soon'",
     None),
    (sse(f"{FMT}, endpoint = 'http://x/s', event = 'update'"),
     "unknown options provided in WITH clause: 'event'", "event =", "did you mean 'events'"),
    (sse(f"{FMT}, endpoint = 'http://x/s', type = 'source'"),
     "unknown options provided in WITH clause: 'type'", "type =", "remove it"),
    (ws(f"{FMT}, endpoint = 'ws://x/s', subscription_message = 'a', "
        "'subscription_messages.0' = 'b'"),
     "Cannot specify both 'subscription_message' and 'subscription_messages.0'", "'b'",
     "subscription_messages.0"),
    (ws(f"{FMT}, endpoint = 'ws://x/s', 'subscription_messages.0' = 'a', "
        "'subscription_messages.2' = 'c'"),
     "unknown options provided in WITH clause: 'subscription_messages.2'",
     "'subscription_messages.2'", "did you mean 'subscription_messages.1'"),
    (ws(f"{FMT}, endpoint = 'ws://x/s', subscription_messages = 'a'"),
     "unknown options provided in WITH clause: 'subscription_messages'",
     "subscription_messages =", None),
]  # fmt: skip


@pytest.mark.parametrize(("sql", "message", "at", "hint"), CASES)
def test_errors(sql: str, message: str, at: str, hint: str | None) -> None:
    col = sql.index(at) + 1
    with pytest.raises(ValidationErrors) as info:
        compile_sql(sql, file="s.sql", env={})
    [error] = [e for e in info.value if e.message == message] or list(info.value)
    assert error.message == message
    assert error.position is not None
    assert (error.position.file, error.position.line, error.position.col) == ("s.sql", 1, col)
    if hint is not None:
        assert error.hint is not None and hint in error.hint, error.hint


def test_every_problem_of_a_table_is_reported() -> None:
    sql = sse("endpoint = 'ftp://x', events = ' ', headers = 'x'")
    with pytest.raises(ValidationErrors) as info:
        compile_sql(sql, file="s.sql", env={})
    assert [e.message.split(":")[0] for e in info.value] == [
        "'format' must be set for SSE connection",
        "invalid SSE URL 'ftp",
        "invalid value for 'events'",
        "Invalid format for headers; should be a comma-separated list of colon-separated key "
        "value pairs",
    ]  # (in the order of the file)


def test_valid_tables_carry_their_options() -> None:
    program = compile_sql(
        sse(
            f"{FMT}, endpoint = 'https://x/s', events = 'update, delete', "
            "headers = 'Authorization: Bearer {{ T }}'"
        )  # fmt: skip
        + ws(
            f"{FMT}, endpoint = 'wss://x/s', subscription_message = 'first', reconnect_delay_ms = 5"
        ).replace("TABLE t", "TABLE u"),  # fmt: skip
        env={"T": "secret"},
    )
    sse_options, ws_options = (t.connector_options for t in program.tables)
    assert sse_options.events == ("update", "delete")
    assert sse_options.headers == (("Authorization", "Bearer {{ T }}"),)  # no secret stored
    assert ws_options.subscription_messages == ("first",)
    assert ws_options.reconnect_delay_ms == 5


def test_state_dir_resumes_after_the_last_saved_event(tmp_path: Path) -> None:
    app = make_stream_app()
    with serve(app) as server:
        sql = (
            "CREATE TABLE t (n BIGINT) WITH (connector = 'sse', format = 'json', "
            f"endpoint = '{server.url('/sse?n=3')}');"
        )

        def count(session: Session) -> int:
            return int(session.query("SELECT count(*) FROM t").column(0)[0].as_py())

        with Session(env={}, state_dir=tmp_path) as session:
            session.execute(sql)
            wait_for(lambda: count(session) == 3)
        with Session(env={}, state_dir=tmp_path) as session:
            session.execute(sql)
            wait_for(lambda: count(session) == 6)
            ns = session.query("SELECT n FROM t ORDER BY n").column(0).to_pylist()
            status = {s.table: s for s in session.status()}["t"]
        requests = server.call(lambda: list(app[STREAM_STATE].requests))
    assert ns == [0, 1, 2, 3, 4, 5]  # saved rows, then the stream resumed: no gap, no repeat
    assert "Last-Event-ID" not in requests[0][1]
    assert requests[1][1]["Last-Event-ID"] == "2"
    assert status.extra["last_event_id"] == "5"
