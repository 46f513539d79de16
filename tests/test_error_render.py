"""One error renderer (arroyo_lite.terminal.diagnostics.render_error): the gcc-style line, the
source excerpt with the caret, then the hint; and ``validate``, ``run``, ``test`` and the REPL
all print a SQL error with it, the same way."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from arroyo_lite import Session
from arroyo_lite.cli import main
from arroyo_lite.errors import ArroyoLiteError, SourcePosition, SqlError, ValidationErrors
from arroyo_lite.terminal.diagnostics import render_error, source_lines
from arroyo_lite.terminal.repl import Repl

BAD = """-- a typo in the connector, and a bad column type
CREATE TABLE t (a INT) WITH (connector = 'impuls');
CREATE TABLE u (a NOPE);
"""


def expected(path: str) -> list[str]:
    return [
        f"{path}:2:42: error: Unknown connector 'impuls'",
        "    2 | CREATE TABLE t (a INT) WITH (connector = 'impuls');",
        "      |                                          ^~~~~~~~",
        "  hint: did you mean 'impulse'?",
    ]


def test_render_error_puts_the_excerpt_between_message_and_hint() -> None:
    source = "SELECT 1;\n\tSELECT nosuch FROM t;\r\n"
    error = SqlError(
        "no column 'nosuch'",
        position=SourcePosition("q.sql", 2, 9, "nosuch"),
        hint="did you mean 'such'?",
    )
    assert render_error(error, source, file="q.sql").split("\n") == [
        "q.sql:2:9: error: no column 'nosuch'",
        "    2 | \tSELECT nosuch FROM t;",
        "      | \t       ^~~~~~",
        "  hint: did you mean 'such'?",
    ]


def test_render_error_without_source_position_or_matching_file() -> None:
    positioned = SqlError("bad", position=SourcePosition("other.sql", 1, 1, "x"))
    # A position in another file than the text given: no excerpt of the wrong text.
    assert render_error(positioned, "x;", file="q.sql") == "other.sql:1:1: error: bad"
    assert render_error(positioned) == "other.sql:1:1: error: bad"
    # No position: the file is named in front, so the line still says where.
    unplaced = ArroyoLiteError("cannot read file", hint="check the path")
    assert render_error(unplaced, None, file="q.sql").split("\n") == [
        "q.sql: error: cannot read file",
        "  hint: check the path",
    ]


def test_render_error_shows_each_of_several_errors() -> None:
    errors = ValidationErrors(
        [
            SqlError("first", position=SourcePosition("f.sql", 1, 1, "AB")),
            SqlError("second", position=SourcePosition("f.sql", 2, 3, "C"), hint="h"),
        ]
    )
    assert render_error(errors, "AB\nxxC", file="f.sql").split("\n") == [
        "f.sql:1:1: error: first",
        "    1 | AB",
        "      | ^~",
        "f.sql:2:3: error: second",
        "    2 | xxC",
        "      |   ^",
        "  hint: h",
    ]


def test_source_lines_split_on_newline_only() -> None:
    assert source_lines("a\x0cb\r\nc\u2028d\n") == ["a\x0cb", "c\u2028d", ""]


@pytest.fixture
def bad_file(tmp_path: Path) -> str:
    path = tmp_path / "bad.sql"
    path.write_text(BAD, encoding="utf-8")
    return str(path)


@pytest.mark.usefixtures("restore_loggers")  # run configures the process's loggers
@pytest.mark.parametrize("command", ["validate", "run", "test"])
def test_every_command_renders_the_same_error(command: str, bad_file: str) -> None:
    result = CliRunner().invoke(main, [command, bad_file])
    assert result.exit_code == 1
    lines = result.stderr.splitlines()
    assert lines[:4] == expected(bad_file)
    # and the next error of the file, also with its excerpt
    assert lines[4].startswith(f"{bad_file}:3:") and lines[5] == "    3 | CREATE TABLE u (a NOPE);"


def test_the_repl_renders_the_same_error(bad_file: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    with Session(env={}) as session:
        repl = Repl(
            session,
            console=Console(file=out, width=160),
            err=Console(file=err, width=160, soft_wrap=True),
            out=io.BytesIO(),
        )
        assert repl.handle(Path(bad_file).read_text(encoding="utf-8"), file=bad_file)
    assert err.getvalue().splitlines()[:4] == expected(bad_file)


def test_a_failing_query_in_the_repl_points_into_its_input() -> None:
    err = io.StringIO()
    with Session(env={}) as session:
        repl = Repl(
            session,
            console=Console(file=io.StringIO(), width=160),
            err=Console(file=err, width=160, soft_wrap=True),
            out=io.BytesIO(),
        )
        repl.handle("SELECT 1;")
        repl.handle("SELECT 2;\nSELECT countr\n  FROM (SELECT 1 AS counter);", line=3)
    lines = err.getvalue().splitlines()
    # Found when the statement is compiled, so the whole name is underlined.
    assert lines[0] == "<repl>:4:8: error: column 'countr' not found"
    assert lines[1:3] == ["    4 | SELECT countr", "      |        ^~~~~~"]


def test_shift_moves_a_snippet_position_into_the_file() -> None:
    start = SourcePosition("f.sql", 10, 5)
    # the snippet's first line starts at the statement's column; later lines at column 1
    assert start.shift(1, 8, "x") == SourcePosition("f.sql", 10, 12, "x")
    assert start.shift(3, 4) == SourcePosition("f.sql", 12, 4)
    assert start.shift(2, 0) == SourcePosition("f.sql", 11, 1)  # clamped to column 1


def test_after_finds_a_word_inside_a_statement() -> None:
    start = SourcePosition("f.sql", 4, 3)
    assert start.after("SELECT ", "x") == SourcePosition("f.sql", 4, 10, "x")
    assert start.after("SELECT a,\n  ") == SourcePosition("f.sql", 5, 3)
    assert start.after("") == start


def test_excerpt_masks_a_userinfo_password_and_keeps_the_caret_column(tmp_path: Path) -> None:
    path = tmp_path / "u.sql"
    path.write_text(
        "CREATE TABLE t (v TEXT) WITH (connector = 'polling_http', format = 'json',\n"
        "  endpoint = 'http://user:hunter2secret@127.0.0.1:1/x', method = 'get');\n"
        "SELECT * FROM t;\n"
    )
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 1
    assert "hunter2" not in result.output and "secret@" not in result.output
    line, caret = result.output.splitlines()[1:3]
    assert "http://user:*************@127.0.0.1:1/x" in line
    assert line[caret.index("^")] == "'" and line[caret.index("^") :].startswith("'get'")


def test_excerpt_of_a_very_long_line_is_a_window_around_the_token() -> None:
    columns = ", ".join(f"c{i}" for i in range(1000))
    text = f"SELECT {columns}, nosuch, {columns} FROM t;"
    col = text.index("nosuch") + 1
    error = SqlError("no column 'nosuch'", position=SourcePosition("q.sql", 1, col, "nosuch"))
    shown, caret = render_error(error, text, file="q.sql").splitlines()[1:3]
    assert len(shown) < 200 and shown.endswith("…") and "    1 | …" in shown
    assert shown[caret.index("^") :].startswith("nosuch")
