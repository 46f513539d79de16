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


# -- 2. windows start where Arroyo's start: at multiples of the width since the epoch ------

TUMBLING_RS = "crates/arroyo-worker/src/arrow/tumbling_aggregating_window.rs"
SLIDING_RS = "crates/arroyo-worker/src/arrow/sliding_aggregating_window.rs"
SECOND = 1_000_000_000
#: Row times (ns): 2023-11-14 22:13:20.123456789, a Tuesday, and others days apart.
ROW_TIMES = [1_700_000_000_123_456_789, 1_700_000_000 * SECOND + 3 * 86_400 * SECOND + 7,
             1_699_999_999 * SECOND, 86_400 * SECOND * 19_700 + 1]  # fmt: skip

WINDOW_CASES = [
    # (Arroyo file, interval text, width in seconds); widths that do not divide a day first.
    (TUMBLING_RS, "7 minutes", 420),
    (TUMBLING_RS, "7 days", 7 * 86_400),
    (TUMBLING_RS, "13 seconds", 13),
    (TUMBLING_RS, "5 hours", 5 * 3600),
    (TUMBLING_RS, "1 hour", 3600),
    (TUMBLING_RS, "1 day", 86_400),
]


def _bin_start(nanos: int, width_ns: int) -> int:
    """Arroyo's ``bin_start``: ``nanos - nanos % width``."""
    return nanos - nanos % width_ns


def _window_rows(sql: str) -> list[tuple[int, int, int]]:
    """Run translated ``sql`` over the rows of ROW_TIMES; (start ns, end ns, count) rows."""
    import duckdb
    import pyarrow as pa

    from arroyo_lite.sql.transpile import to_duckdb

    con = duckdb.connect()
    con.register("t", pa.table({"_timestamp": pa.array(ROW_TIMES, pa.timestamp("ns"))}))
    wrapped = f"SELECT epoch_ns(w.start), epoch_ns(w.\"end\"), n FROM ({to_duckdb(sql)}) ORDER BY 1"
    return [tuple(r) for r in con.sql(wrapped).fetchall()]


@pytest.mark.parametrize(("arroyo_file", "interval", "width"), WINDOW_CASES)
def test_tumble_windows_are_aligned_to_the_epoch(
    arroyo_file: str, interval: str, width: int
) -> None:
    width_ns = width * SECOND
    expected: dict[int, int] = {}
    for t in ROW_TIMES:
        start = _bin_start(t, width_ns)
        expected[start] = expected.get(start, 0) + 1
    rows = _window_rows(
        f"SELECT tumble(interval '{interval}') AS w, count(*) AS n FROM t GROUP BY w"
    )
    assert rows == [(s, s + width_ns, n) for s, n in sorted(expected.items())]


