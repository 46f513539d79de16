"""HTTP conformance of the polling source against the real ``httpbin`` app (pytest-httpbin).

httpbin runs in a thread on 127.0.0.1; the operator polls it once per test (the first poll
happens at once) and the test reads the decoded raw_string row.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from arroyo_lite.connectors.base import SourceState
from tests.support.polling import RunningSource, polling_table

pytestmark = pytest.mark.timeout(60)


async def poll_once(config: Any, env: dict[str, str] | None = None) -> RunningSource:
    async with RunningSource(config, env=env or {}) as src:
        await src.sleeping_after(1)
    return src


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
async def test_methods_send_the_body_verbatim(httpbin: Any, method: str) -> None:
    body = '{"query": "a,b:c", "n": 1}'
    src = await poll_once(polling_table(httpbin.url + "/anything", method=method, body=body))
    echoed = json.loads(src.rows()[0]["value"])
    assert echoed["method"] == method
    assert echoed["data"] == body
    # No automatic Content-Type, as in Arroyo: the user sets one through headers.
    assert "Content-Type" not in echoed["headers"]


async def test_get_sends_no_body(httpbin: Any) -> None:
    src = await poll_once(polling_table(httpbin.url + "/anything"))
    echoed = json.loads(src.rows()[0]["value"])
    assert echoed["method"] == "GET"
    assert echoed["data"] == ""


async def test_headers_are_sent_with_secrets_substituted(httpbin: Any) -> None:
    config = polling_table(
        httpbin.url + "/headers",
        headers=(
            ("Authorization", "Bearer {{ API_TOKEN }}"),
            ("Content-Type", "application/json"),
            ("X-Url", "http://example.com:8080/x"),
        ),
    )
    src = await poll_once(config, env={"API_TOKEN": "abc:def,ghi"})
    headers = json.loads(src.rows()[0]["value"])["headers"]
    assert headers["Authorization"] == "Bearer abc:def,ghi"
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Url"] == "http://example.com:8080/x"
    assert headers["User-Agent"].startswith("arroyo-lite/")


async def test_user_agent_can_be_overridden(httpbin: Any) -> None:
    src = await poll_once(
        polling_table(httpbin.url + "/user-agent", headers=(("User-Agent", "mine/1.0"),))
    )
    assert json.loads(src.rows()[0]["value"]) == {"user-agent": "mine/1.0"}


async def test_redirects_are_followed(httpbin: Any) -> None:
    src = await poll_once(polling_table(httpbin.url + "/redirect/3"))
    assert json.loads(src.rows()[0]["value"])["url"].endswith("/get")
    assert src.status.failures == 0


async def test_too_many_redirects_is_a_failure(httpbin: Any) -> None:
    src = await poll_once(polling_table(httpbin.url + "/redirect/11"))
    assert src.status.last_error == "HTTP request failed: too many redirects (more than 10)"
    assert src.rows() == []


@pytest.mark.parametrize(
    ("code", "state"),
    [(503, SourceState.BACKOFF), (500, SourceState.BACKOFF), (418, SourceState.RUNNING)],
)
async def test_status_codes(httpbin: Any, code: int, state: SourceState) -> None:
    async with RunningSource(polling_table(f"{httpbin.url}/status/{code}")) as src:
        await src.sleeping_after(1)
        # 5xx backs off; other statuses are retried at the normal interval.
        assert src.status.state is state
    assert src.status.last_error == f"HTTP request failed: http server responded with {code}"
    assert src.status.last_status_code == code


async def test_stream_is_ndjson_with_newline_framing(httpbin: Any) -> None:
    src = await poll_once(polling_table(httpbin.url + "/stream/5", newline=True))
    rows = [json.loads(r["value"]) for r in src.rows()]
    assert [r["id"] for r in rows] == [0, 1, 2, 3, 4]


async def test_gzip_response_is_decompressed(httpbin: Any) -> None:
    src = await poll_once(polling_table(httpbin.url + "/gzip"))
    assert json.loads(src.rows()[0]["value"])["gzipped"] is True


async def test_untrusted_tls_certificate_is_a_connection_failure(httpbin_secure: Any) -> None:
    # httpbin_secure's certificate is self-signed: verification fails, as in Arroyo (reqwest
    # verifies too). A connection failure like any other: counted, backed off, polling goes on.
    async with RunningSource(polling_table(httpbin_secure.url + "/get")) as src:
        await src.sleeping_after(1)
        assert src.status.state is SourceState.BACKOFF
    host = httpbin_secure.url.split("//")[1]
    error = src.status.last_error
    assert error is not None
    assert error.startswith(f"HTTP request failed: error connecting to {host}: ")
    assert "CERTIFICATE_VERIFY_FAILED" in error
    assert src.status.failures == 1 and src.rows() == []
