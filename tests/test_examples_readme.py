"""The README's front-end section: every SQL block validates (or fails as it says), and every
console example prints what the README shows."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from arroyo_lite.cli import main
from arroyo_lite.errors import ValidationErrors
from arroyo_lite.sql import compile_sql

REPO = Path(__file__).parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")
SECTION = README.split("<!-- section: frontend -->")[1].split("<!-- /section: frontend -->")[0]
SQL_BLOCKS = re.findall(r"```sql\n(.*?)```", SECTION, re.DOTALL)
CONSOLE_BLOCKS = re.findall(r"```console\n(.*?)```", SECTION, re.DOTALL)
ERROR_BLOCKS = re.findall(r"```text\n(.*?)```", SECTION, re.DOTALL)
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", SECTION, re.DOTALL)
ENV = {"API_TOKEN": "token-for-readme-tests", "GITHUB_TOKEN": "ghp_readme"}


def test_section_has_examples() -> None:
    assert len(SQL_BLOCKS) >= 2 and len(CONSOLE_BLOCKS) >= 2


@pytest.mark.parametrize("block", SQL_BLOCKS, ids=lambda b: b.splitlines()[0][:40])
def test_sql_block(block: str) -> None:
    first = block.splitlines()[0]
    if not first.startswith("-- rejected: "):
        assert compile_sql(block, file="readme.sql", env=ENV).statements
        return
    with pytest.raises(ValidationErrors) as info:
        compile_sql(block, file="quotes.sql", env=ENV)
    error = info.value.errors[0]
    assert error.message == first[len("-- rejected: ") :]
    assert error.hint is not None


def test_error_output_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README shows validate's exact output for its rejected example."""
    [rejected] = [b for b in SQL_BLOCKS if b.startswith("-- rejected: ")]
    [block] = ERROR_BLOCKS
    command, *shown = block.strip("\n").splitlines()
    (tmp_path / "quotes.sql").write_text(rejected, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("NOPE_TOKEN", raising=False)  # the example's missing variable
    result = CliRunner().invoke(main, shlex.split(command)[2:])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == shown


@pytest.mark.parametrize("block", CONSOLE_BLOCKS, ids=lambda b: b.splitlines()[0][:40])
def test_console_block(block: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    command, *shown = block.strip().splitlines()
    assert command.startswith("$ arroyo-lite ")
    result = CliRunner().invoke(main, shlex.split(command)[2:])
    assert result.exit_code == 0, result.output
    actual = result.output.splitlines()
    for line in shown:
        assert line in actual


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: b.splitlines()[0][:40])
def test_python_block(block: str) -> None:
    exec(compile(block, "README.md", "exec"), {})  # the block asserts its own results
