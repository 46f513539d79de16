"""What ``run`` prints for an updating query by default: its changes on a pipe (as Arroyo's
stdout sink writes an updating query's changelog), its whole results with ``--no-changes``.
Real ``arroyo-lite run`` processes over an ``impulse`` source."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson

PIPELINE = """CREATE TABLE imp WITH (connector = 'impulse', event_rate = '1000',
    message_count = '6');
SELECT counter % 2 AS parity, count(*) AS n FROM imp GROUP BY 1;
"""


def _run(tmp_path: Path, *options: str) -> list[dict[str, object]]:
    script = tmp_path / "p.sql"
    script.write_text(PIPELINE, encoding="utf-8")
    command = [sys.executable, "-c", "from arroyo_lite.cli import main; main()", "run"]
    done = subprocess.run(
        [*command, str(script), "--no-progress", *options],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [orjson.loads(line) for line in done.stdout.splitlines()]


def _replay(rows: list[dict[str, object]]) -> list[dict[str, object]]:
    current: list[dict[str, object]] = []
    for row in rows:
        values = {k: v for k, v in row.items() if k != "_op"}
        if row["_op"] == "-":
            current.remove(values)
        else:
            current.append(values)
    return sorted(current, key=lambda r: str(r["parity"]))


def test_an_updating_query_prints_its_changes_on_a_pipe(tmp_path: Path) -> None:
    rows = _run(tmp_path, "--format", "jsonl")
    assert rows and all(r["_op"] in ("+", "-") for r in rows)
    assert not any("_update" in r for r in rows)
    assert _replay(rows) == [{"parity": 0, "n": 3}, {"parity": 1, "n": 3}]


def test_no_changes_prints_whole_results(tmp_path: Path) -> None:
    rows = _run(tmp_path, "--format", "jsonl", "--no-changes")
    assert rows and not any("_op" in r for r in rows)
    last = max(int(str(r["_update"])) for r in rows)
    final = [{k: v for k, v in r.items() if k != "_update"} for r in rows if r["_update"] == last]
    assert sorted(final, key=lambda r: str(r["parity"])) == [
        {"parity": 0, "n": 3},
        {"parity": 1, "n": 3},
    ]
