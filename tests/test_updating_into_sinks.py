"""Which queries a sink takes, decided when the program is validated (as Arroyo's planner):
an updating query into an append-only sink is refused by ``arroyo-lite validate`` with
Arroyo's message, the file:line:col of the INSERT and a hint; and a memory table fed by an
append-only query is itself append-only (it follows its rows, as in Arroyo). Real files and
``arroyo-lite`` subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-c", "from arroyo_lite.cli import main; main()"]
MESSAGE = (
    "input is updating, but sink is not configured as an updating sink "
    "(hint: use `format = 'debezium_json'`)"
)


def _cli(tmp_path: Path, command: str, sql: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "p.sql"
    script.write_text(sql, encoding="utf-8")
    extra = ["--no-progress"] if command == "run" else []
    return subprocess.run(
        [*CLI, command, str(script), *extra],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _tables(tmp_path: Path, sink_format: str) -> str:
    source = tmp_path / "in.json"
    source.write_text(
        "".join(json.dumps({"k": f"k{i % 3}", "v": i}) + "\n" for i in range(30)),
        encoding="utf-8",
    )
    return f"""CREATE TABLE src (k TEXT, v BIGINT) WITH (connector = 'single_file',
  path = '{source}', format = 'json', type = 'source');
CREATE TABLE dst (k TEXT, n BIGINT) WITH (connector = 'single_file',
  path = '{tmp_path / "out.json"}', format = '{sink_format}', type = 'sink');
"""


@pytest.mark.parametrize(
    "query",
    [
        "SELECT k, count(*) FROM src GROUP BY k",
        "SELECT DISTINCT k, v FROM src",
        "SELECT k, n FROM (SELECT k, sum(v) AS n FROM src GROUP BY k) WHERE n > 3",
    ],
)
def test_validate_refuses_an_updating_query_into_an_append_only_sink(
    tmp_path: Path, query: str
) -> None:
    done = _cli(tmp_path, "validate", _tables(tmp_path, "json") + f"INSERT INTO dst\n{query};")
    assert done.returncode != 0
    assert f"p.sql:5:1: error: {MESSAGE}" in done.stderr
    assert "hint: write the sink with format = 'debezium_json'" in done.stderr


def test_the_same_query_into_a_debezium_sink_validates(tmp_path: Path) -> None:
    sql = (
        _tables(tmp_path, "debezium_json")
        + "INSERT INTO dst SELECT k, count(*) FROM src GROUP BY k;"
    )
    done = _cli(tmp_path, "validate", sql)
    assert done.returncode == 0, done.stderr


def test_a_memory_table_fed_by_a_source_is_append_only(tmp_path: Path) -> None:
    sql = _tables(tmp_path, "json") + (
        "CREATE TABLE mem (k TEXT, v BIGINT);\n"
        "INSERT INTO mem SELECT k, v FROM src;\n"
        "INSERT INTO dst SELECT k, v * 2 FROM mem WHERE v >= 10;"
    )
    done = _cli(tmp_path, "run", sql)
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in (tmp_path / "out.json").read_text().splitlines()]
    assert sorted(r["n"] for r in rows) == [2 * v for v in range(10, 30)]
