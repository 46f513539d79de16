"""``arroyo-lite deploy`` against the Arroyo API stand-in (tests/support/arroyo_api.py), and
against servers that are down, slow, broken or not Arroyo at all."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from click.testing import CliRunner, Result

from arroyo_lite.cli import main
from arroyo_lite.clock import ManualClock
from arroyo_lite.cluster.client import ArroyoClient
from arroyo_lite.cluster.deploy import DeployRequest
from arroyo_lite.cluster.deploy import deploy as deploy_to
from arroyo_lite.errors import ClusterError
from tests.support.arroyo_api import ArroyoStandIn
from tests.support.threaded_server import ThreadedServer, serve

SECRET = "s3cr3t-value-never-sent"

FILE = """-- prices, for a cluster
CREATE TABLE prices (symbol TEXT, price DOUBLE) WITH (
  connector = 'polling_http',
  endpoint = 'https://api.example.com/prices',
  headers = 'Authorization: Bearer {{ PRICES_TOKEN }}',
  format = 'json'
);
SELECT symbol, avg(price) AS avg_price FROM prices GROUP BY symbol;
"""


@pytest.fixture
def sql(tmp_path: Path) -> Path:
    path = tmp_path / "prices.sql"
    path.write_text(FILE, encoding="utf-8")
    return path


@pytest.fixture
def arroyo() -> Iterator[tuple[ArroyoStandIn, ThreadedServer]]:
    standin = ArroyoStandIn()
    with serve(standin.make_app()) as server:
        yield standin, server
        server.call(standin.release)  # (a slow stand-in must not hold up the teardown)


def deploy(server_url: str, path: Path, *args: str, **env: str) -> Result:
    return CliRunner().invoke(
        main,
        ["deploy", str(path), "--api", server_url, "--wait", "30", "--poll-interval", "0.01",
         *args],
        env={"PRICES_TOKEN": SECRET, "ARROYO_API_KEY": None, **env},
    )


def api(server: ThreadedServer) -> str:
    return server.url("")


def bodies(standin: ArroyoStandIn, method: str, path: str) -> list[Any]:
    return [b for m, p, b in standin.requests if m == method and p.split("?")[0] == path]


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.output + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_deploy_validates_creates_and_follows_the_job(arroyo, sql: Path) -> None:
    standin, server = arroyo
    result = deploy(api(server), sql, "--name", "prices", "--parallelism", "2",
                    "--checkpoint-interval", "30s", "--tag", "team=data")  # fmt: skip
    assert result.exit_code == 0, result.output
    [pipeline] = standin.pipelines.values()
    assert result.stdout.splitlines()[-2] == (
        f"pipeline {pipeline.id} (prices) is running: job {pipeline.job.id}"
    )
    assert bodies(standin, "POST", "/api/v1/pipelines/validate_query") == [
        {"query": FILE, "udfs": []}
    ]
    assert bodies(standin, "POST", "/api/v1/pipelines") == [
        {
            "name": "prices",
            "query": FILE,
            "udfs": [],
            "parallelism": 2,
            "checkpoint_interval_micros": 30_000_000,
            "tags": {"team": "data"},
            "env_vars": None,
        }
    ]
    # Followed until Running: Created, Compiling, Scheduling, Running.
    assert len(bodies(standin, "GET", f"/api/v1/pipelines/{pipeline.id}/jobs")) == 4
    for state in ("Created", "Compiling", "Scheduling", "Running"):
        assert f"job {pipeline.job.id}: {state}" in result.stderr
    assert "the cluster must set PRICES_TOKEN" in result.stderr


def test_the_query_carries_references_never_secret_values(arroyo, sql: Path) -> None:
    standin, server = arroyo
    result = deploy(api(server), sql, "--env", f"WORKER_TOKEN={SECRET}")
    assert result.exit_code == 0, result.output
    assert all(SECRET not in str(body) for m, _, body in standin.requests if m != "POST" or
               "env_vars" not in (body or {}))  # fmt: skip
    [post] = bodies(standin, "POST", "/api/v1/pipelines")
    assert "{{ PRICES_TOKEN }}" in post["query"] and SECRET not in post["query"]
    assert post["env_vars"] == {"WORKER_TOKEN": SECRET}  # asked for, for the workers only
    assert SECRET not in result.output + result.stderr


def test_planning_errors_are_shown_at_file_line_col(arroyo, sql: Path) -> None:
    standin, server = arroyo
    standin.planner = lambda query: [
        {
            "message": "Schema error: No field named pric. Valid fields are prices.symbol, "
            "prices.price.",
            "span": {"start": {"line": 8, "column": 19}, "end": {"line": 8, "column": 24}},
        },
        {"message": "a second problem without a span"},
    ]
    result = deploy(api(server), sql)
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    at = lines.index(
        f"{sql}:8:19: error: Schema error: No field named pric. Valid fields are "
        "prices.symbol, prices.price."
    )
    assert lines[at + 1] == (
        "    8 | SELECT symbol, avg(price) AS avg_price FROM prices GROUP BY symbol;"
    )
    assert lines[at + 2] == "      |                   ^~~~~"
    assert f"{sql}: error: a second problem without a span" in lines
    assert f"{sql}: the cluster rejected the query: 2 error(s); nothing was created" in lines
    assert bodies(standin, "POST", "/api/v1/pipelines") == []
    no_traceback(result)


def test_a_job_that_fails_after_starting_shows_the_reason(arroyo, sql: Path) -> None:
    standin, server = arroyo
    standin.fail_with = "HTTP request failed: error connecting to api.example.com:443"
    # Fails while starting (a job that fails after running: see the next test).
    standin.start_script = ("Created", "Scheduling")
    result = deploy(api(server), sql)
    assert result.exit_code == 1
    [pipeline] = standin.pipelines.values()
    job = pipeline.job
    assert (
        f"error: job {job.id} of pipeline {pipeline.id} failed (user error): "
        "HTTP request failed: error connecting to api.example.com:443"
    ) in result.stderr
    assert (
        "  error source_0[0]: HTTP request failed: error connecting to api.example.com:443: "
        "the operator panicked"
    ) in result.stderr
    assert "job " + job.id + ": Failing" in result.stderr
    no_traceback(result)


def test_show_reports_a_job_that_failed_after_running(arroyo, sql: Path) -> None:
    standin, server = arroyo
    standin.fail_with = "error in connector: disk full"
    assert deploy(api(server), sql).exit_code == 0  # it ran...
    [pipeline] = standin.pipelines.values()
    result = CliRunner().invoke(main, ["cluster", "show", pipeline.id, "--api", api(server)])
    result = CliRunner().invoke(main, ["cluster", "show", pipeline.id, "--api", api(server)])
    assert result.exit_code == 0, result.output  # ...then failed (two more job polls)
    assert f"job {pipeline.job.id}  Failed  run 1" in result.stdout
    assert "  failure (user error): error in connector: disk full" in result.stdout
    assert "errors: 1" in result.stdout
    assert "error  source_0[0]: error in connector: disk full: the operator panicked" in (
        result.stdout
    )


def test_a_malformed_request_is_arroyos_one_line_422(arroyo, sql: Path) -> None:

    _, server = arroyo

    async def post(body: dict[str, Any]) -> ClusterError:
        async with ArroyoClient(api(server)) as client:
            with pytest.raises(ClusterError) as info:
                await client.create_pipeline(body)
            return info.value

    missing = asyncio.run(post({"name": "x", "query": "SELECT 1"}))
    assert missing.status == 422
    assert missing.message.startswith(
        "Arroyo API: 422 Unprocessable Entity: Failed to deserialize the JSON body into the "
        "target type: missing field `parallelism`"
    )
    wrong = asyncio.run(post({"name": 1, "query": "SELECT 1", "parallelism": 1}))
    assert wrong.message.startswith(
        "Arroyo API: 422 Unprocessable Entity: Failed to deserialize the JSON body into the "
        "target type: name: invalid type: integer `1`, expected a string"
    )
    interval = asyncio.run(post({"name": "x", "query": "SELECT 1", "parallelism": 1,
                                 "checkpoint_interval_micros": 10}))  # fmt: skip
    assert (interval.status, interval.message) == (
        400,
        "Arroyo API: 400 Bad Request: Checkpoint_interval_micros must be between 1 second "
        "and 1 day.",
    )


def test_a_bad_checkpoint_interval_is_refused_before_sending(sql: Path) -> None:
    result = CliRunner().invoke(
        main, ["deploy", str(sql), "--api", "http://127.0.0.1:9", "--checkpoint-interval", "500ms"]
    )
    assert result.exit_code == 2
    assert "Checkpoint_interval_micros must be between 1 second and 1 day." in result.output


def test_a_file_that_is_not_portable_is_never_sent(arroyo, sql: Path) -> None:
    standin, server = arroyo
    sql.write_text(FILE.replace("format = 'json'", "format = 'json', timeout_ms = 100"))
    result = deploy(api(server), sql)
    assert result.exit_code == 3
    assert "'timeout_ms' is an arroyo-lite extension" in result.stderr
    assert standin.requests == []


def test_dry_run_prints_the_requests_and_sends_none(sql: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["deploy", str(sql), "--api", "http://127.0.0.1:9", "--dry-run", "--env", "K=v1"],
        env={"ARROYO_API_KEY": "key-123"},
    )
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert (
        "POST http://127.0.0.1:9/api/v1/pipelines/validate_query\n  Authorization: Bearer ****"
    ) in out
    assert "POST http://127.0.0.1:9/api/v1/pipelines\n" in out
    assert '"name": "prices",' in out and '"K": "****"' in out
    assert "v1" not in out.replace("/api/v1", "") and "key-123" not in out


def test_not_waiting_returns_once_created(arroyo, sql: Path) -> None:
    standin, server = arroyo
    standin.start_script = ("Created",)
    result = deploy(api(server), sql, "--wait", "0")
    assert result.exit_code == 0, result.output
    [pipeline] = standin.pipelines.values()
    assert f"pipeline {pipeline.id} (prices) created; job Created" in result.stdout


def test_a_job_that_does_not_start_in_time_exits_1(arroyo, sql: Path) -> None:
    standin, server = arroyo
    standin.start_script = ("Created",)
    result = deploy(api(server), sql, "--wait", "0.2")
    assert result.exit_code == 1
    assert "job still Created after 0.2 s; follow it with: arroyo-lite cluster show" in (
        result.stderr
    )


def test_an_api_key_is_sent_to_the_api_and_never_shown(arroyo, sql: Path) -> None:
    standin, server = arroyo
    standin.api_key = "the-cluster-key"
    refused = deploy(api(server), sql)
    assert refused.exit_code == 1
    assert refused.stderr.strip().splitlines()[-1] == (
        f"error: the Arroyo API at {api(server)}/api/v1 refused the request (401 Unauthorized); "
        "set ARROYO_API_KEY to the cluster's API key"
    )
    accepted = deploy(api(server), sql, ARROYO_API_KEY="the-cluster-key")
    assert accepted.exit_code == 0, accepted.output
    assert "the-cluster-key" not in accepted.output + accepted.stderr


# -- servers that are down, slow, broken, or not Arroyo ------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answering(handler: Callable[[web.Request], Awaitable[web.Response]]) -> web.Application:
    """An app answering every method and path with ``handler`` (a server that is not, or
    not only, Arroyo's API)."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


def one_line_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    no_traceback(result)
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def test_an_unreachable_api(sql: Path) -> None:
    port = free_port()
    line = one_line_error(deploy(f"http://127.0.0.1:{port}", sql))
    where = f"http://127.0.0.1:{port}/api/v1"
    assert line.startswith(f"error: cannot reach the Arroyo API at {where}: ")
    assert line.endswith(
        "; is the cluster running? Arroyo's API listens on http://localhost:5115 by default"
    )


def test_a_slow_api_times_out(arroyo, sql: Path) -> None:
    standin, server = arroyo
    standin.delay = 30.0
    line = one_line_error(deploy(api(server), sql, "--timeout", "0.3"))
    assert line == (
        f"error: the Arroyo API at {api(server)}/api/v1 did not answer within 0.3 s; "
        "check the address, or give it longer with --timeout"
    )


def test_a_server_answering_html(sql: Path) -> None:
    async def page(_: web.Request) -> web.Response:
        return web.Response(text="<html><body>Welcome</body></html>", content_type="text/html")

    with serve(answering(page)) as server:
        line = one_line_error(deploy(server.url(""), sql))
    assert line == (
        f"error: the Arroyo API at {server.url('')}/api/v1 is not an Arroyo API: it answered "
        "POST /pipelines/validate_query with text/html, not JSON; give the address of Arroyo's "
        "API server, e.g. http://localhost:5115"
    )


def test_arroyos_500(arroyo, sql: Path) -> None:
    standin, server = arroyo
    standin.broken = True
    line = one_line_error(deploy(api(server), sql))
    assert line == "error: Arroyo API: 500 Internal Server Error: Something went wrong"


def test_a_500_that_is_not_arroyos(sql: Path) -> None:
    async def broken(_: web.Request) -> web.Response:
        return web.Response(status=500, text="upstream exploded")

    with serve(answering(broken)) as server:
        line = one_line_error(deploy(server.url(""), sql))
    assert line == (
        f"error: the Arroyo API at {server.url('')}/api/v1 answered POST "
        "/pipelines/validate_query with 500 Internal Server Error (text/plain, not an Arroyo "
        "error)"
    )


def test_a_wrong_path_prefix_is_arroyos_route_not_found(arroyo, sql: Path) -> None:
    _, server = arroyo
    # http://host/api/v1/v1: not where Arroyo's routes are.
    line = one_line_error(deploy(api(server) + "/api/v1/v1", sql))
    assert line.startswith("error: Arroyo API: 404 Not Found: Route not found; is this Arroyo")


@pytest.mark.parametrize("address", ["ftp://host", "http://", "://nohost"])
def test_an_invalid_api_address(sql: Path, address: str) -> None:
    line = one_line_error(deploy(address, sql))
    assert line.startswith("error: invalid API address")


def test_help_documents_deploy_and_the_strict_check() -> None:
    deploy_help = CliRunner().invoke(main, ["deploy", "--help"])
    assert deploy_help.exit_code == 0
    for word in ("--api URL", "--name", "--parallelism", "--checkpoint-interval", "--tag",
                 "--env", "--wait", "--poll-interval", "--timeout", "--dry-run", "ARROYO_API_KEY"):
        assert word in deploy_help.output, word
    validate_help = CliRunner().invoke(main, ["validate", "--help"])
    assert "--arroyo" in validate_help.output and "exit 3" in validate_help.output
    top = CliRunner().invoke(main, ["--help"])
    assert "  deploy " in top.output and "  cluster " in top.output


def test_a_redirect_is_not_followed_with_the_api_key(sql: Path) -> None:
    seen: list[str | None] = []

    async def elsewhere(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Authorization"))
        return web.json_response({"graph": None, "errors": []})

    with serve(answering(elsewhere)) as target:

        async def moved(request: web.Request) -> web.Response:
            raise web.HTTPTemporaryRedirect(target.url(request.path))

        with serve(answering(moved)) as server:
            line = one_line_error(deploy(server.url(""), sql, ARROYO_API_KEY="k-1"))
    assert line == (
        f"error: the Arroyo API at {server.url('')}/api/v1 redirected POST "
        f"/pipelines/validate_query (307 Temporary Redirect) to "
        f"{target.url('/api/v1/pipelines/validate_query')}; give the address of Arroyo's API "
        "server itself with --api"
    )
    assert seen == []


def test_a_job_that_finishes_by_itself_is_a_success(arroyo, sql: Path) -> None:
    standin, server = arroyo
    standin.start_script = ("Created", "Scheduling", "Finishing", "Finished")
    result = deploy(api(server), sql)
    assert result.exit_code == 0, result.output
    [pipeline] = standin.pipelines.values()
    assert f"pipeline {pipeline.id} (prices): job {pipeline.job.id} is Finished" in result.stdout


async def test_following_a_job_asks_the_injected_clock_for_time(aiohttp_server) -> None:
    """deploy's wait is measured on the clock it is given: 10 minutes pass in no time."""

    standin = ArroyoStandIn(start_script=("Created",))
    server = await aiohttp_server(standin.make_app())
    clock = ManualClock()

    async def advance() -> None:  # time moves only while deploy waits for it
        while True:
            if clock.sleepers:
                await clock.advance(30)
            else:
                await asyncio.sleep(0.001)

    ticker = asyncio.create_task(advance())
    try:
        async with ArroyoClient(str(server.make_url(""))) as client:
            outcome = await deploy_to(
                client, DeployRequest("p", FILE), wait=600, every=30, clock=clock
            )
    finally:
        ticker.cancel()
    assert outcome.kind == "waiting" and outcome.job is not None
    assert outcome.job.state == "Created"
    polls = [p for m, p, _ in standin.requests if m == "GET"]
    assert len(polls) == 21  # at 0, 30, ..., 600 s
