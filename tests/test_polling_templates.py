"""Query parameters and per-poll values (issue 10, items 1 and 2), on a real loopback server:
``query.*`` options, ``[[ now ]]``/``[[ last_success ]]``/``[[ cursor ]]`` in the endpoint,
query, headers and body, validated with a did-you-mean, cursor and last success kept in the
source state and resumed after a restart with a state directory."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from arroyo_lite import Session
from arroyo_lite.clock import ManualClock
from arroyo_lite.errors import ValidationErrors
from arroyo_lite.sql import compile_sql
from tests.support.http_app import STATE, make_app, url
from tests.support.polling import RunningSource
from tests.support.threaded_server import serve, wait_for

pytestmark = pytest.mark.timeout(60)

SECRET = "qu3ry-Secret-Value-99"


def table(endpoint: str, extra: str = "", columns: str = "value TEXT", fmt: str = "raw_string"):
    sql = f"""CREATE TABLE t ({columns}) WITH (
  connector = 'polling_http',
  endpoint = '{endpoint}',
  format = '{fmt}'{extra}
);"""
    return compile_sql(sql, env={"KEY": SECRET}).tables[0]


def seen(server: Any, path: str) -> list[Any]:
    return [r for r in server.app[STATE].requests if r.path == path]


async def test_query_parameters_are_encoded_and_merged(server: Any) -> None:
    config = table(
        url(server, "/echo") + "?fixed=1&q=old",
        ",\n  'query.q' = 'a b&c=d',\n  'query.key' = '{{ KEY }}',"
        "\n  'query.when' = '[[ now | epoch ]]'",
    )
    clock = ManualClock()
    async with RunningSource(config, env={"KEY": SECRET}, clock=clock) as src:
        await src.sleeping_after(1)
    (request,) = seen(server, "/echo")
    assert request.query == {
        "fixed": "1",
        "q": "a b&c=d",
        "key": SECRET,
        "when": str(clock.time_ns() // 1_000_000_000),
    }
    assert SECRET not in str(src.status.snapshot())


async def test_per_poll_values_in_endpoint_headers_and_body(server: Any) -> None:
    config = table(
        url(server, "/echo") + "?from=[[ last_success ]]&to=[[ now ]]",
        ",\n  method = 'POST',\n  body = '{\"since\": \"[[ last_success | epoch_ms ]]\"}',"
        "\n  headers = 'X-Poll: [[ now | rfc3339 ]]',\n  poll_interval_ms = 60000",
    )
    clock = ManualClock()
    start = clock.time_ns()
    async with RunningSource(config, clock=clock) as src:
        await src.sleeping_after(1)
        await clock.advance(60.0)
        await src.sleeping_after(2)
    first, second = seen(server, "/echo")

    def rfc(ns: int) -> str:
        return dt.datetime.fromtimestamp(ns // 10**9, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    # Before any success, last_success is one interval before the poll.
    assert first.query == {"from": rfc(start - 60 * 10**9), "to": rfc(start)}
    assert second.query == {"from": rfc(start), "to": rfc(start + 60 * 10**9)}
    assert first.headers["X-Poll"] == rfc(start)
    assert second.body == b'{"since": "%d"}' % (start // 10**6)


async def test_a_failed_poll_does_not_move_the_window(server: Any) -> None:
    config = table(url(server, "/toggle"), ",\n  'query.since' = '[[ last_success | epoch ]]'")
    clock = ManualClock()
    async with RunningSource(config, clock=clock) as src:
        await src.sleeping_after(1)
        server.app[STATE].toggle_status = 404
        await clock.advance(1.0)
        await src.sleeping_after(2)
        server.app[STATE].toggle_status = 200
        await clock.advance(1.0)
        await src.sleeping_after(3)
    sent = [r.query["since"] for r in seen(server, "/toggle")]
    # Poll 3 still asks from the start of poll 1, the last one that succeeded.
    assert sent[2] == sent[1] == str(int(sent[0]) + 1)


async def test_a_cursor_from_the_body_pages_through_a_feed(server: Any) -> None:
    config = table(
        url(server, "/feed"),
        ",\n  'query.after' = '[[ cursor ]]',\n  'cursor.path' = '$.next',"
        "\n  'cursor.initial' = '0'",
        columns="next BIGINT",
        fmt="json",
    )
    async with RunningSource(config) as src:
        await src.run_polls(4)
    assert [r.query["after"] for r in seen(server, "/feed")][:4] == ["0", "2", "4", "6"]
    assert [row["next"] for row in src.rows()][:4] == [2, 4, 6, 8]


async def test_a_cursor_from_a_header(server: Any) -> None:
    config = table(
        url(server, "/feed") + "?after=[[ cursor ]]", ",\n  'cursor.header' = 'X-Next'"
    )
    async with RunningSource(config) as src:
        await src.run_polls(3)
    assert [r.query.get("after") for r in seen(server, "/feed")][:3] == ["", "2", "4"]


def test_the_cursor_resumes_after_a_restart_with_a_state_dir(tmp_path: Path) -> None:
    with serve(make_app()) as server:
        ddl = (
            "CREATE TABLE f (next BIGINT) WITH (connector = 'polling_http', "
            f"endpoint = '{server.url('/feed')}', format = 'json', poll_interval_ms = '20', "
            "'query.after' = '[[ cursor ]]', 'cursor.path' = 'next', 'cursor.initial' = '0');"
        )
        app_state = server.call(lambda: server.app[STATE])

        def sent() -> list[str]:
            return server.call(lambda: [r.query["after"] for r in app_state.requests])

        with Session(state_dir=tmp_path) as session:
            session.execute(ddl)
            wait_for(lambda: session.status()[0].rows >= 3)
        before = sent()
        with Session(state_dir=tmp_path) as session:
            session.execute(ddl)
            # Wait for the request where the server records it: the table counts a poll
            # before it sends the request, so its 'polls' may be 1 while nothing was sent.
            wait_for(lambda: len(sent()) > len(before))
        after = sent()
    first_after_restart = after[len(before)]
    # The restarted table asks from where the first one stopped, not from cursor.initial.
    assert int(first_after_restart) >= 6 and first_after_restart != "0"
    assert int(first_after_restart) >= int(before[-1])


@pytest.mark.parametrize(
    ("extra", "message", "hint"),
    [
        (",\n  'query.since' = '[[ nwo ]]'", "invalid value for 'query.since': unknown per-poll "
         "value '[[ nwo ]]'", "did you mean 'now'? known values: now, last_success, cursor"),
        (",\n  'query.since' = '[[ now | rfc3393 ]]'", "invalid value for 'query.since': unknown "
         "time format 'rfc3393' in '[[ now | rfc3393 ]]'",
         "did you mean 'rfc3339'? formats: rfc3339, epoch, epoch_ms"),
        (",\n  headers = 'X-A: [[ last_sucess ]]'", "invalid value for 'headers' (X-A): unknown "
         "per-poll value '[[ last_sucess ]]'",
         "did you mean 'last_success'? known values: now, last_success, cursor"),
        (",\n  'query.a' = '[[ cursor ]]'", "[[ cursor ]] is used but no cursor is read from the "
         "responses", "add 'cursor.path' = '$.next_cursor' (a path into the JSON body) or "
         "'cursor.header' = 'X-Next-Cursor'"),
        (",\n  'query.k' = '{{ MISSING }}'", "Environment variable MISSING not found",
         "export MISSING=... before running arroyo-lite"),
        (",\n  'cursor.path' = 'a..b'", "invalid value for 'cursor.path': cannot read the path "
         "'a..b' at '..b'", "write a path such as '$.meta.next_cursor' or 'items[-1].id'"),
    ],
)
def test_validate_names_every_bad_template(extra: str, message: str, hint: str) -> None:
    with pytest.raises(ValidationErrors) as info:
        compile_sql(
            "CREATE TABLE t (value TEXT) WITH (\n  connector = 'polling_http',\n"
            f"  endpoint = 'http://h/x',\n  format = 'raw_string'{extra}\n);",
            env={},
        )
    (error,) = list(info.value)
    assert error.message == message
    assert error.hint == hint
    assert error.position is not None and error.position.line >= 4


NESTED = ['{"points": [[1, 2], [3, 4]]}', '[["a"]]', "[[true, null]]", "[["]


@pytest.mark.parametrize("body", NESTED)
def test_a_json_bodys_nested_arrays_are_text_not_per_poll_values(body: str) -> None:
    # [[ opens a per-poll value only when a name follows it.
    from arroyo_lite.connectors.polling_http.templates import parse

    assert parse(body).parts == (body,)
