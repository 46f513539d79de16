"""What ``run`` of a local table imports on its way to the rows (behaviour, never time).

``run --format jsonl`` (or csv) prints rows without rich and without ``pyarrow.compute``,
nor defining arroyo-lite's DuckDB functions (a plain SELECT calls none: see
:mod:`arroyo_lite.query.builtins`), and a run with no HTTP table imports no HTTP client and
no JSON Schema validator, nor the decoders' contract (``formats/result.py``); the table
format and an error on stderr still print through rich. The start-up heap is frozen (never
rescanned by the collector). The speed figure is ``benchmarks/first_row.py --source impulse``.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.cli_probe import probe_cli

WATCHED = (
    "rich",
    "aiohttp",
    "jsonschema",
    "prompt_toolkit",
    "pandas",
    "duckdb",
    "sqlglot",
    "pyarrow.compute",
    # What defining arroyo-lite's DuckDB functions imports (the t-digest they call).
    "arroyo_lite.sql.tdigest",
    # Persistence (only with --state-dir), per-group state (only for a grouped aggregate)
    # and probing (only for `arroyo-lite test`).
    "arroyo_lite.runtime.persist",
    "arroyo_lite.query.incremental",
    "arroyo_lite.connectors.probing",
    # The decoders' contract: only a table that decodes bodies needs it (impulse does not).
    "arroyo_lite.formats.result",
)

IMPULSE = "CREATE TABLE t WITH (connector = 'impulse', event_rate = 10, message_count = 3);\n"


def run_probe(argv: list[str]) -> tuple[list[str], set[str], int]:
    """The rows, the watched modules imported when the first row was printed (later work,
    such as the store's compaction on a slow machine, may import more), the frozen count."""
    done = probe_cli(argv, watched=WATCHED)
    assert done.at_first_row is not None, done.rows
    return done.rows, done.at_first_row, done.frozen


@pytest.mark.parametrize("fmt", ["jsonl", "csv"])
def test_a_data_format_run_of_a_local_table_needs_no_rich_nor_http(tmp_path, fmt):
    sql = tmp_path / "t.sql"
    sql.write_text(IMPULSE + "SELECT counter FROM t;\n")
    rows, loaded, frozen = run_probe(["run", str(sql), "--format", fmt, "--for", "3"])
    expected = ['{"counter":0}', '{"counter":1}', '{"counter":2}']
    assert rows == (expected if fmt == "jsonl" else ['"counter"', "0", "1", "2"])
    assert {"duckdb", "sqlglot"} <= loaded  # it did compile and query
    assert loaded.isdisjoint({"rich", "aiohttp", "jsonschema", "prompt_toolkit", "pandas"})
    # Nor Arrow's compute module: DuckDB writes the JSON lines, newlines included.
    assert "pyarrow.compute" not in loaded
    # A plain SELECT calls none of arroyo-lite's DuckDB functions: none was defined.
    assert "arroyo_lite.sql.tdigest" not in loaded
    # Nor does a run of one source and a plain SELECT need any of these.
    assert loaded.isdisjoint(
        {"arroyo_lite.runtime.persist", "arroyo_lite.query.incremental",
         "arroyo_lite.connectors.probing"}
    )  # fmt: skip
    # Nor, with no table that decodes bodies, the decoders' contract.
    assert "arroyo_lite.formats.result" not in loaded
    # The imports and the compiled program were frozen, not collected over and over.
    assert frozen > 10_000


def test_the_table_format_still_prints_through_rich(tmp_path):
    sql = tmp_path / "t.sql"
    sql.write_text(IMPULSE + "SELECT counter FROM t;\n")
    rows, loaded, _ = run_probe(["run", str(sql), "--format", "table", "--for", "3"])
    assert "rich" in loaded
    assert any("counter" in row for row in rows)


def test_an_error_is_still_rendered_on_stderr(tmp_path):
    sql = tmp_path / "t.sql"
    sql.write_text(IMPULSE + "SELECT nope FROM t;\n")
    done = subprocess.run(
        [sys.executable, "-c", "from arroyo_lite.cli import main; main()", "run", str(sql)]
        + ["--format", "jsonl"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1, done.stderr
    assert f"{sql}:2:" in done.stderr and "nope" in done.stderr
    assert done.stdout == ""
