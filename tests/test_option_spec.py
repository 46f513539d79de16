"""Options declared once: the derived schema matches Arroyo's table.json, and everything
(pulls, defaults, listing, typed object, extension usage) comes from the one declaration."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from importlib import resources
from typing import Any

import pytest
from click.testing import CliRunner

from arroyo_lite.cli import main
from arroyo_lite.connectors import registry
from arroyo_lite.connectors.base import Connector
from arroyo_lite.connectors.option_spec import (
    OptionKind,
    OptionSet,
    extensions_in,
    option,
    option_group,
)
from arroyo_lite.connectors.polling_http.options import PollingHttpOptions
from arroyo_lite.sql import compile_sql
from arroyo_lite.sql.generic_options import GENERIC_OPTIONS_SCHEMA

#: Built-in connectors that exist in Arroyo, with the package holding the record of its schema.
ARROYO_CONNECTORS = {
    "polling_http": "arroyo_lite.connectors.polling_http",
    "impulse": "arroyo_lite.connectors.impulse",
    "sse": "arroyo_lite.connectors.sse",
    "websocket": "arroyo_lite.connectors.websocket",
}
_COMPARED = ("type", "format", "enum")


def _arroyo_record(package: str) -> dict[str, Any]:
    text = resources.files(package).joinpath("table.json").read_text(encoding="utf-8")
    record: dict[str, Any] = json.loads(text)
    return record


@pytest.mark.parametrize("name", sorted(ARROYO_CONNECTORS))
def test_derived_schema_keeps_arroyos_table_json(name: str) -> None:
    arroyo = _arroyo_record(ARROYO_CONNECTORS[name])
    ours = registry.get_connector(name).options_schema()
    props = ours["properties"]
    own = {k: v for k, v in props.items() if not v.get("x-extension")}
    # The same Arroyo keys, and every other key marked as an extension.
    assert set(own) == set(arroyo["properties"])
    assert ours["required"] == arroyo["required"]
    assert ours["title"] == arroyo["title"]
    for key, theirs in arroyo["properties"].items():
        for attr in _COMPARED:
            value = own[key].get(attr)
            if attr == "enum" and value is not None:
                # Values of ours on an Arroyo option are marked, and come after Arroyo's.
                extra = own[key].get("x-extension-values", [])
                value = [v for v in value if v not in extra]
            assert value == theirs.get(attr), (key, attr)
        if "minimum" in theirs:
            # A bound of ours may be tighter than Arroyo's, never looser.
            bound = own[key].get("minimum", own[key].get("exclusiveMinimum"))
            assert bound is not None and bound >= theirs["minimum"], key


def test_options_object_fields_are_the_declared_options() -> None:
    schema = registry.get_connector("polling_http").options_schema()
    keys = schema["properties"]
    names = [f.name for f in fields(PollingHttpOptions)]
    assert [n for n in names if n != "query"] == [k.replace(".", "_") for k in keys]
    assert list(schema["patternProperties"]) == ["^query\\..+$"]
    defaults = {k: v["default"] for k, v in keys.items() if "default" in v}
    assert defaults == {
        "method": "GET", "poll_interval_ms": 1000, "emit_behavior": "all",
        "timeout_ms": 5000, "max_body_bytes": 5 * 1024 * 1024, "max_backoff_ms": 60000,
        "changed.compare": "body", "dedup.max_keys": 1_000_000,
        "pagination.max_pages": 100, "pagination.cursor_param": "cursor",
        "pagination.limit": 100, "pagination.offset_param": "offset",
        "pagination.limit_param": "limit", "pagination.page_param": "page",
        "pagination.start_page": 1, "auth.api_key.name": "X-Api-Key",
        "auth.api_key.location": "header", "auth.client_auth": "basic",
        "conditional_requests": True,
    }  # fmt: skip
    built = compile_sql(
        "CREATE TABLE t (v TEXT) WITH (connector = 'polling_http', "
        "endpoint = 'http://127.0.0.1:1/x', format = 'json');"
    ).tables[0].connector_options
    assert built == PollingHttpOptions(endpoint="http://127.0.0.1:1/x")
    for key, value in defaults.items():
        assert getattr(built, key.replace(".", "_")) == value


SQL = """CREATE TABLE t (v TEXT) WITH (
  connector = 'polling_http',
  endpoint = 'http://127.0.0.1:1/x',
  format = 'json',
  timeout_ms = 100,
  max_backoff_ms = '2000'
);"""


def test_extensions_used_by_a_table_with_their_positions() -> None:
    [table] = compile_sql(SQL, file="t.sql").tables
    used = registry.get_connector("polling_http").extensions_used(table)
    assert [(u.key, u.position and (u.position.line, u.position.col)) for u in used] == [
        ("timeout_ms", (5, 3)),
        ("max_backoff_ms", (6, 3)),
    ]
    with_retention = SQL.replace("format = 'json',", "format = 'json', 'retention.max_rows' = 5,")
    retained = compile_sql(with_retention)
    [generic] = extensions_in(retained.tables[0], GENERIC_OPTIONS_SCHEMA)
    assert generic.key == "retention.max_rows" and generic.position is not None
    plain = compile_sql(
        "CREATE TABLE i WITH (connector = 'impulse', event_rate = 1);"
    ).tables[0]
    assert registry.get_connector("impulse").extensions_used(plain) == ()


@dataclass(frozen=True, slots=True)
class _TinyOptions:
    """A plugin's options, declared only as a dataclass: no parse_options, no schema file."""

    path: str = option(OptionKind.STRING, "Where to write.", required=True)
    lines: int = option(OptionKind.INTEGER, "How many.", default=3, exclusive_minimum=0)
    fancy: bool = option(OptionKind.BOOLEAN, "Pretty output.", default=False, extension=True)


