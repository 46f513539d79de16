"""Arroyo's join rules at validation (sql/join_rules.py): non-inner joins need windows, and
neither side of a join may be updating; both with Arroyo's exact message, at the join's right
input. Also ``CAST(... AS BIGINT UNSIGNED)`` in a query, which Arroyo's parser accepts."""

from __future__ import annotations

import pytest

from arroyo_lite import Session
from arroyo_lite.errors import ValidationErrors
from arroyo_lite.sql import compile_sql

TABLE = """CREATE TABLE impulse (
  counter BIGINT UNSIGNED NOT NULL,
  subtask_index BIGINT UNSIGNED NOT NULL
) WITH (connector = 'single_file', path = 'in.json', format = 'json', type = 'source');
"""
RIGHT = "(SELECT counter % 2 AS m, CAST(count(*) AS BIGINT UNSIGNED) AS n FROM impulse GROUP BY 1)"
NON_INNER = "This feature is not implemented: can't handle non-inner joins without windows"
UPDATING_RIGHT = "Error during planning: can't handle updating right side of join"


def problems(query: str) -> list[tuple[str, int, int]]:
    try:
        compile_sql(TABLE + query, file="j.sql", env={})
    except ValidationErrors as e:
        return [(p.message, p.position.line, p.position.col) for p in e if p.position]
    return []


@pytest.mark.parametrize(
    ("join", "where", "message"),
    [
        ("LEFT JOIN", "WHERE counter < 3", NON_INNER),
        ("FULL OUTER JOIN", "WHERE counter < 3", NON_INNER),  # becomes a LEFT join
        ("RIGHT JOIN", "", NON_INNER),
        # the WHERE rejects NULL counters: the right join is an inner one (EliminateOuterJoin)
        ("RIGHT JOIN", "WHERE counter < 3", UPDATING_RIGHT),
        ("FULL JOIN", "WHERE counter < 3 AND n > 0", UPDATING_RIGHT),
        ("JOIN", "", UPDATING_RIGHT),
    ],
)
def test_joins_arroyo_refuses(join: str, where: str, message: str) -> None:
    query = f"SELECT counter, m, n FROM impulse\n  {join} {RIGHT}\n  ON counter = n {where};"
    ((got, line, col),) = problems(query)
    assert (got, line) == (message, 6)
    assert col > len(join) + 3  # inside the join's right input


def test_an_updating_view_on_the_left_is_refused() -> None:
    query = (
        "CREATE VIEW counts AS SELECT count(*) AS c, subtask_index FROM impulse GROUP BY 2;\n"
        "SELECT a.c FROM counts a JOIN impulse b ON a.subtask_index = b.subtask_index;"
    )
    assert problems(query) == [("Error during planning: can't handle updating left side of join",
                                6, 31)]  # fmt: skip


def test_an_inner_join_of_two_append_only_inputs_is_accepted() -> None:
    query = (
        "SELECT a.counter FROM impulse a JOIN (SELECT counter FROM impulse WHERE counter > 1)"
        " b ON a.counter = b.counter;"
    )
    assert problems(query) == []


def test_unsigned_casts_run_as_uint64_and_uint32() -> None:
    with Session() as session:
        session.execute("CREATE TABLE m (v BIGINT)")
        table = session.query(
            "SELECT CAST(7 AS BIGINT UNSIGNED) AS a, CAST(8 AS INT UNSIGNED) AS b"
        )
    assert [str(f.type) for f in table.schema] == ["uint64", "uint32"]
    assert table.to_pylist() == [{"a": 7, "b": 8}]
