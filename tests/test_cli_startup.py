"""Start-up: which libraries each entry point imports (behaviour, never time).

Each case runs in a fresh interpreter and prints the heavy modules it ended up with; the
speed figures themselves are in ``benchmarks/startup.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from arroyo_lite.cli import COMMANDS, main

HEAVY = ("aiohttp", "duckdb", "pyarrow", "sqlglot", "rich", "prompt_toolkit", "jsonschema")
# Also reported, not heavy itself: validating SQL needs no event loop.
REPORTED = (*HEAVY, "asyncio")

# Runs the CLI with ``argv`` in-process, then reports which heavy modules got imported.
PROBE = """
import json, sys
argv = json.loads(sys.argv[1])
heavy = json.loads(sys.argv[2])
sys.argv = ["arroyo-lite", *argv]
try:
    {code}
except SystemExit:
    pass
print(json.dumps(sorted(name for name in heavy if name in sys.modules)))
"""


def loaded_after(code: str, argv: list[str] | None = None) -> set[str]:
    script = PROBE.format(code=code)
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(argv or []), json.dumps(REPORTED)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["infer", "--help"]])
def test_help_and_version_import_no_heavy_library(argv):
    assert loaded_after("from arroyo_lite.cli import main; main()", argv) == set()


def test_the_entry_point_module_imports_no_heavy_library():
    # What the `arroyo-lite` script imports before click parses anything.
    assert loaded_after("import arroyo_lite.cli") == set()


#: Known exceptions (not yet made lazy): the cluster commands import their HTTP client
#: (aiohttp) and, for deploy, the compiler, when their module loads.
HELP_EXTRA = {
    "cluster": {"aiohttp", "asyncio"},
    "deploy": {"aiohttp", "asyncio", "jsonschema", "pyarrow", "sqlglot"},
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_each_command_help_imports_no_heavy_library(command):
    loaded = loaded_after("from arroyo_lite.cli import main; main()", [command, "--help"])
    assert loaded <= HELP_EXTRA.get(command, set()), loaded


def test_validate_does_not_import_the_runtime_libraries(tmp_path):
    sql = tmp_path / "t.sql"
    sql.write_text(
        "CREATE TABLE t (a TEXT) WITH (connector = 'polling_http', "
        "endpoint = 'http://127.0.0.1:1/x', format = 'json');\n"
    )
    loaded = loaded_after("from arroyo_lite.cli import main; main()", ["validate", str(sql)])
    assert "sqlglot" in loaded  # it did parse the file
    assert loaded.isdisjoint({"aiohttp", "duckdb", "rich", "prompt_toolkit", "asyncio"})


def test_a_session_without_tables_imports_no_heavy_library():
    # The store (pyarrow) and the runtime (asyncio) come with the first table, DuckDB with
    # the first query.
    loaded = loaded_after("import arroyo_lite; arroyo_lite.Session().close()")
    assert loaded == set()


def test_a_session_still_works_after_a_lazy_start():
    import arroyo_lite

    with arroyo_lite.Session() as session:
        assert session.tables() == [] and session.status() == []
        session.execute("CREATE TABLE m (a INT);")
        assert session.tables() == ["m"]
        assert session.query("SELECT count(*) AS n FROM m").column("n").to_pylist() == [0]


def test_the_first_query_brings_duckdb_but_not_the_http_client():
    loaded = loaded_after(
        "import arroyo_lite; s = arroyo_lite.Session(); s.query('SELECT 1'); s.close()"
    )
    assert {"duckdb", "sqlglot", "pyarrow"} <= loaded
    assert loaded.isdisjoint({"aiohttp", "rich", "prompt_toolkit"})


def test_the_package_root_is_light_and_its_names_still_resolve():
    assert loaded_after("import arroyo_lite") == set()
    import arroyo_lite

    assert arroyo_lite.TableConfig.__name__ == "TableConfig"
    assert arroyo_lite.Session.__name__ == "Session"


def test_every_listed_command_loads_and_is_listed_with_its_line():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    for name, (_, line) in COMMANDS.items():
        assert main.get_command(None, name) is not None, name  # type: ignore[arg-type]
        assert f"  {name} " in result.output and line[:30] in result.output


def test_a_command_attached_from_elsewhere_is_listed_and_runs():
    import click

    @click.command("hello-extra", short_help="Say hello (a test command).")
    def hello() -> None:
        click.echo("hello")

    main.add_command(hello)
    try:
        listing = CliRunner().invoke(main, ["--help"])
        assert "  hello-extra  Say hello (a test command)." in listing.output
        assert CliRunner().invoke(main, ["hello-extra"]).output == "hello\n"
    finally:
        main.commands.pop("hello-extra")
