"""Debezium changelogs in and out: a ``debezium_json`` source is an updating table (its
envelopes unrolled into ``_retract`` changes, read as the rows they leave), and a
``debezium_json`` sink writes an update as one ``u`` record, as Arroyo does. Real files,
``arroyo-lite run`` and DuckDB."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow as pa

from arroyo_lite.config import RETRACT_COLUMN, TableConfig, TableKind
from arroyo_lite.formats.encode import make_encoder
from arroyo_lite.query.changelog import changes, net, with_key
from arroyo_lite.sql import compile_sql

ROW = {"id": 1, "name": "a", "n": 1}


def envelope(op: str, before: dict[str, Any] | None, after: dict[str, Any] | None) -> str:
    return json.dumps({"before": before, "after": after, "op": op, "source": {"db": "x"}})


def _run(tmp_path: Path, sql: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "p.sql"
    script.write_text(sql, encoding="utf-8")
    command = [sys.executable, "-c", "from arroyo_lite.cli import main; main()", "run"]
    return subprocess.run(
        [*command, str(script), "--no-progress"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _records(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _replay(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows a Debezium changelog leaves (as Arroyo's test harness replays it)."""
    rows: list[dict[str, Any]] = []
    for r in records:
        if r["op"] in ("u", "d"):
            rows.remove(r["before"])
        if r["op"] in ("c", "u"):
            rows.append(r["after"])
    return rows


def _pipeline(tmp_path: Path, lines: list[str], query: str, sink_columns: str) -> Path:
    source = tmp_path / "in.json"
    source.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    out = tmp_path / "out.json"
    done = _run(
        tmp_path,
        f"""CREATE TABLE src (id INT PRIMARY KEY, name TEXT, n INT) WITH (
            connector = 'single_file', path = '{source}', format = 'debezium_json',
            type = 'source');
        CREATE TABLE dst ({sink_columns}) WITH (connector = 'single_file', path = '{out}',
            format = 'debezium_json', type = 'sink');
        INSERT INTO dst {query};""",
    )
    assert done.returncode == 0, done.stderr
    return out


def test_a_debezium_source_passes_through_as_its_final_rows(tmp_path: Path) -> None:
    b = {"id": 2, "name": "b", "n": 5}
    lines = [
        envelope("c", None, ROW),
        envelope("r", None, b),
        envelope("u", ROW, {**ROW, "n": 2}),
        envelope("d", b, None),
        envelope("u", {**ROW, "n": 2}, {**ROW, "n": 3}),
    ]
    out = _pipeline(tmp_path, lines, "SELECT * FROM src", "id INT PRIMARY KEY, name TEXT, n INT")
    assert _replay(_records(out)) == [{**ROW, "n": 3}]


def test_an_aggregate_over_a_debezium_source_follows_its_updates(tmp_path: Path) -> None:
    lines = [
        envelope("c", None, ROW),
        envelope("c", None, {"id": 2, "name": "a", "n": 10}),
        envelope("u", ROW, {**ROW, "name": "b"}),
        envelope("d", {"id": 2, "name": "a", "n": 10}, None),
    ]
    out = _pipeline(
        tmp_path,
        lines,
        "SELECT name, count(*), sum(n) FROM src GROUP BY name",
        "name TEXT PRIMARY KEY, c BIGINT, s BIGINT",
    )
    assert _replay(_records(out)) == [{"name": "b", "c": 1, "s": 1}]


def test_a_debezium_source_is_refused_by_an_append_only_sink(tmp_path: Path) -> None:
    source = tmp_path / "in.json"
    source.write_text(envelope("c", None, ROW) + "\n", encoding="utf-8")
    done = _run(
        tmp_path,
        f"""CREATE TABLE src (id INT PRIMARY KEY, name TEXT, n INT) WITH (
            connector = 'single_file', path = '{source}', format = 'debezium_json',
            type = 'source');
        CREATE TABLE dst (id INT) WITH (connector = 'single_file',
            path = '{tmp_path / "out.json"}', format = 'json', type = 'sink');
        INSERT INTO dst SELECT id FROM src;""",
    )
    assert done.returncode != 0
    assert "input is updating, but sink is not configured as an updating sink" in done.stderr


def _sink(primary_key: bool) -> TableConfig:
    key = " PRIMARY KEY" if primary_key else ""
    program = compile_sql(
        f"CREATE TABLE out (k TEXT{key}, v BIGINT) WITH (connector = 'single_file', "
        "path = 'o.json', format = 'debezium_json', type = 'sink');"
    )
    (table,) = program.tables
    assert table.kind is TableKind.SINK
    return table


def _encoded(config: TableConfig, data: pa.Table) -> list[dict[str, Any]]:
    batch = data.combine_chunks().to_batches()[0]
    text = make_encoder(config).encode(batch).decode()
    return [json.loads(line) for line in text.splitlines()]


OLD = pa.table({"k": ["x", "y", "z"], "v": [1, 2, 3]})
NEW = pa.table({"k": ["x", "w"], "v": [10, 4]})


def test_an_update_of_a_key_is_one_u_record_with_before_and_after() -> None:
    # x updated, y and z retracted, w added: by the sink's PRIMARY KEY.
    records = _encoded(_sink(primary_key=True), changes(OLD, NEW))
    assert records == [
        {"before": {"k": "x", "v": 1}, "after": {"k": "x", "v": 10}, "op": "u"},
        {"before": {"k": "y", "v": 2}, "after": None, "op": "d"},
        {"before": {"k": "z", "v": 3}, "after": None, "op": "d"},
        {"before": None, "after": {"k": "w", "v": 4}, "op": "c"},
    ]


def test_a_batch_key_wins_and_an_add_then_retract_writes_nothing() -> None:
    data = with_key(changes(OLD.slice(0, 1), NEW), ["k"])
    added_and_gone = changes(pa.table({"k": ["q"], "v": [7]}), pa.table({"k": ["q"], "v": [7]}))
    flipped = added_and_gone.set_column(
        added_and_gone.schema.get_field_index(RETRACT_COLUMN),
        RETRACT_COLUMN,
        pa.array([False, True]),
    )
    assert _encoded(_sink(primary_key=False), data)[0]["op"] == "u"
    assert _encoded(_sink(primary_key=True), with_key(flipped, ["k"])) == []


def test_without_a_key_each_change_is_its_own_record() -> None:
    records = _encoded(_sink(primary_key=False), changes(OLD.slice(0, 1), NEW.slice(0, 1)))
    assert [r["op"] for r in records] == ["d", "c"]


def test_net_is_what_a_changelog_leaves() -> None:
    log = pa.concat_tables(
        [
            changes(OLD.slice(0, 0), OLD),
            changes(OLD.slice(0, 2), NEW),
            changes(NEW.slice(1, 1), OLD.slice(0, 0)),
        ]
    )
    left = net(log).sort_by("k").to_pylist()
    assert left == [{"k": "x", "v": 10}, {"k": "z", "v": 3}]
