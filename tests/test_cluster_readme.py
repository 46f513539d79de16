"""The README's "From laptop to cluster" section: its console examples print what it shows
(``deploy`` and ``cluster`` against the Arroyo API stand-in), and it names the Arroyo version
the API shapes were taken from."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from arroyo_lite.cli import main
from arroyo_lite.cluster.contract import ARROYO_COMMIT, ARROYO_VERSION, DEFAULT_API
from tests.support.arroyo_api import ArroyoStandIn
from tests.support.threaded_server import serve

REPO = Path(__file__).parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
SECTION = README.split("<!-- section: cluster -->")[1].split("<!-- /section: cluster -->")[0]
CONSOLE_BLOCKS = re.findall(r"```console\n(.*?)```", SECTION, re.DOTALL)


def normalize(text: str, api: str) -> list[str]:
    """Ids and times vary from run to run; the stand-in is not on Arroyo's default port."""
    text = text.replace(api, DEFAULT_API)
    text = re.sub(r"\b(pl|job)_[A-Za-z0-9]{10}\b", r"\1_<id>", text)
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ", "<time>", text)
    return text.splitlines()


def in_order(shown: list[str], actual: list[str]) -> bool:
    it = iter(actual)
    return all(line in it for line in shown)


def test_the_section_names_the_arroyo_version_and_commit() -> None:
    assert f"version **{ARROYO_VERSION}, commit `{ARROYO_COMMIT[:12]}`**" in SECTION


def test_every_console_block_prints_what_it_shows(monkeypatch: pytest.MonkeyPatch) -> None:
    assert len(CONSOLE_BLOCKS) >= 4
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("SHOP_TOKEN", raising=False)  # not needed here for a cluster
    monkeypatch.delenv("ARROYO_API_KEY", raising=False)
    standin = ArroyoStandIn()
    with serve(standin.make_app()) as server:
        api = server.url("")
        for block in CONSOLE_BLOCKS:  # in README order: deploy comes before show
            command, *shown = block.strip().splitlines()
            assert command.startswith("$ arroyo-lite ")
            if standin.pipelines:  # the README's id stands for the one deployed above
                command = re.sub(r"\bpl_[A-Za-z0-9]{10}\b", list(standin.pipelines)[-1], command)
            args = shlex.split(command.replace(DEFAULT_API, api))[2:]
            if args[0] == "deploy":
                args.append("--poll-interval=0.01")  # (the stand-in moves one state per poll)
            result = CliRunner().invoke(main, args)
            expected = 3 if "not portable" in block else 0
            assert result.exit_code == expected, result.output
            actual = normalize(result.output, api)
            assert in_order(normalize("\n".join(shown), api), actual), (shown, actual)
