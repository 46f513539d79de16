"""What psql and duckdb CLI users reach for, typed into the REPL through a pseudo-terminal:
DROP, CREATE OR REPLACE VIEW, \\pause/\\resume, psql's \\watch, \\timing, \\x, \\o, \\i, \\e,
\\copy and COPY, .mode/.tables, the pager, and errors positioned <repl>:LINE:COL.

Sources are impulse tables (no server needed); waits are bounded by pexpect timeouts.
"""

from __future__ import annotations

import json
from pathlib import Path

import pexpect
import pyarrow.parquet as pq

from tests.support.cli import CLI, cli_env
from tests.test_repl_pty import PROMPT, WAIT, command, loose, wait_for_rows

ROWS = 50  # the pty's height: a result taller than this goes to the pager


def spawn(tmp_path: Path, **env: str) -> pexpect.spawn:
    child = pexpect.spawn(
        CLI[0],
        [*CLI[1:], "repl"],
        env=cli_env(
            ARROYO_LITE_HISTORY=str(tmp_path / "history"),
            PROMPT_TOOLKIT_NO_CPR="1",
            TERM="xterm",
            COLUMNS="200",
            LINES=str(ROWS),
            **env,
        ),
        encoding="utf-8",
        timeout=WAIT,
        dimensions=(ROWS, 200),
    )
    child.expect_exact(PROMPT)
    return child


def run(child: pexpect.spawn, line: str, *expected: str) -> None:
    """Type ``line``, expect each pattern in turn (regexes, ANSI-tolerant), then the prompt."""
    command(child, line)
    for pattern in expected:
        child.expect(loose(pattern))
    child.expect_exact(PROMPT)


def impulse(name: str, rate: int = 200) -> str:
    return f"CREATE TABLE {name} WITH (connector = 'impulse', event_rate = '{rate}');"


