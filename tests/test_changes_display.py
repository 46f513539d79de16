"""Changes shown with their kind: ``run --changes`` prints an updating query's changes, each
row with ``_op`` (``+`` added, ``-`` retracted) in jsonl, csv and tables; replaying them gives
the query's final result. Real files, an ``arroyo-lite run`` subprocess and DuckDB."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow as pa
from rich.console import Console

from arroyo_lite.query.changelog import changes
from arroyo_lite.terminal.render import change_kinds, rich_table, to_jsonl

CLI = [sys.executable, "-c", "from arroyo_lite.cli import main; main()"]


def _program(tmp_path: Path) -> Path:
    source = tmp_path / "in.json"
    # 200 rows: several source batches of 32 lines, so the counts are updated several times.
    source.write_text(
        "".join(json.dumps({"k": f"k{i % 3}", "v": i}) + "\n" for i in range(200)),
        encoding="utf-8",
    )
    script = tmp_path / "p.sql"
    script.write_text(
        f"""CREATE TABLE src (k TEXT, v BIGINT) WITH (connector = 'single_file',
          path = '{source}', format = 'json', type = 'source');
        SELECT k, count(*) AS n FROM src GROUP BY k;""",
        encoding="utf-8",
    )
    return script


def test_run_changes_prints_each_change_with_its_kind(tmp_path: Path) -> None:
    done = subprocess.run(
        [*CLI, "run", str(_program(tmp_path)), "--changes", "--format", "jsonl", "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert {r["_op"] for r in rows} <= {"+", "-"}
    assert all(list(r)[0] == "_op" for r in rows)
    state: Counter[tuple[str, int]] = Counter()
    for r in rows:
        state[(r["k"], r["n"])] += 1 if r["_op"] == "+" else -1
        assert state[(r["k"], r["n"])] >= 0, "a retraction of a row never added"
    assert +state == Counter({("k0", 67): 1, ("k1", 67): 1, ("k2", 66): 1})


def test_a_change_batch_shows_a_plus_minus_column_everywhere() -> None:
    batch = change_kinds(
        changes(pa.table({"k": ["a"], "n": [1]}), pa.table({"k": ["a"], "n": [2]}))
    )
    assert batch.column_names == ["_op", "k", "n"]
    assert [json.loads(line) for line in to_jsonl(batch).splitlines()] == [
        {"_op": "-", "k": "a", "n": 1},
        {"_op": "+", "k": "a", "n": 2},
    ]
    console = Console(width=60, record=True)
    console.print(rich_table(batch))
    lines = [line.split() for line in console.export_text().splitlines()]
    assert lines[0] == ["_op", "k", "n"]
    assert lines[2:4] == [["-", "a", "1"], ["+", "a", "2"]]
    plain = pa.table({"k": ["a"]})
    assert change_kinds(plain) is plain
