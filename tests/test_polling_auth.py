"""Auth helpers (issue 10, item 4): basic, bearer and API keys against httpbin and a real
server, and OAuth2 client credentials against a token endpoint that follows RFC 6749
section 4.4 (tests/support/oauth_server.py): fetched before the first poll, cached, shared,
refreshed on expiry and after one 401; a failing token endpoint is ``auth failed: ...``;
no secret in any output."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from arroyo_lite.connectors.base import SourceState
from arroyo_lite.connectors.polling_http import auth as auth_module
from arroyo_lite.connectors.polling_http.probe import probe
from arroyo_lite.sql import compile_sql
from tests.support.http_app import STATE, url
from tests.support.oauth_server import CLIENT_ID, CLIENT_SECRET, OAUTH, make_oauth_app
from tests.support.polling import RunningSource

pytestmark = pytest.mark.timeout(60)

ENV = {"USER": "alice", "PASS": "pa55-Word-Secret", "TOKEN": "t0ken-Secret-Value",
       "KEY": "k3y-Secret-Value", "CID": CLIENT_ID, "CSECRET": CLIENT_SECRET}  # fmt: skip


def table(endpoint: str, options: str, columns: str = "value TEXT", fmt: str = "raw_string"):
    sql = (
        f"CREATE TABLE t ({columns}) WITH (connector = 'polling_http', endpoint = '{endpoint}', "
        f"format = '{fmt}', {options});"
    )
    return compile_sql(sql, env=ENV).tables[0]


@pytest.fixture(autouse=True)
def _fresh_tokens() -> None:
    auth_module._TOKENS.clear()


@pytest.fixture
async def oauth() -> Any:
    server = TestServer(make_oauth_app(), host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


def no_secret_in(*texts: object) -> None:
    for text in map(str, texts):
        for value in ENV.values():
            if value not in (CLIENT_ID, "alice"):
                assert value not in text


async def test_basic_auth(httpbin: Any) -> None:
    config = table(
        httpbin.url + "/basic-auth/alice/pa55-Word-Secret",
        "'auth.type' = 'basic', 'auth.username' = '{{ USER }}', 'auth.password' = '{{ PASS }}'",
    )
    async with RunningSource(config, env=ENV) as src:
        await src.sleeping_after(1)
    assert src.status.failures == 0, src.status.last_error
    assert '"authenticated": true' in src.rows()[0]["value"]
    result = await probe(config, ENV)
    assert result.ok
    assert dict(result.headers)["Authorization"] == "Basic ****"
    # (httpbin wants the password in its path: the URL is the test's, not a leak.)
    no_secret_in(result.headers, result.notes, src.status.last_error)


async def test_bearer_auth(httpbin: Any) -> None:
    config = table(httpbin.url + "/bearer", "'auth.type' = 'bearer', 'auth.token' = '{{ TOKEN }}'")
    async with RunningSource(config, env=ENV) as src:
        await src.sleeping_after(1)
    assert '"token": "t0ken-Secret-Value"' in src.rows()[0]["value"]
    result = await probe(config, ENV)
    assert dict(result.headers)["Authorization"] == "Bearer ****"
    no_secret_in(result)


@pytest.mark.parametrize("location", ["header", "query"])
async def test_api_key_in_a_header_or_the_query(server: Any, location: str) -> None:
    config = table(
        url(server, "/echo"),
        f"'auth.type' = 'api_key', 'auth.api_key.name' = 'api_key', "
        f"'auth.api_key.value' = '{{{{ KEY }}}}', 'auth.api_key.location' = '{location}'",
    )
    async with RunningSource(config, env=ENV) as src:
        await src.sleeping_after(1)
    (seen,) = server.app[STATE].requests
    where = seen.headers if location == "header" else seen.query
    assert where["api_key"] == ENV["KEY"]
    result = await probe(config, ENV)
    no_secret_in(result.url, result.headers, result.notes, result.error)


def oauth_table(oauth: Any, extra: str = "") -> Any:
    return table(
        url(oauth, "/api/items"),
        "'auth.type' = 'oauth2_client_credentials', "
        f"'auth.token_url' = '{url(oauth, '/oauth/token')}', 'auth.client_id' = '{{{{ CID }}}}', "
        f"'auth.client_secret' = '{{{{ CSECRET }}}}', 'auth.scope' = 'read'{extra}",
        columns="id BIGINT",
        fmt="json",
    )


async def test_oauth2_token_is_fetched_once_and_cached(oauth: Any) -> None:
    state = oauth.app[OAUTH]
    async with RunningSource(oauth_table(oauth), env=ENV) as src:
        for poll in (1, 2):
            await src.sleeping_after(poll)
            await src.manual.advance(1.0)
        await src.sleeping_after(3)
    assert src.status.failures == 0, src.status.last_error
    assert [r["id"] for r in src.rows()] == [1, 2] * 3
    assert state.token_requests == [{"grant_type": "client_credentials", "scope": "read"}]
    no_secret_in(src.status.snapshot())


async def test_oauth2_client_auth_in_the_body(oauth: Any) -> None:
    state = oauth.app[OAUTH]
    async with RunningSource(oauth_table(oauth, ", 'auth.client_auth' = 'body'"), env=ENV) as src:
        await src.sleeping_after(1)
    assert src.status.failures == 0, src.status.last_error
    assert state.token_requests[0]["client_secret"] == CLIENT_SECRET


async def test_oauth2_token_expiring_mid_run_is_refreshed_before_it_expires(oauth: Any) -> None:
    state = oauth.app[OAUTH]
    state.expires_in = 120  # refreshed 30 s early: at 90 s
    config = oauth_table(oauth, ", poll_interval_ms = 60000")
    async with RunningSource(config, env=ENV) as src:
        await src.sleeping_after(1)
        await src.manual.advance(60.0)
        await src.sleeping_after(2)  # at 60 s: the token is still good
        assert len(state.token_requests) == 1
        await src.manual.advance(60.0)
        await src.sleeping_after(3)  # at 120 s: past 90 s, a new one
    assert len(state.token_requests) == 2
    assert src.status.failures == 0


async def test_oauth2_one_401_fetches_a_new_token_within_the_poll(oauth: Any) -> None:
    state = oauth.app[OAUTH]
    async with RunningSource(oauth_table(oauth), env=ENV) as src:
        await src.sleeping_after(1)
        state.live.clear()  # revoked: the next data request gets a 401
        await src.manual.advance(1.0)
        await src.sleeping_after(2)
    assert len(state.token_requests) == 2
    assert src.status.failures == 0
    assert len(src.rows()) == 4


async def test_oauth2_tokens_are_shared_by_tables_with_the_same_credentials(oauth: Any) -> None:
    state = oauth.app[OAUTH]
    async with RunningSource(oauth_table(oauth), env=ENV) as first:
        await first.sleeping_after(1)
        async with RunningSource(oauth_table(oauth), env=ENV) as second:
            await second.sleeping_after(1)
    assert len(state.token_requests) == 1
    assert state.resource_requests == 2


async def test_a_failing_token_endpoint_is_auth_failed(oauth: Any) -> None:
    env = {**ENV, "CSECRET": "wrong-Client-Secret"}
    async with RunningSource(oauth_table(oauth), env=env) as src:
        await src.sleeping_after(1)
        assert src.status.state is SourceState.UNAUTHORIZED
    assert src.status.last_error == (
        "auth failed: token endpoint: http server responded with 401 (invalid_client)"
    )
    assert oauth.app[OAUTH].resource_requests == 0  # never sent without a token
    result = await probe(oauth_table(oauth), env)
    assert result.error == src.status.last_error
    assert "wrong-Client-Secret" not in str(result)


async def test_test_shows_the_token_request_masked(oauth: Any) -> None:
    result = await probe(oauth_table(oauth), ENV)
    assert result.ok, result.error
    token_line, data_line = result.notes
    assert token_line.startswith(f"POST {url(oauth, '/oauth/token')} -> 200 OK (")
    assert data_line.startswith(f"GET {url(oauth, '/api/items')} -> 200 OK (")
    assert data_line.endswith(", 2 row(s)")
    issued = next(iter(oauth.app[OAUTH].live))
    assert issued not in str(result)
    no_secret_in(result)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("'auth.type' = 'basic', 'auth.username' = 'u'", "required option 'auth.password' not set"),
        ("'auth.token' = 'x'", "'auth.token' is only read with 'auth.type' set"),
        ("'auth.type' = 'bearer', 'auth.token' = '{{ NOPE }}'",
         "Environment variable NOPE not found"),
        ("'auth.type' = 'oauth2'", "invalid value for 'auth.type': 'oauth2'"),
    ],
)  # fmt: skip
def test_bad_auth_options_are_errors(options: str, message: str) -> None:
    from arroyo_lite.errors import ValidationErrors

    with pytest.raises(ValidationErrors) as info:
        table("http://h/x", options)
    assert [e.message for e in info.value][0] == message
