"""An ``INSERT INTO`` whose query fails on the data while the pipeline runs (DuckDB cannot
cast a value): the failure is reported on stderr as that INSERT's, without a traceback, and
``run`` exits 1 instead of looking successful."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)


def test_a_failing_insert_fails_the_run_with_a_clear_line(tmp_path: Path) -> None:
    source = tmp_path / "in.json"
    # 40 good lines, then one that does not cast.
    source.write_text("".join(json.dumps({"v": str(n)}) + "\n" for n in range(40)) + '{"v": "x"}\n')
    out = tmp_path / "out.json"
    sql = tmp_path / "p.sql"
    sql.write_text(
        f"""
CREATE TABLE src (v TEXT) WITH (
  connector = 'single_file', path = '{source}', format = 'json', type = 'source');
CREATE TABLE dst (n BIGINT) WITH (
  connector = 'single_file', path = '{out}', format = 'json', type = 'sink');
INSERT INTO dst SELECT CAST(v AS BIGINT) AS n FROM src;
"""
    )
    done = subprocess.run(
        [sys.executable, "-c", "from arroyo_lite.cli import main; main()", "run", str(sql)],
        capture_output=True, text=True, timeout=100,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert "error: INSERT INTO dst stopped: " in done.stderr
    assert "'x'" in done.stderr  # DuckDB's conversion error names the value
    # What was written (if the good rows came in an earlier evaluation) is whole rows only.
    written = [json.loads(line)["n"] for line in out.read_text().splitlines()]
    assert written == list(range(len(written)))
