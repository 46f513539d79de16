"""``arroyo-lite validate`` and ``arroyo-lite connectors`` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from arroyo_lite.cli import main

GOOD = """-- two tables and a query
CREATE TABLE quotes (symbol TEXT NOT NULL, price DOUBLE) WITH (
  connector = 'polling_http',
  endpoint = 'http://127.0.0.1:9/quotes',
  format = 'json',
  framing = 'newline'
);
CREATE TABLE ticks WITH (connector = 'impulse', event_rate = 2);
SELECT symbol, max(price) FROM quotes GROUP BY symbol;
"""

BAD = """CREATE TABLE quotes (symbol TEXT) WITH (
  connector = 'polling_http',
  endpoint = 'http://127.0.0.1:9/quotes',
  method = 'get',
  format = 'json'
);
CREATE TABLE other (value TEXT) WITH (connector = 'kafka');
"""


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_validate_prints_one_line_per_table(runner: CliRunner, tmp_path: Path) -> None:
    path = write(tmp_path, "good.sql", GOOD)
    result = runner.invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines == [
        f"{path}:2: table quotes  connector=polling_http  kind=source  "
        "columns=[symbol TEXT NOT NULL, price DOUBLE]  format=json  framing=newline",
        f"{path}:8: table ticks  connector=impulse  kind=source  "
        "columns=[counter BIGINT NOT NULL, subtask_index BIGINT NOT NULL]",
        f"{path}:9: query",
    ]


def test_validate_reports_every_problem_gcc_style(runner: CliRunner, tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.sql", BAD)
    good = write(tmp_path, "good.sql", GOOD)
    result = runner.invoke(main, ["validate", str(bad), str(good)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{bad}:4:12: error: invalid value for 'method': 'get'",
        "    4 |   method = 'get',",
        "      |            ^~~~~",
        "  hint: did you mean 'GET'? expected 'GET', 'POST', 'PUT' or 'PATCH' (case-sensitive)",
        f"{bad}:7:51: error: Unknown connector 'kafka'",
        "    7 | CREATE TABLE other (value TEXT) WITH (connector = 'kafka');",
        "      |                                                   ^~~~~~~",
        "  hint: available connectors: blackhole, filesystem, impulse, polling_http, "
        "single_file, sse, stdout, webhook, websocket",
    ]
    # The valid file is still summarised.
    assert f"{good}:2: table quotes" in result.stdout


def test_validate_never_tracebacks_on_bad_files(runner: CliRunner, tmp_path: Path) -> None:
    binary = tmp_path / "latin1.sql"
    binary.write_bytes("SELECT 'caf\xe9';".encode("latin-1"))
    missing = tmp_path / "missing.sql"
    result = runner.invoke(main, ["validate", str(missing), str(tmp_path), str(binary)])
    assert result.exit_code == 1
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert result.stderr.splitlines() == [
        f"{missing}: error: cannot read file: No such file or directory",
        f"{tmp_path}: error: is a directory, not a SQL file",
        f"{binary}: error: file is not valid UTF-8 (at byte offset 11)",
        "  hint: save the file as UTF-8",
    ]
    assert "Traceback" not in result.output


def test_validate_masks_nothing_secret(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("H1_CLI_SECRET", "line1\nline2-supersecret")
    path = write(
        tmp_path,
        "secret.sql",
        "CREATE TABLE t (value TEXT) WITH (connector = 'polling_http', endpoint = 'http://h/',"
        " format = 'raw_string', headers = 'X-Key: {{ H1_CLI_SECRET }}');",
    )
    result = runner.invoke(main, ["validate", str(path)])
    assert result.exit_code == 1
    assert "H1_CLI_SECRET" in result.stderr
    assert "supersecret" not in result.output


def test_validate_requires_a_file(runner: CliRunner) -> None:
    result = runner.invoke(main, ["validate"])
    assert result.exit_code == 2
    assert "Missing argument" in result.output


@pytest.mark.parametrize("command", ["validate", "connectors"])
def test_help(runner: CliRunner, command: str) -> None:
    result = runner.invoke(main, [command, "--help"])
    assert result.exit_code == 0
    assert "Usage: main " + command in result.output or f"Usage: arroyo-lite {command}" in (
        result.output
    )


def test_connectors_lists_registry_with_options(runner: CliRunner) -> None:
    result = runner.invoke(main, ["connectors"])
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "polling_http  (source)  Poll an HTTP server to produce events" in out
    assert "impulse  (source)" in out
    assert "  endpoint  string  required  -- " in out
    assert '  method  string (GET | POST | PUT | PATCH)  default="GET"  -- ' in out
    assert "  timeout_ms  integer  default=5000  [extension]  -- " in out
    assert "  event_rate  number  required  -- " in out
    assert "generic options (every connection table)" in out
    formats = "json | debezium_json | raw_string | raw_bytes"
    assert f"  format  string ({formats})  default=none  -- " in out
    assert "  message_count  integer  default=none  -- " in out
    assert "  retention.max_rows  integer  default=none  [extension]  -- " in out


def test_connectors_shows_type_default_and_description_of_every_option(
    runner: CliRunner,
) -> None:
    """Each schema property is one line: name, type, ``required`` or a default, description."""
    from arroyo_lite.connectors.registry import all_connectors
    from arroyo_lite.sql.generic_options import GENERIC_OPTIONS_SCHEMA

    out = runner.invoke(main, ["connectors"]).stdout
    # Option lines, per section (a connector, then the generic options).
    sections: dict[str, dict[str, str]] = {}
    section = ""
    for line in out.splitlines():
        if line.startswith("  "):
            sections[section][line.split()[0]] = line
        elif line:
            section = line.split()[0]
            sections[section] = {}
    schemas = [(name, c.options_schema()) for name, c in all_connectors().items()]
    for name, schema in [*schemas, ("generic", GENERIC_OPTIONS_SCHEMA)]:
        lines = sections[name]
        required = set(schema.get("required") or [])
        for key, prop in schema["properties"].items():
            line = lines[key]
            head, _, description = line.partition("  -- ")
            assert description == prop["description"], line
            fields = head.split("  ")
            assert fields[:3] == ["", key, fields[2]] and fields[2].startswith(prop["type"])
            if key in required:
                assert fields[3] == "required", line
            else:
                default = json.dumps(prop["default"]) if "default" in prop else "none"
                assert fields[3] == f"default={default}", line


@pytest.mark.parametrize(
    ("name", "kind"),
    [("sse", "source"), ("websocket", "source"), ("stdout", "sink"), ("blackhole", "sink"),
     ("webhook", "sink"), ("filesystem", "sink")],
)  # fmt: skip
def test_connectors_lists_the_streaming_sources_and_the_sinks(
    runner: CliRunner, name: str, kind: str
) -> None:
    """Issue 13's connectors, each with its kind, in the list and on their own."""
    listed = runner.invoke(main, ["connectors"]).stdout.splitlines()
    assert any(line.startswith(f"{name}  ({kind})  ") for line in listed)
    alone = runner.invoke(main, ["connectors", name])
    assert alone.exit_code == 0 and alone.stdout.startswith(f"{name}  ({kind})  ")


