"""``INSERT INTO t (columns) query``: the column list is kept, checked, and honoured.

The front end keeps the list in ``Insert.columns`` and checks it against a memory table
defined in the same file; a real :class:`Session` stores each query column in the listed
table column (unlisted columns are NULL), also for a table created by an earlier call.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from arroyo_lite import Session
from arroyo_lite.errors import QueryError, ValidationErrors
from arroyo_lite.sql import compile_sql
from arroyo_lite.sql.statements import Insert


@pytest.fixture()
def session() -> Iterator[Session]:
    with Session(env={}) as s:
        yield s


def test_the_column_list_is_kept() -> None:
    program = compile_sql(
        "CREATE TABLE m (a INT, b TEXT);\nINSERT INTO m (b, a) SELECT 'x', 1;", env={}
    )
    insert = program.statements[1]
    assert isinstance(insert, Insert)
    assert (insert.target, insert.columns, insert.query) == ("m", ("b", "a"), "SELECT 'x', 1")


@pytest.mark.parametrize(
    ("columns", "message"),
    [("(a, c)", "column 'c' not found in table 'm'"),
     ("(a, A)", "column 'A' is listed twice in INSERT INTO")],
)  # fmt: skip
def test_a_bad_column_list_is_positioned(columns: str, message: str) -> None:
    with pytest.raises(ValidationErrors) as info:
        compile_sql(
            f"CREATE TABLE m (a INT, b TEXT);\nINSERT INTO m {columns} SELECT 1, 2;",
            file="i.sql",
            env={},
        )
    [error] = info.value
    assert error.message == message
    assert error.position is not None and (error.position.line, error.position.col) == (2, 13)


def test_columns_are_stored_by_name(session: Session) -> None:
    session.execute(
        "CREATE TABLE m (a INT, b TEXT, c DOUBLE);\n"
        "INSERT INTO m (c, a) SELECT * FROM (VALUES (1.5, 7), (2.5, 8)) AS v(x, y);"
    )
    rows = session.query("SELECT a, b, c FROM m ORDER BY a").to_pylist()
    assert rows == [{"a": 7, "b": None, "c": 1.5}, {"a": 8, "b": None, "c": 2.5}]


def test_a_table_from_an_earlier_call_is_checked_when_the_insert_runs(
    session: Session,
) -> None:
    session.execute("CREATE TABLE m (a INT, b TEXT);")
    with pytest.raises(QueryError, match="the column list must name each of the table's"):
        session.execute("INSERT INTO m (a, nope) SELECT 1, 'x';")
    with pytest.raises(QueryError, match="the query returns 1 column"):
        session.execute("INSERT INTO m (a, b) SELECT 1;")
    session.execute("INSERT INTO m (b) SELECT 'only b';")
    assert session.query("SELECT a, b FROM m").to_pylist() == [{"a": None, "b": "only b"}]