class _TinyConnector(Connector):
    name = "tiny"
    description = "test connector declared with an option set"
    source = False
    sink = True
    option_set = OptionSet(_TinyOptions, title="TinyTable", description="tiny options")


def test_a_connector_declared_only_by_its_option_set() -> None:
    from sqlglot import exp

    from arroyo_lite.connectors.options import OptionReader, OptionValue
    from arroyo_lite.errors import SqlError

    connector = _TinyConnector()

    def reader(**values: exp.Expr) -> OptionReader:
        return OptionReader(OptionValue(k, v, v.sql()) for k, v in values.items())

    table: Any = None
    parsed = connector.parse_options(
        reader(path=exp.Literal.string("/tmp/x"), fancy=exp.Boolean(this=True)), table
    )
    assert parsed == _TinyOptions(path="/tmp/x", lines=3, fancy=True)
    with pytest.raises(SqlError, match="invalid value for 'lines': 0"):
        connector.parse_options(
            reader(path=exp.Literal.string("/x"), lines=exp.Literal.number(0)), table
        )
    with pytest.raises(SqlError, match="required option 'path' not set"):
        connector.parse_options(reader(), table)
    r = reader(path=exp.Literal.string("/x"), fancy=exp.Boolean(this=False))
    connector.parse_options(r, table)
    assert [u.key for u in connector.option_set.extensions_used(r)] == ["fancy"]  # type: ignore[union-attr]


def test_listing_marks_the_declared_extensions() -> None:
    output = CliRunner().invoke(main, ["connectors", "polling_http"]).output
    for line in output.splitlines():
        key = line.split()[0] if line.startswith("  ") else None
        if key in ("timeout_ms", "max_body_bytes", "max_backoff_ms"):
            assert "[extension]" in line, line
        elif key in ("endpoint", "headers", "method", "body", "poll_interval_ms"):
            assert "[extension]" not in line, line


def test_an_option_group_derives_each_key_from_the_field_name() -> None:
    paging = option_group("paging.deep", extension=True)

    @dataclass(frozen=True)
    class Grouped:
        paging_deep_max_pages: int = paging(OptionKind.INTEGER, "Most pages.", default=3)
        paging_deep_other: str | None = paging(OptionKind.STRING, "Explicit.", key="p.o")

    specs = {spec.key: spec for spec in OptionSet(Grouped, title="G", description="").specs}
    assert list(specs) == ["paging.deep.max_pages", "p.o"]
    assert all(spec.extension for spec in specs.values())
    assert specs["paging.deep.max_pages"].default == 3


def test_an_option_group_refuses_a_field_its_name_does_not_spell() -> None:
    paging = option_group("paging")

    @dataclass(frozen=True)
    class Misnamed:
        max_pages: int = paging(OptionKind.INTEGER, "Most pages.", default=3)

    with pytest.raises(TypeError, match="'max_pages' of group 'paging' must be named paging_"):
        OptionSet(Misnamed, title="M", description="")
