"""arroyo-lite's DuckDB functions are defined when a statement first calls one
(:mod:`arroyo_lite.query.builtins`), and everything a user sees is as if they always were:
results, views, cursors of continuous queries, and DuckDB's did-you-mean for a misspelt name;
the engine's connection opening on a thread (:mod:`arroyo_lite.query.connection`) is handed
over or closed, and never outlives the process. Real sessions over an ``impulse`` table,
real DuckDB."""

from __future__ import annotations

import subprocess
import sys
import threading

import duckdb
import pytest

from arroyo_lite import Session
from arroyo_lite.errors import QueryError
from arroyo_lite.formats import cbor
from arroyo_lite.query.builtins import DEFINERS, functions_called
from arroyo_lite.query.connection import PendingConnection
from arroyo_lite.sql import aggregates
from arroyo_lite.sql.transpile import to_duckdb

IMPULSE = "CREATE TABLE t WITH (connector = 'impulse', event_rate = 1000, message_count = 3);"

#: The catalog's view of which of arroyo-lite's functions the session's database has. Its
#: text names them all, in string literals only: DuckDB's parse tree calls none of them.
DEFINED = (
    "SELECT DISTINCT function_name FROM duckdb_functions() WHERE function_name IN ("
    + ", ".join(f"'{name}'" for name in sorted(DEFINERS))
    + ") ORDER BY 1"
)

CBOR_A1 = "'\\xa1\\x61\\x61\\x01'::BLOB"  # {"a": 1}


def defined(session: Session) -> list[str]:
    return [row["function_name"] for row in session.query(DEFINED).to_pylist()]


@pytest.fixture
def session():
    with Session() as s:
        s.execute(IMPULSE)
        yield s


def test_a_plain_query_defines_none_and_each_call_defines_its_own(session):
    assert session.query("SELECT counter FROM t ORDER BY counter LIMIT 1").num_columns == 1
    assert defined(session) == []
    rows = session.query(f"SELECT cbor_to_json({CBOR_A1}) AS j").to_pylist()
    assert rows == [{"j": '{"a":1}'}]
    assert defined(session) == ["cbor_to_json"]
    session.query("SELECT median(counter) AS m FROM t")  # translated to arroyo_median
    assert defined(session) == sorted(DEFINERS)


#: Rows of their own (an impulse table's rows arrive over time).
NUMBERS = "(VALUES (7), (-7), (7)) AS n(x)"


@pytest.mark.parametrize(
    ("sql", "macro", "rows"),
    [
        # sum is DataFusion's (a BIGINT of integers): translated to arroyo_sum.
        (f"SELECT sum(x) AS v FROM {NUMBERS}", aggregates.SUM, [{"v": 7}]),
        (f"SELECT sum(DISTINCT x) AS v FROM {NUMBERS}", aggregates.SUM_DISTINCT, [{"v": 0}]),
        # a / b of two integers is DataFusion's integer division, truncating toward zero:
        # translated to arroyo_div.
        (f"SELECT x / 2 AS v FROM {NUMBERS} ORDER BY x", aggregates.DIV,
         [{"v": -3}, {"v": 3}, {"v": 3}]),
    ],
)
def test_a_datafusion_sum_or_division_defines_its_macro_when_called(session, sql, macro, rows):
    assert session.query(f"SELECT x FROM {NUMBERS} ORDER BY x").num_rows == 3
    assert defined(session) == []
    # What provide() sees: the translated text names the macro, DuckDB's tree calls it, and
    # it is one of the names defined on demand (not left to the "does not exist" retry).
    assert DEFINERS[macro] is aggregates.install
    called = functions_called(duckdb.connect(), to_duckdb(sql))
    assert called is not None and macro in called
    assert session.query(sql).to_pylist() == rows
    assert macro in defined(session)


def test_a_view_and_a_continuous_query_over_it_see_the_function(session):
    session.execute(f"CREATE VIEW v AS SELECT cbor_to_json({CBOR_A1}) AS j, counter FROM t")
    stream = session.stream("SELECT j FROM v", timeout=5)
    try:
        rows = next(iter(stream)).to_pylist()
    finally:
        stream.close()
    assert rows[0] == {"j": '{"a":1}'}


