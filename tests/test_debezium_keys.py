"""Keys of updating results: a ``debezium_json`` source must name its PRIMARY KEY (refused at
validate with Arroyo's message otherwise), and an updating aggregate names its GROUP BY keys
on its change batches, so a ``debezium_json`` sink without a PRIMARY KEY writes one ``u``
record (before and after) per updated group, as Arroyo does. Real files, a named pipe and
``arroyo-lite`` subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from arroyo_lite.query.continuous import AggregatePlan, UpdatingPlan, plan_for
from arroyo_lite.query.incremental import group_key_positions
from arroyo_lite.query.shape import QueryKind

CLI = [sys.executable, "-c", "from arroyo_lite.cli import main; main()"]
#: One batch of the single_file source (operator.BATCH_LINES).
BATCH = 32


def _cli(tmp_path: Path, command: str, sql: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "p.sql"
    script.write_text(sql, encoding="utf-8")
    return subprocess.run(
        [*CLI, command, str(script)], capture_output=True, text=True, timeout=120, check=False
    )


def test_a_debezium_source_without_a_primary_key_is_refused_at_validate(tmp_path: Path) -> None:
    sql = (
        "CREATE TABLE src (id INT, name TEXT) WITH (\n"
        "  connector = 'single_file', path = 'in.json', type = 'source',\n"
        "  format = 'debezium_json');\n"
        "SELECT * FROM src;\n"
    )
    done = _cli(tmp_path, "validate", sql)
    assert done.returncode != 0
    assert "Debezium source must have at least one PRIMARY KEY field" in done.stderr
    assert "p.sql:3:12" in done.stderr  # the format option's value
    assert "id <type> PRIMARY KEY" in done.stderr
    assert "Traceback" not in done.stderr
    keyed = sql.replace("id INT,", "id INT PRIMARY KEY,")
    assert _cli(tmp_path, "validate", keyed).returncode == 0


def test_a_debezium_sink_needs_no_primary_key(tmp_path: Path) -> None:
    done = _cli(
        tmp_path,
        "validate",
        "CREATE TABLE dst (n BIGINT) WITH (connector = 'single_file', path = 'o.json', "
        "format = 'debezium_json', type = 'sink');\n"
        "CREATE TABLE src (k TEXT, v BIGINT) WITH (connector = 'single_file', "
        "path = 'in.json', format = 'json', type = 'source');\n"
        "INSERT INTO dst SELECT count(*) FROM src;\n",
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize(
    ("sql", "positions"),
    [
        ("SELECT k, count(*) AS n FROM src GROUP BY k", (0,)),
        ("SELECT count(*) AS n, k FROM src GROUP BY 2", (1,)),
        ("SELECT v % 3 AS m, k, sum(v) FROM src GROUP BY k, m", (1, 0)),
        ("SELECT count(*) FROM src GROUP BY k", ()),  # the key is not in the result
        ("SELECT count(*) FROM src", ()),
        ("SELECT k, unnest(list(v)) FROM src GROUP BY k", ()),  # several rows per group
        ("SELECT k, n FROM (SELECT k, count(*) AS n FROM src GROUP BY k)", ()),
    ],
)
def test_the_group_key_positions_of_a_query(sql: str, positions: tuple[int, ...]) -> None:
    assert group_key_positions(sql) == positions


def _feed_in_two_batches(tmp_path: Path, query: str) -> list[dict[str, Any]]:
    """Run ``INSERT INTO dst <query>`` over a named pipe fed one batch, then (once the sink
    wrote the first results) a second batch that changes every group; the sink's records."""
    pipe = tmp_path / "in.json"
    os.mkfifo(pipe)
    out = tmp_path / "out.json"
    script = tmp_path / "p.sql"
    script.write_text(
        f"""CREATE TABLE src (k TEXT, v BIGINT) WITH (connector = 'single_file',
  path = '{pipe}', format = 'json', type = 'source');
CREATE TABLE dst (k TEXT, n BIGINT) WITH (connector = 'single_file',
  path = '{out}', format = 'debezium_json', type = 'sink');
INSERT INTO dst {query};
""",
        encoding="utf-8",
    )
    run = subprocess.Popen(
        [*CLI, "run", str(script), "--no-progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with pipe.open("w", encoding="utf-8") as feed:
            for i in range(2 * BATCH):
                feed.write(json.dumps({"k": f"k{i % 3}", "v": i}) + "\n")
                if i == BATCH - 1:
                    feed.flush()
                    # Wait (not a timing assertion) for the first batch's three groups.
                    deadline = time.monotonic() + 60
                    while time.monotonic() < deadline and (
                        not out.exists() or len(out.read_text().splitlines()) < 3
                    ):
                        time.sleep(0.05)
        _, stderr = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert run.returncode == 0, stderr
    return [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize(
    "query",
    [
        "SELECT k, count(*) FROM src GROUP BY k",  # per-group state (AggregatePlan)
        "SELECT k, count(*) FROM src GROUP BY k HAVING max(v) - min(v) >= 0 LIMIT 10",
    ],
)
def test_an_updated_group_is_one_u_record_without_a_sink_primary_key(
    tmp_path: Path, query: str
) -> None:
    records = _feed_in_two_batches(tmp_path, query)
    first, second = records[:3], records[3:]
    assert sorted(r["after"]["k"] for r in first) == ["k0", "k1", "k2"]
    assert all(r["op"] == "c" and r["before"] is None for r in first)
    # The second batch updates each of the three groups: one `u` each, before and after.
    assert [r["op"] for r in second] == ["u", "u", "u"], records
    counts = {r["after"]["k"]: (r["before"]["n"], r["after"]["n"]) for r in second}
    assert counts == {"k0": (11, 22), "k1": (11, 21), "k2": (10, 21)}
    assert all(r["before"]["k"] == r["after"]["k"] for r in second)


def test_both_plans_of_an_updating_aggregate_know_the_key() -> None:
    import pyarrow as pa

    from arroyo_lite.query.shape import QueryShape

    schemas = {"src": pa.schema([("k", pa.string()), ("v", pa.int64())])}
    sources = frozenset({"src"})
    shape = QueryShape(tables=sources, aggregating=True, reads_status=False)
    state_kept = plan_for(
        QueryKind.UPDATING, sources, shape, sql="SELECT k, count(*) FROM src GROUP BY k",
        schemas=schemas, changelog=True,
    )  # fmt: skip
    whole = plan_for(
        QueryKind.UPDATING, sources, shape,
        sql="SELECT k, count(*) FROM src GROUP BY k LIMIT 10", schemas=schemas, changelog=True,
    )  # fmt: skip
    assert isinstance(state_kept, AggregatePlan) and state_kept.key == (0,)
    assert isinstance(whole, UpdatingPlan) and whole.key == (0,)
    state_kept.close()