def test_seven_day_windows_start_on_thursday() -> None:
    """The epoch was a Thursday; DuckDB's default origin would start weeks on Monday."""
    import datetime as dt

    rows = _window_rows("SELECT tumble(interval '7 days') AS w, count(*) AS n FROM t GROUP BY w")
    days = {dt.datetime.fromtimestamp(s // SECOND, dt.UTC).strftime("%A") for s, _, _ in rows}
    assert days == {"Thursday"}


@pytest.mark.parametrize(
    ("arroyo_file", "slide", "width"),
    [(SLIDING_RS, 420, 1260), (SLIDING_RS, 7 * 86_400, 14 * 86_400), (SLIDING_RS, 60, 300)],
)
def test_hop_windows_are_aligned_to_the_epoch(arroyo_file: str, slide: int, width: int) -> None:
    """A row at t is in the width/slide windows starting bin_start(t, slide) - k * slide."""
    slide_ns, width_ns = slide * SECOND, width * SECOND
    expected: dict[int, int] = {}
    for t in ROW_TIMES:
        for k in range(width // slide):
            start = _bin_start(t, slide_ns) - k * slide_ns
            expected[start] = expected.get(start, 0) + 1
    rows = _window_rows(
        f"SELECT hop(interval '{slide} seconds', interval '{width} seconds') AS w, "
        "count(*) AS n FROM t GROUP BY w"
    )
    assert rows == [(s, s + width_ns, n) for s, n in sorted(expected.items())]


# -- 4. column types: convert_data_type over the types of Arroyo's sqlparser -------------

TYPES_RS = "crates/arroyo-planner/src/types.rs"
DECIMAL = "should satisfy `0 < precision <= 38`, and `scale <= precision`."

TYPE_CASES = [
    # (Arroyo file, column type, message); the error points at the type (column 19).
    (TYPES_RS, "INTEGER UNSIGNED", "Unsupported SQL type 'INTEGER UNSIGNED'"),
    (TYPES_RS, "integer  unsigned", "Unsupported SQL type 'INTEGER UNSIGNED'"),
    (TYPES_RS, "TIMESTAMP WITHOUT TIME ZONE", "Unsupported SQL type 'TIMESTAMP WITHOUT TIME ZONE'"),
    (TYPES_RS, "TIMESTAMP(6) WITHOUT TIME ZONE",
     "Unsupported SQL type 'TIMESTAMP(6) WITHOUT TIME ZONE'"),
    (TYPES_RS, "DOUBLE[][]", "Unsupported SQL type 'DOUBLE[]'"),
    (TYPES_RS, "ARRAY<ARRAY<INT>>", "Unsupported SQL type 'ARRAY<INT>'"),
    (TYPES_RS, "STRUCT<a INT[][]>", "Unsupported SQL type 'INT[]'"),
    (TYPES_RS, "DECIMAL(39)", f"Decimal(precision = 39, scale = 0) {DECIMAL}"),
    (TYPES_RS, "DECIMAL(39, 2)", f"Decimal(precision = 39, scale = 2) {DECIMAL}"),
    (TYPES_RS, "NUMERIC(10, 11)", f"Decimal(precision = 10, scale = 11) {DECIMAL}"),
    (TYPES_RS, "DECIMAL(0)", f"Decimal(precision = 0, scale = 0) {DECIMAL}"),
    # make_decimal_type stores the precision as u8: 300 wraps to 44.
    (TYPES_RS, "DECIMAL(300)", f"Decimal(precision = 44, scale = 0) {DECIMAL}"),
]  # fmt: skip


@pytest.mark.parametrize(("arroyo_file", "column_type", "message"), TYPE_CASES)
def test_rejected_column_types(arroyo_file: str, column_type: str, message: str) -> None:
    check(f"CREATE TABLE t (a {column_type});", message, 1, 19)


ACCEPTED_TYPES = [
    # (Arroyo file, column type, Arrow type): the neighbours of the rejected ones.
    (TYPES_RS, "INT UNSIGNED", "uint32"),
    (TYPES_RS, "INT4 UNSIGNED", "uint32"),
    (TYPES_RS, "BIGINT UNSIGNED", "uint64"),
    (TYPES_RS, "TIMESTAMP", "timestamp[ns]"),
    (TYPES_RS, "DOUBLE[]", "list<item: double>"),
    (TYPES_RS, "STRUCT<a INT[]>[]", "list<item: struct<a: list<item: int32>>>"),
    (TYPES_RS, "DECIMAL(38, 38)", "decimal128(38, 38)"),
]


@pytest.mark.parametrize(("arroyo_file", "column_type", "arrow"), ACCEPTED_TYPES)
def test_accepted_column_types(arroyo_file: str, column_type: str, arrow: str) -> None:
    program = compile_sql(f"CREATE TABLE t (a {column_type});", env={})
    assert str(program.tables[0].columns[0].data_type) == arrow


# -- 6. syntax errors point at the offending token, as sqlparser's parse_columns does -------

SQLPARSER_RS = "ArroyoSystems/sqlparser-rs 0.55.0/arroyo: src/parser/mod.rs (parse_columns)"
AFTER_COLUMN = "Expected: ',' or ')' after column definition, found: "

SYNTAX_CASES = [
    (SQLPARSER_RS, "CREATE TABLE t (\n  id INT,\n  v TEXT\nWITH (\n  connector = 'impulse',\n"
     "  event_rate = 1\n);", AFTER_COLUMN + "WITH", 4, 1),
    (SQLPARSER_RS, "CREATE TABLE t (id INT, v TEXT with (connector = 'impulse', event_rate = 1);",
     AFTER_COLUMN + "with", 1, 32),
    (SQLPARSER_RS, "CREATE TABLE t (v TIMESTAMP WITH TIME ZONE\n  WITH (connector = 'impulse'));",
     AFTER_COLUMN + "WITH", 2, 3),
    # A missing comma: the next column's name is where the list stops.
    (SQLPARSER_RS, "CREATE TABLE t (id INT\n  name TEXT) WITH (connector = 'impulse');",
     AFTER_COLUMN + "name", 2, 3),
]  # fmt: skip


@pytest.mark.parametrize(("arroyo_file", "sql", "message", "line", "col"), SYNTAX_CASES)
def test_syntax_errors_point_at_the_token(
    arroyo_file: str, sql: str, message: str, line: int, col: int
) -> None:
    check(sql, message, line, col)


# -- 5. virtual columns and watermarks are planned over the non-virtual columns --------------

TABLES_RS = "crates/arroyo-planner/src/tables.rs"
#: DataFusion's diagnostic for an unknown column (datafusion/sql/src/planner.rs,
#: validate_schema_satisfies_exprs), which Arroyo shows instead of "No field named ...".
PLANNER_RS = "ArroyoSystems/arrow-datafusion 48.0.1/arroyo: datafusion/sql/src/planner.rs"
FUNCTION_RS = "ArroyoSystems/arrow-datafusion 48.0.1/arroyo: datafusion/sql/src/expr/function.rs"


def http_table(columns: str) -> str:
    return (
        f"CREATE TABLE t ({columns}) WITH (connector = 'polling_http', "
        "endpoint = 'http://127.0.0.1:1/x', format = 'json');"
    )


VIRTUAL_CASES = [
    # (Arroyo file, columns, message, col); the table's columns start at column 17.
    # schema_from_columns plans a virtual column over the physical schema only.
    (TABLES_RS, "a INT, v1 INT GENERATED ALWAYS AS (a + 1) STORED, "
     "v2 INT GENERATED ALWAYS AS (v1 * 2) STORED", "column 'v1' not found", 95),
    # from_options plans WATERMARK FOR ... AS over physical_schema(): no virtual columns.
    (TABLES_RS, "ts TIMESTAMP NOT NULL, late TIMESTAMP GENERATED ALWAYS AS "
     "(ts - INTERVAL '1' MINUTE) STORED, WATERMARK FOR ts AS late", "column 'late' not found",
     130),
    (PLANNER_RS, "a INT, v INT GENERATED ALWAYS AS (b) STORED", "column 'b' not found", 51),
    # Planned as DataFusion plans it: an unknown function is found before anything runs.
    (FUNCTION_RS, "a TEXT, v INT GENERATED ALWAYS AS (lenght(a)) STORED",
     "Invalid function 'lenght'", 52),
]  # fmt: skip


@pytest.mark.parametrize(("arroyo_file", "columns", "message", "col"), VIRTUAL_CASES)
def test_virtual_and_watermark_references(
    arroyo_file: str, columns: str, message: str, col: int
) -> None:
    check(http_table(columns), message, 1, col)


def test_watermark_may_name_a_virtual_column_and_use_physical_ones() -> None:
    """The WATERMARK FOR *column* is looked up among all fields (tables.rs), only the
    expression is limited to the physical schema."""
    program = compile_sql(
        http_table(
            "ts TIMESTAMP NOT NULL, late TIMESTAMP GENERATED ALWAYS AS "
            "(ts - INTERVAL '1' MINUTE) STORED, WATERMARK FOR late AS ts - INTERVAL '5' SECOND"
        ),
        env={},
    )
    assert program.tables[0].event_time_column == "late"


def test_a_virtual_column_reference_gets_a_did_you_mean() -> None:
    (error,) = errors_of(http_table("amount INT, v INT GENERATED ALWAYS AS (amont) STORED"))
    assert error.hint is not None and error.hint.startswith("did you mean 'amount'?")


# -- 3. queries are checked when the file is validated ---------------------------------------

LIB_RS = "crates/arroyo-planner/src/lib.rs (diagnostics shown by parse_and_get_program)"
RELATION_RS = "ArroyoSystems/arrow-datafusion 48.0.1/arroyo: datafusion/sql/src/relation/mod.rs"
JOIN_RS = "crates/arroyo-planner/src/plan/join.rs"
REWRITERS_RS = "crates/arroyo-planner/src/rewriters.rs (TimeWindowUdfChecker)"

QUOTES = (
    "CREATE TABLE quotes (symbol TEXT, price DOUBLE) WITH (connector = 'polling_http', "
    "endpoint = 'http://127.0.0.1:1/q', format = 'json');\n"
)
TRADES = (
    "CREATE TABLE trades (sym TEXT, qty BIGINT) WITH (connector = 'polling_http', "
    "endpoint = 'http://127.0.0.1:1/t', format = 'json');\n"
)
MEMORY = "CREATE TABLE m (symbol TEXT, n BIGINT);\n"

QUERY_CASES = [
    # (Arroyo file, statements after QUOTES + TRADES, message, the token it points at, hint)
    (RELATION_RS, "SELECT * FROM quotez;", "table 'quotez' not found", "quotez",
     "did you mean 'quotes'?"),
    (PLANNER_RS, "SELECT symbl FROM quotes;", "column 'symbl' not found", "symbl",
     "did you mean 'symbol'?"),
    (PLANNER_RS, "SELECT q.symbl FROM quotes q;", "column 'symbl' not found in 'q'", "symbl",
     "did you mean 'symbol'?"),
    (PLANNER_RS, "SELECT symbol FROM quotes WHERE prise > 1;", "column 'prise' not found",
     "prise", "did you mean 'price'?"),
    (FUNCTION_RS, "SELECT lenght(symbol) FROM quotes;", "Invalid function 'lenght'", "lenght",
     "did you mean 'length'?"),
    (PLANNER_RS, "CREATE VIEW v AS SELECT symbol, pric FROM quotes;", "column 'pric' not found",
     "pric", "did you mean 'price'?"),
    (PLANNER_RS, "CREATE VIEW v AS SELECT symbol FROM quotes;\nSELECT price FROM v;",
     "column 'price' not found", "price", "columns: symbol, _timestamp"),
    (PLANNER_RS, MEMORY + "INSERT INTO m SELECT symbl, 1 FROM quotes;",
     "column 'symbl' not found", "symbl", "did you mean 'symbol'?"),
    (JOIN_RS, "SELECT * FROM quotes JOIN trades ON quotes.price > trades.qty;",
     "Updating joins must include an equijoin condition", "trades", None),
    (JOIN_RS, "SELECT * FROM quotes, trades WHERE price > 1;",
     "Updating joins must include an equijoin condition", "trades", None),
    (JOIN_RS, "SELECT * FROM quotes CROSS JOIN trades;",
     "Updating joins must include an equijoin condition", "trades", None),
    (JOIN_RS, "SELECT * FROM quotes JOIN trades USING (symbol);",
     "can't handle join constraint other than ON", "trades", "write the condition out"),
    (REWRITERS_RS, "SELECT tumble(interval '1 minute') AS w, count(*) FROM quotes;",
     "time window function tumble is not allowed in this context. Are you missing a GROUP BY "
     "clause?", "tumble", None),
]  # fmt: skip


@pytest.mark.parametrize(("arroyo_file", "statements", "message", "token", "hint"), QUERY_CASES)
def test_query_problems_are_found_by_validate(
    arroyo_file: str, statements: str, message: str, token: str, hint: str | None
) -> None:
    sql = QUOTES + TRADES + statements
    errors = errors_of(sql)
    assert [e.message for e in errors] == [message]
    (error,) = errors
    where = error.position
    assert where is not None
    # The token's first occurrence in the last line that has it (after the two tables).
    lines = statements.split("\n")
    last = max(i for i, text in enumerate(lines) if token in text)
    offset = sql.index(token, len(QUOTES + TRADES) + sum(len(t) + 1 for t in lines[:last]))
    line = sql.count("\n", 0, offset) + 1
    col = offset - (sql.rfind("\n", 0, offset) + 1) + 1
    assert (where.line, where.col) == (line, col), error.format()
    if hint is not None:
        assert error.hint is not None and error.hint.startswith(hint), error.hint


ACCEPTED_QUERIES = [
    # (Arroyo file, statements): joins with an equality, windows in GROUP BY, Arroyo functions.
    (JOIN_RS, "SELECT * FROM quotes JOIN trades ON quotes.symbol = trades.sym;"),
    (JOIN_RS, "SELECT * FROM quotes q, trades t WHERE q.symbol = t.sym AND q.price > 1;"),
    (JOIN_RS, "SELECT * FROM quotes JOIN trades ON symbol = sym AND price > qty;"),
    (JOIN_RS, "SELECT x FROM quotes CROSS JOIN unnest([1, 2]) AS u(x);"),  # not a stream
    (REWRITERS_RS, "SELECT tumble(interval '1 minute') AS w, count(*) FROM quotes GROUP BY w;"),
    (REWRITERS_RS, "SELECT symbol, hop(interval '1 minute', interval '5 minutes') AS w, "
     "count(*) FROM quotes GROUP BY 1, 2;"),
    (LIB_RS, "SELECT json_get_str(symbol, 'a'), row_time() FROM quotes;"),
    # _timestamp flows through a view and a subquery, as event time does in Arroyo.
    (LIB_RS, "CREATE VIEW v AS SELECT symbol FROM quotes;\n"
     "SELECT symbol, tumble(interval '1 second') AS w FROM v GROUP BY symbol, w;"),
    (LIB_RS, "SELECT count(*), tumble(interval '1 second') AS w "
     "FROM (SELECT symbol FROM quotes WHERE price > 1) GROUP BY w;"),
    (LIB_RS, MEMORY + "INSERT INTO m SELECT symbol, count(*) FROM quotes GROUP BY symbol;\n"
     "SELECT * FROM m;"),
    # DataFusion's first_value/last_value aggregates (planner/bitcoin_stats.sql), and a
    # window column named window read as window.start.
    (LIB_RS, "CREATE VIEW s AS SELECT tumble(interval '5 seconds') AS window, symbol, "
     "first_value(price) AS open, last_value(price) AS close FROM quotes GROUP BY 1, 2;\n"
     "SELECT window.start, open, close FROM s WHERE symbol IS NOT NULL;"),
]  # fmt: skip


@pytest.mark.parametrize(("arroyo_file", "statements"), ACCEPTED_QUERIES)
def test_good_queries_validate(arroyo_file: str, statements: str) -> None:
    compile_sql(QUOTES + TRADES + statements, env={})


def test_what_run_rejects_validate_rejects_first() -> None:
    """A query the DuckDB translation cannot express (hop over a join) fails in validate,
    not later in run; so does an INSERT whose column count does not match."""
    messages = [
        e.message
        for e in errors_of(
            QUOTES + TRADES + MEMORY + "INSERT INTO m SELECT symbol FROM quotes;\n"
            "SELECT count(*) FROM quotes JOIN trades ON symbol = sym "
            "GROUP BY hop(interval '1 second', interval '5 seconds');"
        )
    ]
    assert messages == [
        "INSERT INTO m: the query returns 1 column(s), the table has 2",
        "hop() needs exactly one table in FROM",
    ]


def test_validate_cli_rejects_a_bad_query(tmp_path: object) -> None:
    from pathlib import Path

    from click.testing import CliRunner

    from arroyo_lite.cli import main

    assert isinstance(tmp_path, Path)
    path = tmp_path / "q.sql"
    path.write_text(QUOTES + "SELECT symbl FROM quotes;\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 1
    assert f"{path}:2:8: error: column 'symbl' not found" in result.output
    assert "did you mean 'symbol'?" in result.output


# -- 7. results convert to Python: to_pylist (no pandas needed), to_pandas, polars ------------

_TICKS = (
    "CREATE TABLE ticks WITH (connector = 'impulse', event_rate = 1000, message_count = 5);"
)
_RESULT_SQL = (
    "SELECT counter, _timestamp, epoch_ns(_timestamp) AS ns, "
    "tumble(interval '1 second') AS w FROM ticks GROUP BY counter, _timestamp, w "
    "ORDER BY counter"
)


def _ticks_session():  # type: ignore[no-untyped-def]
    from arroyo_lite import Session
    from tests.support.threaded_server import wait_for

    session = Session(env={})
    session.execute(_TICKS)
    wait_for(lambda: session.query("SELECT count(*) AS n FROM ticks")["n"][0].as_py() == 5)
    return session


def test_to_pylist_works_without_pandas(tmp_path: object) -> None:
    """In a process where ``import pandas`` fails, as where it is not installed (pyarrow
    would otherwise hand out pandas Timestamps)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    assert isinstance(tmp_path, Path)
    (tmp_path / "pandas").mkdir()
    (tmp_path / "pandas" / "__init__.py").write_text("raise ImportError('no pandas here')\n")
    code = """
import datetime
from tests.test_arroyo_parity import _ticks_session, _RESULT_SQL
session = _ticks_session()
rows = session.query(_RESULT_SQL).to_pylist()
assert [r["counter"] for r in rows] == [0, 1, 2, 3, 4], rows
for r in rows:
    ts = r["_timestamp"]
    assert type(ts) is datetime.datetime, type(ts)
    micros = (ts - datetime.datetime(1970, 1, 1)) // datetime.timedelta(microseconds=1)
    assert micros == r["ns"] // 1000, (micros, r["ns"])  # truncated to the microsecond
    assert type(r["w"]["start"]) is datetime.datetime
batch = next(iter(session.stream("SELECT _timestamp FROM ticks", timeout=10)))
assert all(type(v) is datetime.datetime for v in batch.to_pylist()[0].values())
session.close()
print("ok")
"""
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(root)])}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
        check=False, env=env, cwd=root,
    )  # fmt: skip
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-2000:]


def test_to_pandas_and_polars() -> None:
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    session = _ticks_session()
    try:
        table = session.query(_RESULT_SQL)
        exact = session.query(_RESULT_SQL, nanoseconds=True)
    finally:
        session.close()
    frame = table.to_pandas()
    assert list(frame["counter"]) == [0, 1, 2, 3, 4]
    assert str(frame["_timestamp"].dtype) == "datetime64[us]"
    assert list(frame["_timestamp"].astype("int64")) == [n // 1000 for n in frame["ns"]]
    polars = pl.from_arrow(table)
    assert polars["_timestamp"].dtype == pl.Datetime("us")
    assert polars["counter"].to_list() == [0, 1, 2, 3, 4]
    # nanoseconds=True keeps every digit, for pandas and polars.
    assert list(exact.to_pandas()["_timestamp"].astype("int64")) == list(frame["ns"])
    assert pl.from_arrow(exact)["_timestamp"].dtype == pl.Datetime("ns")
    assert isinstance(frame, pd.DataFrame)


# -- 8. divergences kept on purpose, as the README lists them ----------------------------------


def test_a_repeated_table_name_is_an_error_here() -> None:
    """Arroyo's ``ArroyoSchemaProvider::insert_table`` (crates/arroyo-planner/src/lib.rs)
    silently keeps the second definition; arroyo-lite reports the second one."""
    sql = (
        "CREATE TABLE t WITH (connector = 'impulse', event_rate = 1);\n"
        "CREATE TABLE T WITH (connector = 'impulse', event_rate = 2);"
    )
    check(sql, "table 'T' is already defined", 2, 1)


def test_the_readme_lists_the_divergences() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("Divergences from Arroyo kept on purpose, and why:")[1]
    section = section.split("### ")[0]
    for fact in ("is already defined", "insert_table", "The provided SQL does not contain a "
                 "query", "microsecond", "every problem"):  # fmt: skip
        assert fact in section, fact
