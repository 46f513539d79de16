"""A ``run --format jsonl`` that ends at once still exits cleanly (behaviour, never time).

The JSON output's DuckDB database is made in the background from the start of ``run``, before
the SQL compiles (``terminal/watch.prepare_output``, ``query/connection.open_in_order``); a
run that ends before the database is made (at once, or on bad SQL) must wait for it: a
daemon thread stopped inside DuckDB at interpreter exit aborts the process (``terminate
called ...``, exit status 134) or crashes it (139).
"""

from __future__ import annotations

import subprocess
import sys


def test_a_jsonl_run_that_ends_at_once_exits_zero_every_time(tmp_path):
    sql = tmp_path / "t.sql"
    sql.write_text(
        "CREATE TABLE t WITH (connector = 'impulse', event_rate = 10);\nSELECT counter FROM t;\n"
    )
    argv = [sys.executable, "-c", "from arroyo_lite.cli import main; main()", "run", str(sql)]
    for _ in range(6):  # the abort needed the exit to land while DuckDB made the database
        done = subprocess.run(
            [*argv, "--format", "jsonl", "--for", "0"], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert "terminate called" not in done.stderr


def test_a_jsonl_run_of_bad_sql_exits_one_every_time(tmp_path):
    # The output's database is on its way before the compile finds the error.
    sql = tmp_path / "t.sql"
    sql.write_text(
        "CREATE TABLE t WITH (connector = 'impulse', event_rate = 10);\nSELECT nope FROM t;\n"
    )
    argv = [sys.executable, "-c", "from arroyo_lite.cli import main; main()", "run", str(sql)]
    for _ in range(4):
        done = subprocess.run(
            [*argv, "--format", "jsonl"], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 1, done.stderr
        assert "nope" in done.stderr and "terminate called" not in done.stderr
        assert done.stdout == ""
