"""Help texts of run/demo/repl (click's CliRunner), and the REPL's input helpers."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from arroyo_lite.cli import main
from arroyo_lite.demo import quickstart_sql
from arroyo_lite.terminal.repl_input import HISTORY_ENV, history_path, is_complete, split_script


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("run", ["FILE", "--for", "--format", "table|jsonl|csv", "--state-dir", "--progress"]),
        ("demo", ["--for", "--port", "8765", "--format", "--show-sql", "--state-dir"]),
        ("repl", ["FILE", "--state-dir", "--history", "\\live", "\\status"]),
    ],
)
def test_help_documents_every_option(command, expected):
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    for word in expected:
        assert word in result.output


def test_commands_are_listed():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("run", "demo", "repl"):
        assert f"  {command} " in result.output


def test_demo_show_sql_prints_the_quickstart():
    result = CliRunner().invoke(main, ["demo", "--show-sql"])
    assert result.exit_code == 0
    assert result.output == quickstart_sql()


def test_run_rejects_a_missing_file_and_a_bad_format(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(main, ["run", str(tmp_path / "nope.sql")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    sql = tmp_path / "x.sql"
    sql.write_text("SELECT 1;")
    bad = runner.invoke(main, ["run", str(sql), "--format", "xml"])
    assert bad.exit_code == 2 and "'xml' is not one of" in bad.output
    negative = runner.invoke(main, ["run", str(sql), "--for", "-1"])
    assert negative.exit_code == 2


@pytest.mark.parametrize(
    ("text", "complete"),
    [
        ("SELECT 1;", True),
        ("SELECT 1", False),
        ("SELECT ';'", False),
        ("SELECT 'a;\n", False),  # unterminated string: more lines are coming
        ("SELECT 1; -- done", True),
        ("SELECT 1 -- ;", False),
        ("/* ; */ SELECT 1", False),
        ("\\tables", True),
        ("   ", True),
        ("CREATE TABLE t (a TEXT) WITH (\n  connector = 'impulse'\n);", True),
    ],
)
def test_is_complete(text, complete):
    assert is_complete(text) is complete


def test_split_script_groups_lines_into_inputs():
    lines = [
        "\\tables\n",
        "\n",
        "SELECT 1,\n",
        "  ';' AS s;\n",
        "SELECT 2; SELECT 3;\n",
        "  \\d t\n",
        "SELECT 4\n",
    ]
    assert list(split_script(lines)) == [
        "\\tables",
        "SELECT 1,\n  ';' AS s;\n",
        "SELECT 2; SELECT 3;\n",
        "\\d t",
        "SELECT 4\n",
    ]


def test_history_path_precedence(tmp_path):
    assert history_path({HISTORY_ENV: str(tmp_path / "h")}) == tmp_path / "h"
    xdg = history_path({"XDG_STATE_HOME": str(tmp_path)})
    assert xdg == tmp_path / "arroyo-lite" / "history"
    assert history_path({}).name == ".arroyo_lite_history"