def test_connectors_name(runner: CliRunner) -> None:
    result = runner.invoke(main, ["connectors", "impulse"])
    assert result.exit_code == 0
    assert result.stdout.startswith("impulse  (source)")
    assert "polling_http  (source)" not in result.stdout


def test_connectors_unknown_name(runner: CliRunner) -> None:
    result = runner.invoke(main, ["connectors", "polling"])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: Unknown connector 'polling'",
        "  hint: did you mean 'polling_http'?",
    ]


def test_validate_accepts_a_bom_and_crlf(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "windows.sql"
    path.write_bytes(b"\xef\xbb\xbfSELECT 1;\r\nSELECT x FROM;\r\n")
    result = runner.invoke(main, ["validate", str(path)])
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{path}:2:10: error: Expected table name but got end of statement",
        "    2 | SELECT x FROM;",
        "      |          ^~~~",
    ]


@pytest.mark.parametrize("separator", ["\x0c", "\u2028", "\x1c", "\x85"])
def test_excerpt_counts_lines_like_positions(
    runner: CliRunner, tmp_path: Path, separator: str
) -> None:
    """Characters Python's splitlines() breaks on, but SQL does not, leave the excerpt on
    the line the position names."""
    path = tmp_path / "odd.sql"
    path.write_text(
        f"-- a comment with {separator} inside\n"
        "CREATE TABLE t (value TEXT, PRIMARY KEY (value));\n",
        encoding="utf-8",
    )
    result = runner.invoke(main, ["validate", str(path)])
    assert result.exit_code == 1
    assert result.stderr.split("\n")[:3] == [
        f"{path}:2:29: error: Unsupported table constraint `PRIMARY KEY (value)`",
        "    2 | CREATE TABLE t (value TEXT, PRIMARY KEY (value));",
        "      |                             ^~~~~~~",
    ]


def test_a_file_without_statements_says_so(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "comments.sql"
    path.write_text("-- nothing here yet;\n/* ; */\n", encoding="utf-8")
    result = runner.invoke(main, ["validate", str(path)])
    assert result.exit_code == 0
    assert result.stdout == f"{path}: no statements\n"
    path.write_text("SET updating_ttl = interval '1' hour;\n", encoding="utf-8")
    result = runner.invoke(main, ["validate", str(path)])
    assert result.stdout == f"{path}:1: set updating_ttl = interval '1' hour\n"


def test_validate_shows_retention(runner: CliRunner) -> None:
    path = Path(__file__).parents[1] / "sql_examples" / "price_ticker.sql"
    result = runner.invoke(main, ["validate", str(path)])
    assert result.exit_code == 0
    assert "  format=json  retention.max_age=3600s" in result.stdout
