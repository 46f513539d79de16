"""The one JSON path grammar (formats/json_path.py): what ``records.path`` and the cursor and
pagination paths accept, and the one way a bad path is reported at validate."""

from __future__ import annotations

from typing import Any

import pytest

from arroyo_lite.errors import ValidationErrors
from arroyo_lite.formats.json_path import ALL, JsonPathError, parse_path, value_path
from arroyo_lite.formats.records import RecordPath
from arroyo_lite.sql import compile_sql

BODY: Any = {
    "meta": {"next": "c2", "odd key": {"x": 1}},
    "data": [{"id": 1}, {"id": 7}],
    "paging": {"cursors": {"after": "A"}},
    "links": [{"href": "/p2"}],
    "more": False,
}


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("$", ()),
        ("$.meta.next", ("meta", "next")),
        ("paging.cursors.after", ("paging", "cursors", "after")),
        ("data[-1].id", ("data", -1, "id")),
        ("links[ 0 ].href", ("links", 0, "href")),
        ("$['meta'][\"odd key\"].x", ("meta", "odd key", "x")),
        ("$['it\\'s']", ("it's",)),
        ("$.data[*]", ("data", ALL)),
        ("$.data[ * ]", ("data", ALL)),
        ("$data", ("data",)),
        ("@odata-next", ("@odata-next",)),
    ],
)
def test_the_grammar(text: str, steps: tuple[Any, ...]) -> None:
    assert parse_path(text).steps == steps


@pytest.mark.parametrize(
    ("text", "where"),
    [("a..b", "'..b'"), ("$.", "'.'"), ("$..a", "'..a'"), ("$.a b", "' b'"), ("$[x]", "'[x]'"),
     ("$.a[", "'['"), ("$['a]", "\"['a]\"")],
)  # fmt: skip
def test_syntax_errors_say_where(text: str, where: str) -> None:
    with pytest.raises(JsonPathError) as info:
        parse_path(text)
    assert str(info.value).startswith(f"cannot read the path '{text}' at ")
    assert where.strip("'\"") in str(info.value) and info.value.hint


def test_one_path_object_finds_the_same_values_for_both_uses() -> None:
    for text in ("$.data", "data", "$['data']", "$.data[*]"):
        assert RecordPath.parse(text).select(BODY) == ("records", BODY["data"])
        assert parse_path(text).find(BODY) == BODY["data"]
    assert value_path("data[-1].id").find(BODY) == 7
    assert value_path("$['meta']['odd key'].x").find(BODY) == 1
    assert value_path("$.more").find(BODY) is False
    assert value_path("$.missing.deeper").find(BODY) is None
    assert value_path("data[5].id").find(BODY) is None
    assert RecordPath.parse("$.meta['odd key']").select(BODY) == ("record", {"x": 1})
    assert RecordPath.parse("$.missing").select(BODY) == ("none", None)


@pytest.mark.parametrize(
    ("text", "message"),
    [("$.a[*].b", "[*] is only allowed at the end"), ("$.a[0]", "an index such as [0]")],
)
def test_record_paths_take_member_names(text: str, message: str) -> None:
    with pytest.raises(JsonPathError) as info:
        RecordPath.parse(text)
    assert message in str(info.value) and "$.data" in info.value.hint


@pytest.mark.parametrize(
    ("text", "message"), [("$.data[*]", "[*] is not allowed"), ("$", "names no value")]
)
def test_value_paths_name_one_value(text: str, message: str) -> None:
    with pytest.raises(JsonPathError) as info:
        value_path(text)
    assert message in str(info.value)


def errors_of(options: str) -> list[Any]:
    sql = (
        "CREATE TABLE t (id BIGINT) WITH (\n  connector = 'polling_http',\n"
        f"  endpoint = 'http://127.0.0.1:1/x', format = 'json',\n  {options}\n);"
    )
    with pytest.raises(ValidationErrors) as info:
        compile_sql(sql, file="t.sql", env={})
    return list(info.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("'records.path' = '$.data[0]'", "invalid value for 'records.path': an index such as "
         "[0] is not allowed here in the path '$.data[0]'"),
        ("'records.path' = '$..a'", "invalid value for 'records.path': cannot read the path "
         "'$..a' at '..a'"),
        ("'cursor.path' = '$.data[*].id'", "invalid value for 'cursor.path': [*] is not allowed "
         "in the path '$.data[*].id'"),
        ("'pagination.type' = 'cursor', 'pagination.has_more_path' = '$'",
         "invalid value for 'pagination.has_more_path': the path '$' names no value"),
        ("'pagination.type' = 'json_link', 'pagination.next_url_path' = 'a..b'",
         "invalid value for 'pagination.next_url_path': cannot read the path 'a..b' at '..b'"),
    ],
)  # fmt: skip
def test_every_path_option_reports_a_bad_path_the_same_way(options: str, message: str) -> None:
    (error,) = errors_of(options)
    assert error.message == message
    assert error.hint
    assert error.position is not None and error.position.line == 4
    assert "t.sql:4:" in str(error)


def test_the_new_spellings_validate_in_both_places() -> None:
    sql = (
        "CREATE TABLE t (id BIGINT) WITH (connector = 'polling_http', "
        "endpoint = 'http://127.0.0.1:1/x?c=[[ cursor ]]', format = 'json', "
        "'records.path' = 'result.items[*]', 'cursor.path' = '$[''meta''][''next cursor'']', "
        "'pagination.type' = 'cursor', 'pagination.cursor_path' = 'data[-1].id', "
        "'pagination.has_more_path' = '$[\"more\"]');"
    )
    (table,) = compile_sql(sql, env={}).tables
    options: Any = table.connector_options
    assert options.cursor_path == "$['meta']['next cursor']"
    assert value_path(options.cursor_path).find({"meta": {"next cursor": "n"}}) == "n"
    assert RecordPath.parse(options.records_path).keys == ("result", "items")