def quit_cleanly(child: pexpect.spawn) -> None:
    command(child, "\\q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert "Traceback" not in (child.before or "")


def test_ddl_habits_drop_replace_pause_resume(tmp_path):
    child = spawn(tmp_path)
    run(child, impulse("imp"), "source started")
    run(child, "CREATE VIEW v AS SELECT counter FROM imp;", "CREATE VIEW v")
    run(child, "CREATE OR REPLACE VIEW v AS SELECT counter * 10 AS tenfold FROM imp;",
        "CREATE VIEW v")  # fmt: skip
    wait_for_rows(child, "imp", 3)
    run(child, "SELECT max(tenfold) % 10 AS r FROM v;", r"r\s+─+\s+0\s+1 row")
    # A table a view reads cannot go: the error says which view, and how.
    run(child, "DROP TABLE imp;", r"<repl>:1:1: error: cannot drop table 'imp': view 'v'",
        r"hint: drop the views that read it first: DROP VIEW v")  # fmt: skip
    run(child, "DROP VIEW v;", "DROP VIEW v")
    run(child, "DROP TABLE imp;", "DROP TABLE imp")
    run(child, "\\tables", r"name\s+kind\s+connector\s+state\s+rows\s+─+\s+\r?\n")
    run(child, "SELECT * FROM imp;", r"error: .*imp")
    # Pausing keeps the source (and its rows); resuming starts it again.
    run(child, impulse("ticks"), "source started")
    wait_for_rows(child, "ticks", 1)
    run(child, "\\pause ticks", "paused ticks")
    run(child, "\\status", r"ticks\s+impulse\s+paused")
    run(child, "\\pause ticks", "source 'ticks' is not running", "its state is 'paused'")
    run(child, "\\resume ticks", "resumed ticks")
    run(child, "\\status", r"ticks\s+impulse\s+(running|starting)")
    quit_cleanly(child)


def test_watch_timing_expanded_and_errors(tmp_path):
    child = spawn(tmp_path)
    run(child, impulse("imp"), "source started")
    wait_for_rows(child, "imp", 1)
    # psql's \watch: the query typed before it, re-run every N seconds; c=2 stops after two.
    command(child, "SELECT count(*) > 0 AS any_rows FROM imp \\watch 0.2 c=2")
    for _ in range(2):
        child.expect(r"\(every 0\.2s\)")
        child.expect(loose(r"any_rows\s+─+\s+true"))
    child.expect_exact(PROMPT)
    # A bare \watch re-runs the last query, until Ctrl-C.
    command(child, "\\watch 0.1")
    child.expect(r"\(every 0\.1s\)")
    child.expect(r"\(every 0\.1s\)")
    child.sendintr()
    child.expect_exact(PROMPT)
    # The old live form now says where it went.
    run(child, "\\watch SELECT 1;", r"\\watch now means psql's", r"use \\live QUERY")
    run(child, "\\timing", r"Timing is on\.")
    run(child, "SELECT 1 AS one;", r"one\s+─+\s+1", r"Time: \d+\.\d{3} ms")
    run(child, "\\timing off", r"Timing is off\.")
    run(child, "\\x", r"Expanded display is on\.")
    run(child, "SELECT 1 AS a, 'two' AS b;", r"-\[ RECORD 1 \]-+\s+a \| 1\s+b \| two")
    run(child, "\\x off", r"Expanded display is off\.")
    # Errors name <repl>, the line within the input and the column.
    command(child, "SELECT 1 AS fine,")
    child.expect_exact("...>")
    run(child, "  nope FROM imp;", r"<repl>:2:3: error: [^\n]*nope", r"2 \|\s+nope FROM imp")
    quit_cleanly(child)


def test_files_in_and_out(tmp_path):
    editor = tmp_path / "editor.sh"
    # The editor gets the last input; it turns SELECT 7 into SELECT 8 (sed -i, in place).
    editor.write_text("#!/bin/sh\nsed -i 's/SELECT 7/SELECT 8/' \"$1\"\n")
    editor.chmod(0o755)
    child = spawn(tmp_path, EDITOR=str(editor), VISUAL="")
    run(child, "SELECT 7 AS n;", r"n\s+─+\s+7")
    run(child, "\\e", r"SELECT 8 AS n;", r"n\s+─+\s+8")

    out = tmp_path / "results.txt"
    run(child, f"\\o {out}")
    run(child, "SELECT 'into the file' AS s;")
    run(child, "\\o")
    # A prompt drawn while typing matches PROMPT too: a result is the sync point.
    run(child, "SELECT 'back on the terminal' AS marker;", "back on the terminal")
    assert "into the file" in out.read_text() and "1 row" in out.read_text()

    script = tmp_path / "setup.sql"
    script.write_text(
        "CREATE TABLE m (id BIGINT, name TEXT);\n"
        "INSERT INTO m SELECT * FROM (VALUES (1, 'a'), (2, 'b')) t(id, name);\n"
        "\\d m\n"
        "SELECT nope\n  FROM m;\n"
    )
    run(child, f"\\i {script}", r"CREATE TABLE m", r"INSERT INTO m", r"id\s+int64",
        rf"{script}:4:8: error: .*nope")  # fmt: skip

    csv = tmp_path / "m.csv"
    run(child, f"\\copy (SELECT id, name FROM m ORDER BY id) TO {csv}", "COPY 2")
    assert csv.read_text().splitlines() == ["id,name", "1,a", "2,b"]
    parquet = tmp_path / "m.parquet"
    run(child, f"COPY (SELECT id FROM m ORDER BY id) TO '{parquet}';", "COPY 2")
    assert pq.read_table(parquet).column("id").to_pylist() == [1, 2]
    jsonl = tmp_path / "m.out"
    run(child, f"COPY (SELECT name FROM m ORDER BY id) TO '{jsonl}' (FORMAT json);", "COPY 2")
    assert [json.loads(line) for line in jsonl.read_text().splitlines()] == [
        {"name": "a"},
        {"name": "b"},
    ]
    quit_cleanly(child)


def test_duckdb_dot_commands_and_the_pager(tmp_path):
    pager = tmp_path / "pager.sh"
    paged = tmp_path / "paged.txt"
    pager.write_text(f"#!/bin/sh\ncat > {paged}\necho PAGER-SAW $(wc -l < {paged}) LINES\n")
    pager.chmod(0o755)
    child = spawn(tmp_path, PAGER=str(pager))
    # .mode csv is a command of its own line: the SELECT after it runs, it is not swallowed.
    run(child, ".mode csv")
    run(child, "SELECT 1 AS a, 'x' AS b;", r'"a","b"\s+1,"x"')
    run(child, ".mode line")
    run(child, "SELECT 1 AS a;", r"-\[ RECORD 1 \]")
    run(child, ".mode table")
    run(child, impulse("imp"), "source started")
    run(child, ".tables", r"imp\s+source\s+impulse")
    run(child, ".schema imp", r"counter\s+int64")
    # Taller than the terminal: through $PAGER (which saw every line); short: printed.
    run(child, "SELECT range AS i FROM range(200);", r"PAGER-SAW 20\d LINES")
    assert "200 rows" in paged.read_text()
    run(child, "SELECT 5 AS short;", r"short\s+─+\s+5")
    run(child, "\\pset pager off", r"Pager usage is off\.")
    run(child, "SELECT range AS i FROM range(200);", r"\s199\s+200 rows")
    assert "PAGER-SAW" not in (child.before or "")
    run(child, "\\help", r"\\watch", r"\\live", r"\.mode")
    quit_cleanly(child)

