"""Same meaning as Arroyo: planner rules, types and query checks, case by case (issue 9).

Every case names the file of Arroyo's source (``github:ArroyoSystems/arroyo``, commit
``addb390a``) that it follows; DataFusion's wording comes from Arroyo's DataFusion fork
(``ArroyoSystems/arrow-datafusion``, branch ``48.0.1/arroyo``). Arroyo shows a DataFusion
error's *diagnostic* message when it has one (``parse_and_get_program`` in
``crates/arroyo-planner/src/lib.rs``), so that is the wording compared here.
"""

from __future__ import annotations

import pytest

from arroyo_lite.errors import SqlError, ValidationErrors
from arroyo_lite.sql import compile_sql

IMPULSE_RS = "crates/arroyo-connectors/src/impulse/mod.rs"


def errors_of(sql: str) -> list[SqlError]:
    with pytest.raises(ValidationErrors) as info:
        compile_sql(sql, file="t.sql", env={})
    return list(info.value)


def check(sql: str, message: str, line: int, col: int) -> None:
    errors = errors_of(sql)
    assert [(e.message, e.position.line, e.position.col) for e in errors if e.position] == [
        (message, line, col)
    ], [e.format() for e in errors]


# -- 1. impulse: Arroyo's impulse_schema() -----------------------------------------------

IMPULSE_CASES = [
    # (Arroyo file, sql, message, line, col)
    (IMPULSE_RS, "CREATE TABLE i (counter BIGINT UNSIGNED NOT NULL, subtask_index BIGINT UNSIGNED "
     "NOT NULL) WITH (connector = 'impulse', event_rate = 1);",
     "invalid schema for impulse source", 1, 17),
    (IMPULSE_RS, "CREATE TABLE i (counter BIGINT, subtask_index BIGINT) "
     "WITH (connector = 'impulse', event_rate = 1);", "invalid schema for impulse source", 1, 17),
    # Even Arroyo's own schema: SQL fields never carry the sql_name impulse_schema() sets.
    (IMPULSE_RS, "CREATE TABLE i (counter BIGINT NOT NULL,\n  subtask_index BIGINT NOT NULL) "
     "WITH (connector = 'impulse', event_rate = 1);", "invalid schema for impulse source", 1, 17),
]  # fmt: skip


@pytest.mark.parametrize(("arroyo_file", "sql", "message", "line", "col"), IMPULSE_CASES)
def test_impulse_schema(arroyo_file: str, sql: str, message: str, line: int, col: int) -> None:
    check(sql, message, line, col)


def test_impulse_columns_are_signed_bigint() -> None:
    """``source_field("counter", FieldType::Int64)`` (impulse/mod.rs): signed, NOT NULL."""
    import pyarrow as pa

    program = compile_sql("CREATE TABLE i WITH (connector = 'impulse', event_rate = 1);", env={})
    (table,) = program.tables
    assert [(c.name, c.data_type, c.nullable, c.sql_type) for c in table.columns] == [
        ("counter", pa.int64(), False, "BIGINT"),
        ("subtask_index", pa.int64(), False, "BIGINT"),
    ]


def test_impulse_counter_arithmetic_goes_below_zero() -> None:
    """Signed counters: ``counter - 10`` is negative for the first rows (an overflow with the
    unsigned columns this replaced)."""
    from arroyo_lite import Session
    from tests.support.threaded_server import wait_for

    with Session(env={}) as session:
        session.execute(
            "CREATE TABLE ticks WITH (connector = 'impulse', event_rate = 1000, "
            "message_count = 20);"
        )
        wait_for(lambda: session.query("SELECT count(*) AS n FROM ticks")["n"][0].as_py() == 20)
        rows = session.query("SELECT counter - 10 AS d FROM ticks ORDER BY counter")
    assert rows["d"].to_pylist() == list(range(-10, 10))
