"""The README's push-sources section: its SQL validates and its option table is complete."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from arroyo_lite.connectors.registry import get_connector
from arroyo_lite.sql import compile_sql

README = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
SECTION = README.split("<!-- section: streaming -->")[1].split("<!-- /section: streaming -->")[0]
SQL_BLOCKS = re.findall(r"```sql\n(.*?)```", SECTION, re.DOTALL)


@pytest.mark.parametrize("block", SQL_BLOCKS)
def test_sql_blocks_validate(block: str) -> None:
    tables = compile_sql(block + "\nSELECT 1;", file="readme.sql", env={}).tables
    assert {t.connector for t in tables} == {"sse", "websocket"}


@pytest.mark.parametrize("name", ["sse", "websocket"])
def test_every_option_is_documented(name: str) -> None:
    rows = [line for line in SECTION.splitlines() if line.startswith("| ")]
    for key, prop in get_connector(name).options_schema()["properties"].items():
        shown = key + ".0" if prop.get("type") == "array" else key
        [row] = [r for r in rows if f"`{shown}`" in r.split("|")[2]]
        assert ("both" in row) or (name in row.split("|")[1]), row
        assert ("*(extension)*" in row) == bool(prop.get("x-extension")), row
