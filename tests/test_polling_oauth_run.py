"""OAuth2 and the request side through whole runs (issue 10, items 4 and 7): a resource that
answers 401 throughout (the token is refreshed once per poll, then the 401 is reported), a
failing token endpoint through ``arroyo-lite run`` (``auth failed: ...``; the data endpoint
is never asked nor blamed), a next link to another origin refused in ``arroyo-lite test``'s
output, and the access tokens masked everywhere: every output of ``run`` and ``test``, the
log, the status (``arroyo_status``) and every file of the state directory are searched for
each token the server issued."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from arroyo_lite.connectors.base import SourceState
from arroyo_lite.connectors.polling_http import auth as auth_module
from arroyo_lite.demo.oauth import OAUTH, bearer_accepted
from arroyo_lite.sql import compile_sql
from tests.support import cli
from tests.support.http_app import STATE, make_app, url, wait_until
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET, make_oauth_app
from tests.support.polling import RunningSource

pytestmark = pytest.mark.timeout(120)

ENV = {"CID": CLIENT_ID, "CSECRET": CLIENT_SECRET}
ECHO_HITS = web.AppKey("echo_hits", list)


async def never(request: web.Request) -> web.Response:
    """A resource that refuses every token (as one whose client lost its grant)."""
    request.app[OAUTH].resource_requests += 1
    return web.Response(status=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


async def echo(request: web.Request) -> web.Response:
    """Echoes the request's Authorization header back in what it answers: first in a 500's
    body (logged as the failure's excerpt), then in an ETag, then as rows, then in a body
    that is not JSON (a fatal decode error with ``bad_data = 'fail'``)."""
    hits = request.app[ECHO_HITS]
    hits.append(1)
    header = request.headers.get("Authorization", "")
    if not bearer_accepted(request):
        return web.Response(status=401)
    if len(hits) == 1:
        return web.Response(status=500, text=f"upstream rejected {header} for now")
    if len(hits) <= 3:
        return web.json_response(
            [{"id": len(hits), "seen": "a token"}], headers={"ETag": f'"{len(hits)}"'}
        )
    return web.Response(text=f"not json at all: {header}", content_type="application/json")


@pytest.fixture(autouse=True)
def _fresh_tokens() -> None:
    auth_module._TOKENS.clear()


@pytest.fixture
async def oauth() -> AsyncIterator[TestServer]:
    app = make_oauth_app()
    app[ECHO_HITS] = []
    app.router.add_get("/api/never", never)
    app.router.add_get("/api/echo", echo)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


def oauth_options(server: TestServer, secret: str = "{{ CSECRET }}") -> str:
    return (
        f"'auth.type' = 'oauth2_client_credentials', 'auth.token_url' = "
        f"'{url(server, '/oauth/token')}', 'auth.client_id' = '{{{{ CID }}}}', "
        f"'auth.client_secret' = '{secret}'"
    )


async def test_a_401_throughout_refreshes_once_per_poll_then_reports(oauth: TestServer) -> None:
    sql = (
        f"CREATE TABLE t (id BIGINT) WITH (connector = 'polling_http', format = 'json', "
        f"endpoint = '{url(oauth, '/api/never')}', {oauth_options(oauth)});"
    )
    config = compile_sql(sql, env=ENV).tables[0]
    state = oauth.app[OAUTH]
    async with RunningSource(config, env=ENV) as source:
        await source.sleeping_after(1)
        # The first poll's token was issued for it and refused: no second one.
        assert (len(state.token_requests), state.resource_requests) == (1, 1)
        for polls in (2, 3):
            await source.manual.advance(source.pending_delay())
            await source.sleeping_after(polls)
            # A cached token refused: one refresh, one retry, then the 401 is the answer.
            assert len(state.token_requests) == polls
            assert state.resource_requests == 2 * polls - 1
        status = source.status
        assert status.state is SourceState.UNAUTHORIZED
    assert status.failures == 3 and status.last_status_code == 401
    assert status.last_error == "HTTP request failed: http server responded with 401"


def write(tmp_path: Path, sql: str) -> Path:
    path = tmp_path / "t.sql"
    path.write_text(sql, encoding="utf-8")
    return path


async def test_a_failing_token_endpoint_through_run_is_reported_as_auth(
    oauth: TestServer, tmp_path: Path
) -> None:
    sql = (
        f"CREATE TABLE orders (id BIGINT) WITH (connector = 'polling_http', format = 'json', "
        f"endpoint = '{url(oauth, '/api/items')}', poll_interval_ms = 200, "
        f"{oauth_options(oauth, secret='wrong-{{ CSECRET }}')});\n"
        f"SELECT * FROM orders;\n"
    )
    done = await cli.run("run", str(write(tmp_path, sql)), "--for", "2", "--format", "jsonl",
                         **ENV)  # fmt: skip
    assert done.code == 1, done.stderr
    assert done.stdout == ""
    assert (
        "auth failed: token endpoint: http server responded with 401 (invalid_client)"
        in done.stderr
    )
    assert oauth.app[OAUTH].resource_requests == 0  # the data endpoint never asked...
    assert url(oauth, "/api/items") not in done.stderr  # ...nor blamed
    assert CLIENT_SECRET not in done.stderr


async def test_test_shows_a_next_link_to_another_origin_refused(
    server: Any, tmp_path: Path
) -> None:
    other = TestServer(make_app(), host="127.0.0.1")
    await other.start_server()
    try:
        target = url(other, "/counter")
        sql = (
            f"CREATE TABLE t (method TEXT) WITH (connector = 'polling_http', format = 'json', "
            f"endpoint = '{url(server, '/echo')}', 'pagination.type' = 'json_link', "
            f"'pagination.next_url_path' = 'query.next', 'query.next' = '{target}');\n"
        )
        done = await cli.run("test", str(write(tmp_path, sql)))
    finally:
        await other.close()
    assert done.code == 1
    output = done.stdout + done.stderr
    assert f"the next page is on another origin ({target}); not followed" in output
    assert f"GET {url(server, '/echo')}?next=" in output  # the first page, in the trace
    assert other.app[STATE].requests == []


async def test_access_tokens_never_appear_in_any_output(
    oauth: TestServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state_dir = tmp_path / "state"
    sql = (
        f"CREATE TABLE t (id BIGINT, seen TEXT) WITH (connector = 'polling_http', "
        f"format = 'json', endpoint = '{url(oauth, '/api/echo')}', poll_interval_ms = 100, "
        f"max_backoff_ms = 100, {oauth_options(oauth)});\nSELECT * FROM t;\n"
    )
    path = write(tmp_path, sql)
    run = await cli.run(
        "run", str(path), "--for", "4", "--format", "jsonl", "--state-dir", str(state_dir),
        "--progress", **ENV,
    )  # fmt: skip
    hits = oauth.app[ECHO_HITS]
    assert len(hits) >= 4, run.stderr  # the 500, two rows, the fatal body
    assert "invalid JSON" in run.stderr and "run ended with 1 failed source" in run.stderr
    test = await cli.run("test", str(path), **ENV)
    # In-process too, for the log records, the status and arroyo_status.
    oauth.app[ECHO_HITS].clear()
    config = compile_sql(sql, env=ENV).tables[0]
    with caplog.at_level(logging.DEBUG, logger="arroyo_lite"):
        async with RunningSource(config, env=ENV) as source:
            for polls in (1, 2, 3):
                await source.sleeping_after(polls)
                await source.manual.advance(source.pending_delay())
            await wait_until(lambda: source.status.state is SourceState.FAILED)
    from arroyo_lite.query.status_table import status_table

    status_rows = status_table([source.status]).to_pylist()
    tokens = set(oauth.app[OAUTH].live)
    assert len(tokens) >= 3  # one per run: run, test, in-process
    outputs = {
        "run stdout": run.stdout,
        "run stderr": run.stderr,
        "test output": test.stdout + test.stderr,
        "log": "\n".join(r.getMessage() for r in caplog.records),
        "status": repr(source.status) + repr(status_rows),
    }
    outputs |= {
        f"state file {p.relative_to(state_dir)}": p.read_bytes().decode("latin-1")
        for p in state_dir.rglob("*")
        if p.is_file()
    }
    assert any(name.startswith("state file") for name in outputs)
    for name, text in outputs.items():
        for secret in (*tokens, CLIENT_SECRET):
            assert secret not in text, f"a secret in the {name}"
    assert "upstream rejected Bearer **** for now" in outputs["log"]  # the 500's excerpt
