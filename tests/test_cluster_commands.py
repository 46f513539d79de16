"""``arroyo-lite cluster list|show|stop|delete`` against the Arroyo API stand-in."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from arroyo_lite.cli import main
from arroyo_lite.cluster.client import ArroyoClient, api_base
from tests.support.arroyo_api import ArroyoStandIn
from tests.support.threaded_server import ThreadedServer, serve

FILE = "CREATE TABLE t WITH (connector = 'impulse', event_rate = 1);\nSELECT counter FROM t;\n"


@pytest.fixture
def arroyo() -> Iterator[tuple[ArroyoStandIn, ThreadedServer]]:
    standin = ArroyoStandIn()
    with serve(standin.make_app()) as server:
        yield standin, server


def cli(server: ThreadedServer, *args: str) -> Result:
    return CliRunner().invoke(
        main, [*args, "--api", server.url("")], env={"ARROYO_API_KEY": None}
    )


def deployed(server: ThreadedServer, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.sql"
    path.write_text(FILE, encoding="utf-8")
    result = cli(server, "deploy", str(path), "--poll-interval", "0.01")
    assert result.exit_code == 0, result.output


def test_list_shows_every_pipeline_newest_first(arroyo, tmp_path: Path) -> None:
    standin, server = arroyo
    empty = cli(server, "cluster", "list")
    assert (empty.exit_code, empty.stdout) == (0, "no pipelines\n")
    for name in ("first", "second", "third"):
        deployed(server, tmp_path, name)
    result = cli(server, "cluster", "list")
    assert result.exit_code == 0, result.output
    ids = list(standin.pipelines)
    lines = result.stdout.splitlines()
    assert [line.split("  ")[:3] for line in lines] == [
        [ids[2], "third", "Running"], [ids[1], "second", "Running"], [ids[0], "first", "Running"],
    ]  # fmt: skip


def test_the_client_follows_pages(arroyo, tmp_path: Path) -> None:
    standin, server = arroyo
    for name in ("a", "b", "c"):
        deployed(server, tmp_path, name)

    async def names() -> list[str]:
        async with ArroyoClient(server.url("")) as client:
            return [p.name for p in await client.pipelines(page_size=2)]

    assert asyncio.run(names()) == ["c", "b", "a"]
    pages = [p for m, p, _ in standin.requests if m == "GET" and p.startswith("/api/v1/pipelines?")]
    assert pages == [
        "/api/v1/pipelines?limit=2",
        f"/api/v1/pipelines?limit=2&starting_after={list(standin.pipelines)[1]}",
    ]


def test_show_a_pipeline_and_its_job(arroyo, tmp_path: Path) -> None:
    standin, server = arroyo
    deployed(server, tmp_path, "shown")
    [pipeline] = standin.pipelines.values()
    result = cli(server, "cluster", "show", pipeline.id)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"pipeline {pipeline.id}  shown"
    assert "stop=none  checkpoint every 10 s" in lines[1]
    assert lines[2].startswith(f"job {pipeline.job.id}  Running  run 1  started ")
    assert lines[-1] == "errors: none"


def test_show_an_unknown_pipeline_is_arroyos_404(arroyo) -> None:
    _, server = arroyo
    result = cli(server, "cluster", "show", "pl_nope")
    assert result.exit_code == 1
    assert result.stderr == "error: Arroyo API: 404 Not Found: Pipeline not found\n"


def test_stop_then_delete(arroyo, tmp_path: Path) -> None:
    standin, server = arroyo
    deployed(server, tmp_path, "doomed")
    [pipeline] = standin.pipelines.values()
    refused = cli(server, "cluster", "delete", pipeline.id)
    assert refused.exit_code == 1
    assert refused.stderr == (
        "error: Arroyo API: 400 Bad Request: Pipeline's jobs must be in a terminal state "
        "(stopped, finished, or failed) before it can be deleted; stop it first: "
        f"arroyo-lite cluster stop {pipeline.id}\n"
    )
    stopped = cli(server, "cluster", "stop", pipeline.id, "--poll-interval", "0.01")
    assert stopped.exit_code == 0, stopped.output
    assert stopped.stdout == f"pipeline {pipeline.id}: stop=checkpoint requested; job Stopped\n"
    patches = [b for m, _, b in standin.requests if m == "PATCH"]
    assert patches == [{"stop": "checkpoint"}]
    deleted = cli(server, "cluster", "delete", pipeline.id)
    assert (deleted.exit_code, deleted.stdout) == (0, f"pipeline {pipeline.id} deleted\n")
    assert standin.pipelines == {}


def test_stop_modes(arroyo, tmp_path: Path) -> None:
    standin, server = arroyo
    deployed(server, tmp_path, "now")
    [pipeline] = standin.pipelines.values()
    result = cli(server, "cluster", "stop", pipeline.id, "--mode", "immediate", "--wait", "0")
    assert result.exit_code == 0, result.output
    assert [b for m, _, b in standin.requests if m == "PATCH"] == [{"stop": "immediate"}]
    bad = cli(server, "cluster", "stop", pipeline.id, "--mode", "later")
    assert bad.exit_code == 2


@pytest.mark.parametrize("command", ["list", "show", "stop", "delete"])
def test_each_command_has_help(command: str) -> None:
    result = CliRunner().invoke(main, ["cluster", command, "--help"])
    assert result.exit_code == 0
    assert "--api URL" in result.output and "--timeout SECONDS" in result.output


@pytest.mark.parametrize(
    ("given", "base"),
    [
        ("http://localhost:5115", "http://localhost:5115/api/v1"),
        ("localhost:5115", "http://localhost:5115/api/v1"),
        ("https://arroyo.example.com/", "https://arroyo.example.com/api/v1"),
        ("http://h:5115/api", "http://h:5115/api/v1"),
        ("http://h:5115/api/v1/", "http://h:5115/api/v1"),
        ("http://h/arroyo/api/v1?x=1#f", "http://h/arroyo/api/v1"),
    ],
)
def test_the_api_address_is_normalised_to_its_v1_base(given: str, base: str) -> None:
    assert str(api_base(given)) == base
