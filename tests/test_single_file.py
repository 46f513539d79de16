"""The single_file connector: a bounded JSON-lines source and a json / debezium_json file sink,
through a real session and `arroyo-lite run` (which ends by itself when the sources finish)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from arroyo_lite import Session
from arroyo_lite.errors import ArroyoLiteError

ROWS = [{"t": f"2024-01-01T00:00:0{i}Z", "k": i % 2, "v": i} for i in range(5)]


def _input(tmp_path: Path) -> Path:
    path = tmp_path / "in.json"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS), encoding="utf-8")
    return path


def _run(tmp_path: Path, sql: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "p.sql"
    script.write_text(sql, encoding="utf-8")
    command = [sys.executable, "-c", "from arroyo_lite.cli import main; main()"]
    return subprocess.run(
        [*command, "run", str(script), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _source(path: Path) -> str:
    return f"""CREATE TABLE src (t TIMESTAMP, k BIGINT, v BIGINT) WITH (
        connector = 'single_file', path = '{path}', format = 'json', type = 'source');"""


def test_run_copies_a_file_and_ends_by_itself(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    done = _run(
        tmp_path,
        _source(_input(tmp_path))
        + f"""CREATE TABLE dst (v BIGINT, t TIMESTAMP) WITH (
            connector = 'single_file', path = '{out}', format = 'json', type = 'sink');
        INSERT INTO dst SELECT v, t FROM src WHERE v > 0;""",
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines == [{"v": i, "t": f"2024-01-01T00:00:0{i}"} for i in range(1, 5)]


def test_an_aggregate_into_a_debezium_sink_writes_its_changes(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    done = _run(
        tmp_path,
        _source(_input(tmp_path))
        + f"""CREATE TABLE dst (k BIGINT, n BIGINT) WITH (
            connector = 'single_file', path = '{out}', format = 'debezium_json',
            type = 'sink');
        INSERT INTO dst SELECT k, count(*) FROM src GROUP BY k;""",
    )
    assert done.returncode == 0, done.stderr
    final: dict[int, dict[str, int]] = {}
    for line in out.read_text().splitlines():
        change = json.loads(line)
        assert change["op"] in ("c", "d")
        if change["op"] == "d":
            assert final.pop(change["before"]["k"]) == change["before"]
        else:
            assert change["before"] is None
            final[change["after"]["k"]] = change["after"]
    assert final == {0: {"k": 0, "n": 3}, 1: {"k": 1, "n": 2}}


def test_an_updating_query_into_a_json_sink_is_rejected(tmp_path: Path) -> None:
    sql = (
        _source(_input(tmp_path))
        + f"""
        CREATE TABLE dst (n BIGINT) WITH (connector = 'single_file',
            path = '{tmp_path / "o.json"}', format = 'json', type = 'sink');
        INSERT INTO dst SELECT count(*) FROM src;"""
    )
    with Session() as session, pytest.raises(ArroyoLiteError) as info:
        session.execute(sql)
    assert "input is updating, but sink is not configured as an updating sink" in (
        info.value.message
    )


def test_a_missing_file_fails_the_source_and_the_run(tmp_path: Path) -> None:
    done = _run(tmp_path, _source(tmp_path / "nope.json") + "SELECT * FROM src;")
    assert done.returncode == 1
    assert "failed to open file" in done.stderr


def test_the_readme_example_runs(tmp_path: Path) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### The `single_file` connector")[1].split("\n### ")[0]
    sql = section.split("```sql\n")[1].split("```")[0]
    cars = tmp_path / "cars.json"
    cars.write_text(
        '{"timestamp": "2023-09-18T14:23:10Z", "driver_id": 1, "event_type": "pickup"}\n'
        '{"timestamp": "2023-09-18T14:23:11Z", "driver_id": 2, "event_type": "pickup"}\n'
    )
    sql = sql.replace("'cars.json'", f"'{cars}'").replace(
        "'counts.json'", f"'{tmp_path / 'counts.json'}'"
    )
    done = _run(tmp_path, sql)
    assert done.returncode == 0, done.stderr
    lines = (tmp_path / "counts.json").read_text().splitlines()
    assert json.loads(lines[-1]) == {
        "before": None,
        "after": {"event_type": "pickup", "n": 2},
        "op": "c",
    }
