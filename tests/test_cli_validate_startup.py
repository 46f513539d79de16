"""What ``arroyo-lite validate`` of a simple file imports (behaviour, never time).

Checking a file is parsing it (sqlglot) and the checks of the front end: the runtime's
libraries stay out. pyarrow (and numpy) only when a table's Arrow types are needed, DuckDB
only when a query is not vouched for by ``query_proof`` (a view, a join, a function call, a
virtual column), jsonschema only when an option's value is wrong, aiohttp never. Each case
runs ``validate`` in a fresh interpreter (:func:`tests.test_cli_startup.loaded_after`) and
also checks what it printed, so a check skipped by mistake would show as a missing line.
The timing is ``benchmarks/startup.py``'s business.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

RUNTIME = {"aiohttp", "duckdb", "pyarrow", "numpy", "jsonschema", "rich", "prompt_toolkit",
           "asyncio"}  # fmt: skip

# Runs validate in-process, then prints its exit status, its output and the modules loaded.
PROBE = """
import contextlib, io, json, sys
watched = json.loads(sys.argv[2])
sys.argv = ["arroyo-lite", "validate", sys.argv[1]]
out, err = io.StringIO(), io.StringIO()
from arroyo_lite.cli import main
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
        main()
        code = 0
    except SystemExit as e:
        code = e.code or 0
print(json.dumps({"code": code, "out": out.getvalue(), "err": err.getvalue(),
                  "loaded": sorted(m for m in watched if m in sys.modules)}))
"""

SIMPLE = """\
CREATE TABLE prices (symbol TEXT, price DOUBLE, at TIMESTAMP) WITH (
  connector = 'polling_http', endpoint = 'http://127.0.0.1:8765/prices',
  poll_interval_ms = '1000', format = 'json', headers = 'Accept: application/json');
CREATE TABLE alerts (symbol TEXT, n BIGINT) WITH (connector = 'stdout', format = 'json');
SELECT symbol, avg(price) AS mean, count(*) FROM prices WHERE price > 0 GROUP BY symbol;
INSERT INTO alerts SELECT symbol, CAST(price AS BIGINT) FROM prices WHERE price > 100;
"""


def validate(tmp_path: Path, text: str) -> dict:
    path = tmp_path / "f.sql"
    path.write_text(text)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(path), json.dumps(sorted(RUNTIME))],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    result: dict = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_a_simple_file_loads_none_of_the_runtime_libraries(tmp_path):
    result = validate(tmp_path, SIMPLE)
    assert result["code"] == 0, result["err"]
    assert "table prices  connector=polling_http" in result["out"]
    assert "insert into alerts" in result["out"]
    assert result["loaded"] == []


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        # Errors that binding finds still come out of DuckDB, worded and placed as before.
        ("SELECT nope FROM prices;", "column 'nope' not found"),
        ("SELECT symbol, price FROM prices GROUP BY symbol;", "GROUP BY"),
        ("SELECT upper(symbol) FROM pricez;", "table 'pricez' not found"),
    ],
)
def test_a_query_it_cannot_vouch_for_is_bound_by_duckdb(tmp_path, tail, message):
    result = validate(tmp_path, SIMPLE + tail + "\n")
    assert result["code"] == 1
    assert message in result["err"]
    assert "f.sql:7:" in result["err"]
    assert "duckdb" in result["loaded"] and "aiohttp" not in result["loaded"]


def test_a_bad_option_value_brings_jsonschema_for_its_message(tmp_path):
    result = validate(tmp_path, SIMPLE.replace("'1000'", "'-5'"))
    assert result["code"] == 1
    assert "invalid value for 'poll_interval_ms': -5 (must be greater than 0)" in result["err"]
    assert "jsonschema" in result["loaded"]
    assert "duckdb" not in result["loaded"] and "aiohttp" not in result["loaded"]


def test_a_view_is_bound_by_duckdb(tmp_path):
    view = "CREATE VIEW v AS SELECT symbol FROM prices;\nSELECT symbol FROM v;\n"
    result = validate(tmp_path, SIMPLE + view)
    assert result["code"] == 0, result["err"]
    assert "view v" in result["out"]
    assert "duckdb" in result["loaded"] and "aiohttp" not in result["loaded"]