def test_a_continuous_query_defines_on_the_engine_not_on_its_cursor(session):
    stream = session.stream(f"SELECT cbor_to_json({CBOR_A1}) AS j, counter FROM t", timeout=5)
    try:
        assert next(iter(stream)).to_pylist()[0]["j"] == '{"a":1}'
    finally:
        stream.close()
    # The cursor is gone; the function, defined on the engine's connection, still works.
    assert session.query(f"SELECT cbor_to_json({CBOR_A1}) AS j").to_pylist() == [
        {"j": '{"a":1}'}
    ]


@pytest.mark.parametrize("how", ["query", "stream"])
@pytest.mark.parametrize(
    ("typo", "meant"), [("cbor_to_jsn", "cbor_to_json"), ("arroyo_mediam", "arroyo_median")]
)
def test_a_misspelt_name_gets_duckdbs_did_you_mean_with_every_function(session, how, typo, meant):
    sql = f"SELECT {typo}(1, 2) FROM t"
    with pytest.raises(QueryError) as caught:
        session.query(sql) if how == "query" else session.stream(sql)
    assert f"name {typo} does not exist" in caught.value.message
    assert caught.value.hint == f'Did you mean "{meant}"?'


@pytest.mark.parametrize(
    "sql",
    [
        # DuckDB does not render the tree of an EXPLAIN: every function is defined first.
        "EXPLAIN SELECT cbor_to_json(NULL::BLOB) AS z",
        # A call inside a string that query() runs: the tree does not show it; DuckDB's
        # "does not exist" brings the functions in, and the statement is bound again.
        "SELECT * FROM query('SELECT cbor_to_json(NULL::BLOB) AS z')",
    ],
)
def test_a_call_the_parse_tree_does_not_show_still_works(session, sql):
    assert session.query(sql).num_rows >= 1
    assert "cbor_to_json" in defined(session)


def test_functions_called_reads_duckdbs_parse_tree():
    con = duckdb.connect()
    quoted = 'WITH a AS (SELECT "CBOR_TO_JSON"(v) AS j FROM t) SELECT * FROM a'
    called = functions_called(con, quoted)
    assert called is not None and "cbor_to_json" in called
    assert functions_called(con, "SELECT 'cbor_to_json' AS s FROM t") == frozenset()
    # DESCRIBE is a SELECT to DuckDB, with its query in the tree; EXPLAIN is not rendered.
    assert functions_called(con, "DESCRIBE SELECT cbor_to_json(v) FROM t") == {"cbor_to_json"}
    assert functions_called(con, "EXPLAIN SELECT cbor_to_json(v) FROM t") is None
    assert functions_called(con, "SELEC cbor_to_json(") is None


def test_the_declared_names_are_what_the_definers_define():
    for define in dict.fromkeys(DEFINERS.values()):
        con = duckdb.connect()
        before = {r[0] for r in con.sql("SELECT function_name FROM duckdb_functions()").fetchall()}
        define(con)
        after = {r[0] for r in con.sql("SELECT function_name FROM duckdb_functions()").fetchall()}
        names = {n for n, d in DEFINERS.items() if d is define}
        assert after - before == names
    assert set(DEFINERS) == {cbor.FUNCTION_NAME, *aggregates.INSTALLED}


def test_a_pending_connection_is_taken_once_or_closed():
    pending = PendingConnection()
    con = pending.take()
    assert con.execute("SELECT current_setting('enable_progress_bar')").fetchone() == (False,)
    with pytest.raises(RuntimeError):
        pending.take()
    pending.close()  # (taken: nothing to close)
    con.close()
    untaken = PendingConnection()
    untaken.close()
    with pytest.raises(RuntimeError):
        untaken.take()


def test_a_session_whose_sql_fails_closes_its_early_connection():
    session = Session()
    with pytest.raises(Exception, match="nowhere_at_all"):
        session.execute("SELECT nope FROM nowhere_at_all;")
    session.close()
    assert not [t for t in threading.enumerate() if t.name == "duckdb-connect"]


def test_a_process_that_exits_while_the_connection_opens_exits_cleanly():
    # A daemon thread stopped inside duckdb.connect at interpreter exit aborted the process
    # (exit status 134, every time): the opening thread is waited for instead.
    code = (
        "import sys\n"
        "from arroyo_lite.query.connection import PendingConnection\n"
        "PendingConnection()\n"
        "sys.exit(0)\n"
    )
    for _ in range(4):
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        assert "terminate called" not in done.stderr
