"""``validate`` never tracebacks at any nesting depth (issue 8, item 4).

sqlglot's parser recurses per nesting level; 46 nested parentheses used to end in a
2,700-line ``RecursionError``. Brackets and ``ARRAY<``/``STRUCT<`` types are bounded before
parsing (a positioned error at the token one level too deep); any other deep nesting
(``NOT NOT ... x``) is caught and reported at the statement. Runs the real command through
click's CliRunner on real files.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from arroyo_lite.cli import main
from arroyo_lite.errors import ValidationErrors
from arroyo_lite.sql import compile_sql
from arroyo_lite.sql.parse import MAX_NESTING

IMPULSE = "CREATE TABLE t WITH (connector = 'impulse', event_rate = '1');\n"
HTTP = "WITH (connector = 'polling_http', endpoint = 'http://127.0.0.1:9/', format = 'json');"


def parens(depth: int) -> str:
    return IMPULSE + "SELECT " + "(" * depth + "counter" + ")" * depth + " FROM t;"


def calls(depth: int) -> str:
    return IMPULSE + "SELECT " + "abs(" * depth + "counter" + ")" * depth + " FROM t;"


def arrays(depth: int) -> str:
    return "CREATE TABLE h (x " + "ARRAY<" * depth + "INT" + ">" * depth + ") " + HTTP


def arrays_of_structs(depth: int) -> str:
    """``depth`` levels alternating ARRAY< and STRUCT< (an array's element cannot be an
    array, as in Arroyo's types.rs)."""
    levels = "".join("ARRAY<" if i % 2 == 0 else "STRUCT<a " for i in range(depth))
    return "CREATE TABLE h (x " + levels + "INT" + ">" * depth + ") " + HTTP


def structs(depth: int) -> str:
    return "CREATE TABLE h (x " + "STRUCT<a " * depth + "INT" + ">" * depth + ") " + HTTP


def option(depth: int) -> str:
    return "CREATE TABLE t WITH (connector = 'impulse', event_rate = " + (
        "(" * depth + "'1'" + ")" * depth + ");"
    )


TOO_DEEP = [
    pytest.param(parens(46), 2, id="46 parentheses"),
    pytest.param(parens(5000), 2, id="5000 parentheses"),
    pytest.param(calls(100), 2, id="100 nested calls"),
    pytest.param(arrays(60), 1, id="60 ARRAY<"),
    pytest.param(arrays(3000), 1, id="3000 ARRAY<"),
    pytest.param(structs(60), 1, id="60 STRUCT<"),
    pytest.param(option(200), 1, id="200 parentheses in a WITH option"),
]


@pytest.mark.parametrize(("sql", "line"), TOO_DEEP)
def test_deep_brackets_are_a_positioned_error(sql: str, line: int, tmp_path: Path) -> None:
    path = tmp_path / "deep.sql"
    path.write_text(sql)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert f"deep.sql:{line}:" in result.output
    assert f"error: recursion limit exceeded: more than {MAX_NESTING} nested levels" in (
        result.output
    )
    with pytest.raises(ValidationErrors) as info:
        compile_sql(sql, env={})
    [error] = info.value.errors
    assert error.position is not None and error.position.line == line
    # The caret is on the bracket that goes one level too deep.
    text_line = sql.splitlines()[line - 1]
    opened = text_line[: error.position.col - 1]
    assert opened.count("(") + opened.count("<") == MAX_NESTING


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param(parens(MAX_NESTING), id="parentheses"),
        pytest.param(calls(MAX_NESTING), id="calls"),
        # The column list's parenthesis is one of the levels.
        pytest.param(arrays_of_structs(MAX_NESTING - 1), id="ARRAY<"),
        pytest.param(structs(MAX_NESTING - 1), id="STRUCT<"),
    ],
)
def test_nesting_up_to_the_limit_is_accepted(sql: str) -> None:
    compile_sql(sql, env={})


@pytest.mark.parametrize(
    "sql",
    [
        pytest.param(IMPULSE + "SELECT " + "NOT " * 3000 + "true FROM t;", id="3000 NOT"),
        pytest.param(IMPULSE + "SELECT " + "- " * 5000 + "1 FROM t;", id="5000 unary minus"),
    ],
)
def test_deep_nesting_without_brackets_is_an_error_not_a_traceback(
    sql: str, tmp_path: Path
) -> None:
    path = tmp_path / "deep.sql"
    path.write_text(sql)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert "Traceback" not in result.output
    if result.exit_code == 0:
        return  # accepted: also a valid answer
    assert result.exit_code == 1, result.output
    assert "deep.sql:2:1: error: recursion limit exceeded" in result.output
