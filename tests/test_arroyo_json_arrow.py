"""``json -> key`` as Arroyo means it (``json_get``: the value as JSON text, the text ``null``
for a missing key), through the session on real DuckDB (sql/transpile.py); and a
``single_file`` source's lines, each one message (as Arroyo's source reads them)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from arroyo_lite import Session


def test_the_arrow_gives_json_text_and_null_text_for_a_missing_key() -> None:
    with Session() as session:
        session.execute("CREATE TABLE cars (value JSON)")
        session.execute(
            """INSERT INTO cars VALUES ('{"driver_id": 155, "event_type": "pickup", "n": null}')"""
        )
        rows = session.query(
            "SELECT value->'driver_id' AS b, value->'event_type' AS c, value->'absent' AS d,"
            " value->'n' AS n, value->>'event_type' AS t FROM cars"
        ).to_pylist()
    assert rows == [{"b": "155", "c": '"pickup"', "d": "null", "n": "null", "t": "pickup"}]


def test_a_single_file_source_makes_one_value_per_line(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text('{"a": 1}\n{"a": 2}\nthird\n', encoding="utf-8")
    out = tmp_path / "out.json"
    script = tmp_path / "p.sql"
    script.write_text(
        f"""CREATE TABLE raw (value TEXT) WITH (connector = 'single_file', path = '{source}',
          format = 'raw_string', type = 'source');
        CREATE TABLE dst (value TEXT) WITH (connector = 'single_file', path = '{out}',
          format = 'json', type = 'sink');
        INSERT INTO dst SELECT value FROM raw;""",
        encoding="utf-8",
    )
    command = [sys.executable, "-c", "from arroyo_lite.cli import main; main()", "run"]
    done = subprocess.run(
        [*command, str(script), "--no-progress"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    values = sorted(json.loads(line)["value"] for line in out.read_text().splitlines())
    assert values == sorted(['{"a": 1}', '{"a": 2}', "third"])
