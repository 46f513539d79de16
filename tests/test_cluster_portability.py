"""The strict check for an Arroyo cluster: ``validate --arroyo`` and ``check_portability``."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from arroyo_lite.cli import main
from arroyo_lite.cluster.contract import ARROYO_VERSION
from arroyo_lite.cluster.portability import (
    ARROYO_INSTEAD,
    check_portability,
    compile_for_cluster,
    extensions_used,
)
from arroyo_lite.connectors.base import Connector
from arroyo_lite.connectors.registry import all_connectors, get_connector
from arroyo_lite.errors import ValidationErrors
from arroyo_lite.sql import compile_sql
from arroyo_lite.sql.generic_options import GENERIC_OPTIONS_SCHEMA
from tests.plugins.echo_plugin import EchoConnector

PORTABLE = """CREATE TABLE prices (symbol TEXT, price DOUBLE) WITH (
  connector = 'polling_http',
  endpoint = 'https://api.example.com/prices',
  headers = 'Authorization: Bearer {{ NOT_SET_HERE_TOKEN }}',
  format = 'json'
);
SELECT symbol, avg(price) FROM prices GROUP BY symbol;
"""


def invoke(tmp_path: Path, text: str, *args: str) -> tuple[int, str, str, Path]:
    path = tmp_path / "file.sql"
    path.write_text(text, encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", "--arroyo", *args, str(path)])
    return result.exit_code, result.stdout, result.stderr, path


def test_a_portable_file_exits_0_with_its_notes(tmp_path: Path) -> None:
    code, out, err, path = invoke(tmp_path, PORTABLE)
    assert code == 0, err
    assert out.splitlines()[-1] == f"{path}: portable to Arroyo {ARROYO_VERSION} (3 note(s) above)"
    # The variable need not be set here: the cluster's environment is what counts.
    assert (
        f"{path}: note: the cluster must set NOT_SET_HERE_TOKEN in the environment of its API "
        "server (which plans the query) and of its workers"
    ) in err
    assert f"{path}:7:1: note: on Arroyo the results of queries without INSERT INTO go to the " \
        "preview sink" in err
    assert f"{path}:5:3: note: if the endpoint of 'prices' answers a top-level JSON array, " \
        "Arroyo counts the body as bad data" in err


def test_plain_validate_still_wants_the_variable(tmp_path: Path) -> None:
    path = tmp_path / "file.sql"
    path.write_text(PORTABLE, encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 1
    assert "Environment variable NOT_SET_HERE_TOKEN not found" in result.stderr


EXTENSIONS = [
    ("timeout_ms = 3000", "timeout_ms", "a fixed 5 s"),
    ("max_body_bytes = 1000", "max_body_bytes", "a fixed 5 MiB"),
    ("max_backoff_ms = 9000", "max_backoff_ms", "does not back off"),
    ("'retention.max_rows' = 10", "retention.max_rows", "keeps no live table"),
    ("'retention.max_age' = interval '1' minute", "retention.max_age", "keeps no live table"),
]


@pytest.mark.parametrize(("option", "key", "instead"), EXTENSIONS, ids=[e[1] for e in EXTENSIONS])
def test_each_extension_is_an_error_at_its_key(
    tmp_path: Path, option: str, key: str, instead: str
) -> None:
    text = PORTABLE.replace("  format = 'json'\n", f"  format = 'json',\n  {option}\n")
    code, out, err, path = invoke(tmp_path, text)
    assert code == 3
    assert (
        f"{path}:6:3: error: '{key}' is an arroyo-lite extension; Arroyo rejects it "
        f"(unknown options provided in WITH clause: '{key}')"
    ) in err
    hint = next(line for line in err.splitlines() if line.startswith("  hint: remove it"))
    assert instead in hint
    assert f"{path}: not portable to Arroyo {ARROYO_VERSION}: 1 problem(s)" in err
    # The same table is fine for arroyo-lite itself.
    assert f"{path}:1: table prices" in out


def test_extensions_used_reports_every_one_in_source_order() -> None:
    text = PORTABLE.replace(
        "  format = 'json'\n",
        "  format = 'json', max_backoff_ms = 5, 'retention.max_rows' = 3,\n  timeout_ms = 100\n",
    )
    program = compile_sql(text, file="f.sql", env={"NOT_SET_HERE_TOKEN": "x"})
    uses = extensions_used(program)
    assert [(u.option, str(u.position)) for u in uses] == [
        ("max_backoff_ms", "f.sql:5:20"),
        ("retention.max_rows", "f.sql:5:40"),
        ("timeout_ms", "f.sql:6:3"),
    ]
    assert uses[2].instead == ARROYO_INSTEAD["timeout_ms"]


def test_every_declared_extension_says_what_arroyo_does_instead() -> None:
    declared = {k for k, p in GENERIC_OPTIONS_SCHEMA["properties"].items() if p.get("x-extension")}
    for connector in all_connectors().values():
        props = connector.options_schema().get("properties") or {}
        # (An older name says its current one: x-renamed-to.)
        declared |= {
            k for k, p in props.items() if p.get("x-extension") and not p.get("x-renamed-to")
        }
        families = connector.options_schema().get("patternProperties") or {}
        declared |= {
            k.strip("^$").split("\\.")[0] + ".*"
            for k, p in families.items()
            if p.get("x-extension")
        }
    assert {"timeout_ms", "max_body_bytes", "max_backoff_ms", "retention.max_rows"} <= declared
    known = set(ARROYO_INSTEAD)
    missing = {k for k in declared if k not in known and f"{k.split('.')[0]}.*" not in known}
    assert not missing, missing


def test_a_file_without_a_query_is_refused_as_arroyo_does(tmp_path: Path) -> None:
    text = PORTABLE.split("SELECT")[0]
    code, _, err, path = invoke(tmp_path, text)
    assert code == 3
    assert f"{path}: error: The provided SQL does not contain a query" in err


def test_an_insert_counts_as_a_query(tmp_path: Path) -> None:
    text = PORTABLE.replace(
        "SELECT symbol", "CREATE TABLE m (symbol TEXT, p DOUBLE);\nINSERT INTO m SELECT symbol"
    ) + "SELECT * FROM m;\n"
    code, _, err, _ = invoke(tmp_path, text)
    assert code == 0, err


def test_reading_the_status_table_is_not_portable(tmp_path: Path) -> None:
    code, _, err, path = invoke(tmp_path, PORTABLE + "SELECT table_name FROM arroyo_status;\n")
    assert code == 3
    assert (
        f"{path}:8:24: error: table 'arroyo_status' not found (it is arroyo-lite's status "
        "table; Arroyo has none)"
    ) in err
    assert "      |                        ^~~~~~~~~~~~~" in err


def test_a_header_arroyo_would_cut_is_a_note(tmp_path: Path) -> None:
    text = PORTABLE.replace("{{ NOT_SET_HERE_TOKEN }}'", "{{ NOT_SET_HERE_TOKEN }}, X-Url: http://h'")
    code, _, err, path = invoke(tmp_path, text)
    assert code == 0
    assert f"{path}:4:3: note: Arroyo cuts header 'X-Url' at its second ':' and would send " \
        "'http'" in err


def test_an_invalid_file_exits_1_as_plain_validate(tmp_path: Path) -> None:
    code, _, err, path = invoke(tmp_path, PORTABLE.replace("'json'", "'jsn'"))
    assert code == 1
    assert f"{path}:5:12: error: unknown format 'jsn'" in err or f"{path}:5:12: error:" in err
    assert "portable" not in err


def test_a_plugin_connector_is_not_portable() -> None:
    def lookup(name: str) -> Connector:  # the registry, plus the test plugin
        return EchoConnector() if name == "echo" else get_connector(name)

    text = (
        "CREATE TABLE t WITH (connector = 'impulse', event_rate = 1);\n"
        "CREATE TABLE out (v BIGINT) WITH (connector = 'echo', path = '/tmp/x');\n"
        "INSERT INTO out SELECT counter FROM t;\n"
    )
    program = compile_sql(text, file="p.sql", lookup=lookup)
    report = check_portability(program)
    assert not report.portable
    [error] = report.errors
    assert error.message.startswith("Unknown connector 'echo'")
    assert str(error.position) == "p.sql:2:35"


_CORPORA = [p / "shared" / "reference" / "arroyo-sql-corpus" for p in Path(__file__).parents[2:4]]
CORPUS = next((p for p in _CORPORA if p.is_dir()), None)


@pytest.mark.skipif(CORPUS is None, reason="Arroyo's SQL corpus is not next to the repo")
def test_arroyos_own_files_are_portable() -> None:
    """No false alarms: the files of Arroyo's own test corpus that arroyo-lite accepts use no
    extension and pass the strict check."""
    assert CORPUS is not None
    checked = 0
    for path in sorted(CORPUS.rglob("*.sql")):
        try:
            program = compile_for_cluster(path)
        except ValidationErrors:
            continue  # connectors or features arroyo-lite does not have (test_corpus.py)
        checked += 1
        report = check_portability(program)
        assert report.portable, (path, [f.format() for f in report.errors])
    # (Files reading the `nexmark` table or the Rust UDFs of Arroyo's test harness are
    # rejected since queries are checked: test_corpus.py's HARNESS_ERRORS.)
    assert checked >= 8


def test_a_credential_written_in_the_file_is_a_note(tmp_path: Path) -> None:
    text = PORTABLE.replace("Bearer {{ NOT_SET_HERE_TOKEN }}", "Bearer abc123, X-Trace: 1")
    code, _, err, path = invoke(tmp_path, text)
    assert code == 0
    assert (
        f"{path}:4:3: note: header 'Authorization' has a value written in the file: deploy "
        "sends the file as the query, so the cluster stores that value with the pipeline"
    ) in err
    assert "header 'X-Trace'" not in err


def test_an_extension_value_of_an_arroyo_option_is_an_invalid_value_there(
    tmp_path: Path,
) -> None:
    dedup = "  format = 'json',\n  emit_behavior = 'dedup'\n"
    text = PORTABLE.replace("  format = 'json'\n", dedup)
    text = text.replace("(", "(id TEXT PRIMARY KEY, ", 1)
    code, _out, err, path = invoke(tmp_path, text)
    assert code == 3, err
    assert (
        f"{path}:6:3: error: emit_behavior = 'dedup' is an arroyo-lite extension; Arroyo "
        "rejects it (invalid value for 'emit_behavior')"
    ) in err
    assert ARROYO_INSTEAD["emit_behavior = 'dedup'"].split(";")[0] in err
    # Every extension value declared on an Arroyo option says what Arroyo does instead.
    for connector in all_connectors().values():
        for key, prop in (connector.options_schema().get("properties") or {}).items():
            for value in prop.get("x-extension-values", ()):
                assert f"{key} = '{value}'" in ARROYO_INSTEAD
