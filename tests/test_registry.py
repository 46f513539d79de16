"""The connector registry: built-ins, and third-party connectors through entry points."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from arroyo_lite.connectors import registry
from arroyo_lite.connectors.impulse.connector import ImpulseConnector
from arroyo_lite.connectors.polling_http.connector import PollingHttpConnector
from arroyo_lite.errors import ConnectorError, ValidationErrors
from arroyo_lite.sql import compile_sql
from tests.support.plugin_dist import install_plugin

REPO = Path(__file__).parents[1]


@pytest.fixture
def plugin_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The plugin installed on sys.path, with the registry reloaded around the test."""
    target = install_plugin(tmp_path / "site")
    monkeypatch.syspath_prepend(str(target))
    registry.reset()
    yield target
    registry.reset()


def test_builtins() -> None:
    connectors = registry.all_connectors()
    assert isinstance(connectors["polling_http"], PollingHttpConnector)
    assert isinstance(connectors["impulse"], ImpulseConnector)
    assert registry.get_connector("impulse") is connectors["impulse"]


@pytest.mark.parametrize(
    ("name", "hint"),
    [("Polling_HTTP", "did you mean 'polling_http'?"), ("impluse", "did you mean 'impulse'?"),
     ("kafka", "available connectors: blackhole, filesystem, impulse, polling_http, "
               "single_file, sse, stdout, webhook, websocket")],
)  # fmt: skip
def test_unknown_connector(name: str, hint: str) -> None:
    with pytest.raises(ConnectorError) as info:
        registry.get_connector(name)
    assert info.value.message == f"Unknown connector '{name}'"
    assert info.value.hint is not None and info.value.hint.startswith(hint)


def test_schema_files_are_valid_json_schema() -> None:
    from jsonschema import Draft202012Validator

    for connector in registry.all_connectors().values():
        schema = connector.options_schema()
        Draft202012Validator.check_schema(schema)
        for prop in schema["properties"].values():
            assert prop.get("description"), "every option is documented"
    polling = registry.get_connector("polling_http").options_schema()["properties"]
    extensions = {k for k, v in polling.items() if v.get("x-extension")}
    assert {
        "timeout_ms", "max_body_bytes", "max_backoff_ms", "records.path", "changed.compare",
        "dedup.max_keys", "cursor.path", "pagination.type", "auth.type",
    } <= extensions  # fmt: skip
    assert polling["emit_behavior"]["x-extension-values"] == ["dedup", "snapshot"]
    # Everything but Arroyo's own keys is marked an extension.
    assert set(polling) - extensions == {
        "endpoint", "headers", "method", "body", "poll_interval_ms", "emit_behavior",
    }  # fmt: skip


def test_plugin_is_listed_and_broken_entry_points_are_reported(plugin_path: Path) -> None:
    connectors = registry.all_connectors()
    assert connectors["echo"].sink and not connectors["echo"].source
    assert "broken" not in connectors
    [error] = registry.load_errors()
    assert error.message == (
        "connector plugin 'broken' (h1_echo_plugin:NOT_A_CONNECTOR) is not a Connector subclass"
    )


def test_plugin_tables_validate_like_builtins(plugin_path: Path) -> None:
    program = compile_sql(
        "CREATE TABLE out (n BIGINT) WITH (connector = 'echo', path = '/tmp/x', pretty = 'yes');\n"
        "CREATE TABLE src WITH (connector = 'impulse', event_rate = 5);\n"
        "INSERT INTO out SELECT counter FROM src;",
        env={},
    )
    [out, _src] = program.tables
    assert out.kind.value == "sink"
    assert out.connector_options.path == "/tmp/x" and out.connector_options.pretty is True
    with pytest.raises(ValidationErrors) as info:
        compile_sql(
            "CREATE TABLE out (n BIGINT) WITH (connector = 'echo', paht = '/x');\n"
            "CREATE TABLE sink (n BIGINT) WITH (connector = 'echo', path = '/x');\n"
            "SELECT * FROM sink;",
            file="p.sql",
            env={},
        )
    messages = [(e.message, e.position.line if e.position else 0) for e in info.value]
    assert info.value.errors[0].hint == "did you mean 'path' instead of 'paht'?"
    # A table that failed is left out of the catalog, so its readers add no noise.
    assert messages == [
        ("required option 'path' not set", 1),
        ("attempted to read from table 'sink', but it is a sink", 3),
    ]


def test_plugin_through_the_cli_in_a_subprocess(tmp_path: Path) -> None:
    target = install_plugin(tmp_path / "site")
    sql = tmp_path / "sink.sql"
    sql.write_text("CREATE TABLE out (n BIGINT) WITH (connector = 'echo', path = '/tmp/o');\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(target), str(REPO)])}
    run = [sys.executable, "-c", "from arroyo_lite.cli import main; main()"]
    listed = subprocess.run([*run, "connectors"], env=env, capture_output=True, text=True,
                            timeout=60, check=False)  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    assert "echo  (sink)  Write rows to a file (test plugin)" in listed.stdout
    assert "is not a Connector subclass" in listed.stderr
    checked = subprocess.run([*run, "validate", str(sql)], env=env, capture_output=True,
                             text=True, timeout=60, check=False)  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert "table out  connector=echo  kind=sink  columns=[n BIGINT]" in checked.stdout


BAD_PLUGINS = """
from arroyo_lite.connectors.base import Connector


class Duplicate(Connector):
    name = "polling_http"
    description = "tries to replace a built-in"

    def parse_options(self, options, table):
        return None


class FailsInInit(Connector):
    name = "fragile"
    description = "raises when created"

    def __init__(self):
        raise RuntimeError("no config file")

    def parse_options(self, options, table):
        return None
"""


def test_broken_plugins_are_reported_and_the_builtins_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A plugin that fails to import, fails to construct or reuses a name is reported by
    load_errors(); the registry keeps working with what did load."""
    site = tmp_path / "site"
    (site / "h1_bad_plugins-0.1.dist-info").mkdir(parents=True)
    (site / "h1_bad_plugins.py").write_text(BAD_PLUGINS, encoding="utf-8")
    (site / "h1_bad_import.py").write_text("raise ImportError('missing dep')\n", encoding="utf-8")
    info = site / "h1_bad_plugins-0.1.dist-info"
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: h1-bad-plugins\nVersion: 0.1\n", encoding="utf-8"
    )
    (info / "entry_points.txt").write_text(
        "[arroyo_lite.connectors]\n"
        "boom = h1_bad_import:Connector\n"
        "dup = h1_bad_plugins:Duplicate\n"
        "fragile = h1_bad_plugins:FailsInInit\n",
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(site))
    registry.reset()
    try:
        connectors = registry.all_connectors()
        assert set(connectors) == {
            "polling_http", "impulse", "single_file", "sse", "websocket", "stdout", "blackhole",
            "webhook", "filesystem",
        }  # fmt: skip
        assert isinstance(connectors["polling_http"], PollingHttpConnector)
        messages = sorted(e.message for e in registry.load_errors())
        assert messages == [
            "connector plugin 'dup' (h1_bad_plugins:Duplicate) reuses the name 'polling_http'; "
            "the first registration is kept",
            "could not create connector plugin 'fragile' (h1_bad_plugins:FailsInInit): "
            "RuntimeError: no config file",
            "could not load connector plugin 'boom' (h1_bad_import:Connector): "
            "ImportError: missing dep",
        ]
    finally:
        registry.reset()
