"""Arroyo SQL -> DuckDB translation, checked by running the result on a real DuckDB."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from arroyo_lite.errors import QueryError
from arroyo_lite.sql.transpile import to_duckdb

ARRAY_DOC = '[{"a":1,"b":"x"},{"a":2,"b":"y"}]'
OBJECT_DOC = '{"a":{"b":3,"c":"s","d":[1,2,3]},"t":true}'
T0 = 1_700_000_000_000_000_000  # 2023-11-14 22:13:20


@pytest.fixture()
def con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET python_enable_replacements = false")
    table = pa.table(
        {
            "value": [ARRAY_DOC, OBJECT_DOC],
            "_timestamp": pa.array([T0, T0 + 61_000_000_000], pa.timestamp("ns")),
        }
    )
    con.register("t", table)
    return con


def naive(*parts: int) -> dt.datetime:
    """A timezone-less datetime, as DuckDB returns TIMESTAMP values (UTC wall time)."""
    return dt.datetime(*parts, tzinfo=dt.UTC).replace(tzinfo=None)


def run(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = con.sql(to_duckdb(sql)).fetchall()
    return rows


def test_plain_duckdb_sql_is_passed_through_verbatim() -> None:
    sql = "SELECT value ->> 'a',\n  count(*) FROM t GROUP BY 1"
    assert to_duckdb(sql) is sql


def test_unparseable_text_is_passed_through_for_duckdb_to_report() -> None:
    sql = "SELECT json_get(value, FROM"
    assert to_duckdb(sql) == sql


def test_unnest_extract_json_gives_one_row_per_element(con: duckdb.DuckDBPyConnection) -> None:
    rows = run(con, "SELECT unnest(extract_json(value, '$[*]')) AS v FROM t")
    assert rows == [('{"a":1,"b":"x"}',), ('{"a":2,"b":"y"}',)]


def test_extract_json_without_wildcard_gives_zero_or_one_element(
    con: duckdb.DuckDBPyConnection,
) -> None:
    assert run(con, "SELECT extract_json(value, '$.a.b') FROM t") == [([],), (["3"],)]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("extract_json_string(value, '$[*].b')", ["x", None]),
        ("extract_json_string(value, '$.a.c')", [None, "s"]),
        ("get_first_json_object(value, '$.a')", [None, '{"b":3,"c":"s","d":[1,2,3]}']),
        ("get_first_json_object(value, '$[*]')", ['{"a":1,"b":"x"}', None]),
        ("json_get(value, 'a', 'b')::INT", [None, 3]),
        ("json_get_str(value, 'a', 'c')", [None, "s"]),
        ("json_get_str(value, 'a', 'b')", [None, None]),
        ("json_get_int(value, 'a', 'b')", [None, 3]),
        ("json_get_int(value, 0, 'a')", [1, None]),
        ("json_get_float(value, 'a', 'b')", [None, 3.0]),
        ("json_get_bool(value, 't')", [None, True]),
        ("json_get_json(value, 'a', 'd')", [None, "[1,2,3]"]),
        ("json_as_text(value, 'a', 'c')", [None, "s"]),
        ("json_as_text(value, 'a', 'b')", [None, "3"]),
        ("json_length(value)", [2, 2]),
        ("json_length(value, 'a', 'd')", [None, 3]),
        ("json_contains(value, 'a')", [False, True]),
        ("value -> 'a' ->> 'c'", [None, "s"]),
        ("value ->> 'a'", [None, '{"b":3,"c":"s","d":[1,2,3]}']),
    ],
)
def test_json_functions(con: duckdb.DuckDBPyConnection, expr: str, expected: list[Any]) -> None:
    assert [r[0] for r in run(con, f"SELECT {expr} FROM t")] == expected


def test_row_time_is_the_timestamp_column(con: duckdb.DuckDBPyConnection) -> None:
    rows = run(con, "SELECT row_time() FROM t ORDER BY 1")
    assert rows[0][0] == naive(2023, 11, 14, 22, 13, 20)


def test_bare_expression_translates() -> None:
    assert "JSON_EXTRACT" in to_duckdb("json_get_int(value, 'id')").upper()


def test_tumble_groups_by_time_bucket(con: duckdb.DuckDBPyConnection) -> None:
    sql = "SELECT tumble(interval '1 minute') AS w, count(*) FROM t GROUP BY w ORDER BY 1"
    rows = run(con, sql)
    assert [(r[0]["start"], r[0]["end"], r[1]) for r in rows] == [
        (naive(2023, 11, 14, 22, 13), naive(2023, 11, 14, 22, 14), 1),
        (naive(2023, 11, 14, 22, 14), naive(2023, 11, 14, 22, 15), 1),
    ]


def test_tumble_aliased_window_as_in_arroyo(con: duckdb.DuckDBPyConnection) -> None:
    # Arroyo's docs name the window column `window`, a reserved word in DuckDB: it gets quoted.
    sql = (
        "SELECT window.start AS s, n FROM (SELECT tumble(interval '1 minute') AS window, "
        "count(*) AS n FROM t GROUP BY window) ORDER BY s"
    )
    assert run(con, sql) == [
        (naive(2023, 11, 14, 22, 13), 1),
        (naive(2023, 11, 14, 22, 14), 1),
    ]


def test_hop_counts_each_row_in_every_window_it_falls_in(con: duckdb.DuckDBPyConnection) -> None:
    # Rows at 22:13:20 and 22:14:21; 1-minute windows sliding every 30 s.
    sql = (
        "SELECT hop(interval '30 seconds', interval '1 minute') AS window, count(*) AS n "
        "FROM t WHERE value IS NOT NULL GROUP BY window ORDER BY window"
    )
    rows = [(r[0]["start"].time().isoformat(), r[0]["end"].time().isoformat(), r[1])
            for r in run(con, sql)]
    assert rows == [
        ("22:12:30", "22:13:30", 1),
        ("22:13:00", "22:14:00", 1),
        ("22:13:30", "22:14:30", 1),
        ("22:14:00", "22:15:00", 1),
    ]


def test_hop_over_a_join_is_rejected() -> None:
    with pytest.raises(QueryError, match="one table"):
        to_duckdb(
            "SELECT count(*) FROM t JOIN u ON t.a = u.a "
            "GROUP BY hop(interval '1 second', interval '5 seconds')"
        )


def test_session_windows_outside_a_group_by_are_reported() -> None:
    with pytest.raises(QueryError, match="session"):
        to_duckdb("SELECT session(interval '30 minutes') AS w FROM t")


def test_key_with_quotes_is_escaped(con: duckdb.DuckDBPyConnection) -> None:
    con.register("q", pa.table({"value": ['{"a\\"b": 7}']}))
    assert con.sql(to_duckdb("""SELECT json_get_int(value, 'a"b') FROM q""")).fetchall() == [(7,)]
