"""The README's polling section: its SQL example compiles, and it documents every option."""

from __future__ import annotations

import re
from pathlib import Path

from click.testing import CliRunner

from arroyo_lite.cli import main
from arroyo_lite.connectors.polling_http.options import PollingHttpOptions
from arroyo_lite.connectors.registry import get_connector
from arroyo_lite.sql import compile_sql

README = Path(__file__).resolve().parents[1] / "README.md"


def section() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- section: polling -->(.*)<!-- /section: polling -->", text, re.S)
    assert match is not None
    return match.group(1)


def test_sql_examples_compile() -> None:
    sql, *others = re.findall(r"```sql\n(.*?)```", section(), re.S)
    for text in others:
        assert compile_sql(text, file="README.md", env={"API_TOKEN": "x"}).tables
    [table] = compile_sql(sql, file="README.md", env={"API_TOKEN": "x"}).tables
    options = table.connector_options
    assert isinstance(options, PollingHttpOptions)
    assert options.emit_behavior == "changed"
    assert options.timeout_ms == 3000
    assert options.max_backoff_ms == 30000


def test_every_option_is_documented() -> None:
    schema = get_connector("polling_http").options_schema()
    text = section()
    for key in schema["properties"]:
        assert f"| `{key}` |" in text, f"option {key} is not in the README's options table"
        if schema["properties"][key].get("x-extension"):
            assert re.search(rf"\| `{key}` \| [^|]+ \| \*Extension\.\*", text), key
    for pattern in schema.get("patternProperties", {}):
        family = pattern.strip("^$").split("\\.")[0]
        assert re.search(rf"\| `{family}\.<name>` \| [^|]+ \| \*Extension\.\*", text), family


def test_documented_test_command_options_exist() -> None:
    help_text = CliRunner().invoke(main, ["test", "--help"]).output
    heading = re.search(r"### `arroyo-lite test ([^`]*)`", section())
    assert heading is not None
    for option in re.findall(r"--[a-z]+", heading.group(1)):
        assert option in help_text


def test_records_example_compiles_and_runs_as_documented() -> None:
    _, records, *_ = re.findall(r"```sql\n(.*?)```", section(), re.S)
    [table] = compile_sql(records, file="README.md", env={}).tables
    options = table.connector_options
    assert isinstance(options, PollingHttpOptions)
    assert (options.records_path, options.emit_behavior) == ("$.features[*]", "dedup")
    assert table.primary_key == ("id",)
    assert [c.metadata_key for c in table.metadata_columns] == ["status", "poll"]
    # Every metadata key the README's table lists is one polling_http supplies, typed so.
    fields = get_connector("polling_http").metadata_fields()
    metadata_part = section().split("**HTTP metadata columns**", 1)[1]
    documented = re.findall(r"^\| `([a-z_.<>]+)` \| `([A-Z]+)` \|", metadata_part, re.M)
    assert {k.replace("<name>", "*"): t for k, t in documented} == dict(fields)
