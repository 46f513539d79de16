"""``run`` of a local table never imports pandas (behaviour, not time).

pyarrow imports pandas, when it is installed, the first time a Python value is converted
(``pa.array([...])``, ``pa.scalar``, ``schema.empty_table()``): about 0.5 s before the first
row. Those paths use :mod:`arroyo_lite.formats.pandas_free` instead; the speed figure is
``benchmarks/first_row.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from arroyo_lite.formats.pandas_free import empty_table, int64_range, int64_scalar, string_scalar

# Runs the CLI in-process; its last line says whether pandas got imported.
PROBE = """
import json, sys
from arroyo_lite.cli import main
sys.argv = ["arroyo-lite", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
sys.stdout.flush()
print(json.dumps("pandas" in sys.modules))
"""


@pytest.mark.parametrize("fmt", ["jsonl", "table", "csv"])
def test_run_of_an_impulse_table_to_completion_imports_no_pandas(tmp_path, fmt):
    pytest.importorskip("pandas")  # installed, so pyarrow would import it if asked
    sql = tmp_path / "ticks.sql"
    sql.write_text(
        "CREATE TABLE t WITH (connector = 'impulse', event_rate = '100', message_count = '5');\n"
        "SELECT counter FROM t;\n"
    )
    argv = ["run", "--format", fmt, "--no-progress", str(sql)]
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(argv)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    *rows, pandas_loaded = done.stdout.strip().splitlines()
    for n in range(5):
        assert any(str(n) in row for row in rows), rows  # every row was printed
    assert json.loads(pandas_loaded) is False


def test_the_builders_give_what_pyarrow_gives():
    schema = pa_schema()
    assert empty_table(schema).equals(schema.empty_table())
    assert empty_table(schema).schema.metadata == {b"k": b"v"}
    assert int64_range(3, 6).to_pylist() == [3, 4, 5]
    assert int64_range(3, 3).to_pylist() == [] == int64_range(3, 1).to_pylist()
    assert int64_scalar(-7).as_py() == -7
    assert string_scalar("é\n").as_py() == "é\n" and string_scalar("").as_py() == ""


def pa_schema():
    import pyarrow as pa

    return pa.schema([("a", pa.int64()), ("b", pa.string())], metadata={"k": "v"})
