"""The README's ``infer`` section: its example prints exactly what the README shows, and the
statement it prints validates."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from click.testing import CliRunner

from arroyo_lite.cli import main
from tests.support.http_app import STATE, url
from tests.support.inprocess import invoke

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
SECTION = README.split("<!-- section: infer -->")[1].split("<!-- /section: infer -->")[0]
[BODY] = re.findall(r"```json\n(.*?)```", SECTION, re.DOTALL)
[CONSOLE] = re.findall(r"```console\n(.*?)```", SECTION, re.DOTALL)
README_URL = "http://127.0.0.1:8765/orders"


async def test_the_readme_example_prints_what_it_shows(server, tmp_path):
    command, *shown = CONSOLE.splitlines()
    argv = shlex.split(command.removeprefix("$ "))
    assert argv[:3] == ["arroyo-lite", "infer", README_URL]
    server.app[STATE].sequence = [BODY.encode()]
    here = url(server, "/sequence")
    done = await invoke("infer", here, *argv[3:], API_TOKEN="readme-token")
    assert done.code == 0, done.stderr
    assert done.stdout.replace(here, README_URL).splitlines() == shown
    path = tmp_path / "orders.sql"
    path.write_text(done.stdout)
    result = CliRunner(env={"API_TOKEN": "readme-token"}).invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "readme-token" not in done.stdout
