"""Valid DDL compiles to the expected frozen TableConfig and statements."""

from __future__ import annotations

import pyarrow as pa
import pytest

from arroyo_lite.config import BadData, Format, TableKind
from arroyo_lite.connectors.impulse.options import ImpulseOptions
from arroyo_lite.connectors.polling_http.options import PollingHttpOptions
from arroyo_lite.errors import ValidationErrors
from arroyo_lite.sql import compile_sql
from arroyo_lite.sql.statements import CreateTable, CreateView, Insert, Query, SetOption


def one_table(sql: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    program = compile_sql(sql, file="v.sql", env=env or {})
    [table] = program.tables
    return table


def http(columns: str, *options: str) -> str:
    opts = ", ".join(("connector = 'polling_http'", "endpoint = 'http://h.test/x'", *options))
    return f"CREATE TABLE t ({columns}) WITH ({opts});"


TYPE_CASES = [
    ("BOOLEAN", pa.bool_()), ("BOOL", pa.bool_()), ("INT", pa.int32()), ("INTEGER", pa.int32()),
    ("INT4", pa.int32()), ("BIGINT", pa.int64()), ("INT8", pa.int64()),
    ("INT UNSIGNED", pa.uint32()), ("INT4 UNSIGNED", pa.uint32()),
    ("BIGINT UNSIGNED", pa.uint64()), ("INT8 UNSIGNED", pa.uint64()),
    ("FLOAT", pa.float32()), ("REAL", pa.float32()), ("FLOAT4", pa.float32()),
    ("DOUBLE", pa.float64()), ("DOUBLE PRECISION", pa.float64()), ("FLOAT8", pa.float64()),
    ("DECIMAL", pa.decimal128(38, 10)), ("DECIMAL(10)", pa.decimal128(10, 0)),
    ("NUMERIC(10, 5)", pa.decimal128(10, 5)), ("TEXT", pa.string()), ("VARCHAR", pa.string()),
    ("CHAR", pa.string()), ("STRING", pa.string()), ("JSON", pa.string()),
    ("BYTEA", pa.binary()), ("TIMESTAMP", pa.timestamp("ns")), ("DATETIME", pa.timestamp("ns")),
    ("TIMESTAMP(0)", pa.timestamp("s")), ("TIMESTAMP(3)", pa.timestamp("ms")),
    ("TIMESTAMP(6)", pa.timestamp("us")), ("TIMESTAMP(9)", pa.timestamp("ns")),
    ("TEXT[]", pa.list_(pa.string())), ("ARRAY<BIGINT>", pa.list_(pa.int64())),
    ("STRUCT<a INT, x STRUCT<b TEXT>>",
     pa.struct([pa.field("a", pa.int32()),
                pa.field("x", pa.struct([pa.field("b", pa.string())]))])),
]  # fmt: skip


@pytest.mark.parametrize(("sql_type", "arrow"), TYPE_CASES)
def test_connection_column_types(sql_type: str, arrow: pa.DataType) -> None:
    table = one_table(http(f"c {sql_type} NOT NULL", "format = 'json'"))
    [column] = table.columns
    assert column.data_type == arrow
    assert column.nullable is False
    assert column.is_json is (sql_type == "JSON")


@pytest.mark.parametrize(
    ("sql_type", "arrow"),
    [("SMALLINT", pa.int16()), ("TINYINT", pa.int8()), ("DATE", pa.date32()),
     ("TIME", pa.time64("ns")), ("INTERVAL", pa.month_day_nano_interval())],
)  # fmt: skip
def test_memory_only_types_are_fine_in_memory_tables(sql_type: str, arrow: pa.DataType) -> None:
    table = one_table(f"CREATE TABLE m (c {sql_type});")
    assert table.kind is TableKind.MEMORY
    assert table.columns[0].data_type == arrow


def test_reference_a_decimal() -> None:
    table = one_table(
        "create table my_table (\n    a INT,\n    b DECIMAL(10, 5)\n) with (\n"
        "    connector = 'polling_http',\n    endpoint = 'https://example.com',\n"
        "    format = 'json'\n);"
    )
    assert table.name == "my_table"
    assert table.kind is TableKind.SOURCE
    assert [c.data_type for c in table.columns] == [pa.int32(), pa.decimal128(10, 5)]
    assert table.format is not None and table.format.format is Format.JSON
    assert table.connector_options == PollingHttpOptions(endpoint="https://example.com")
    assert table.bad_data is BadData.FAIL
    assert table.idle_micros == 300_000_000
    assert table.position is not None and (table.position.line, table.position.col) == (1, 14)


def test_reference_b_prometheus_raw_string_with_virtual_column() -> None:
    reference = (
        "create table metrics (\n    value TEXT,\n"
        "    parsed TEXT generated always as (parse_prom(value)) stored\n) WITH (\n"
        "    connector = 'polling_http',\n    endpoint = 'http://localhost:9100/metrics',\n"
        "    format = 'raw_string',\n    framing = 'newline',\n    emit_behavior = 'changed',\n"
        "    poll_interval_ms = '1000'\n);"
    )
    # parse_prom is a Rust UDF of Arroyo's examples: arroyo-lite has no such function, and
    # says so when validating (it would fail every batch at run time).
    with pytest.raises(ValidationErrors, match="Invalid function 'parse_prom'"):
        compile_sql(reference, env={})
    table = one_table(reference.replace("parse_prom(value)", "upper(value)"))
    value, parsed = table.columns
    assert value.is_physical and not parsed.is_physical
    assert parsed.generated == "UPPER(value)"  # (a known function, normalised by sqlglot)
    assert table.decode_schema().names == ["value"]
    assert table.output_schema().names == ["value", "parsed", "_timestamp"]
    assert table.framing is not None and table.framing.method == "newline"
    assert table.framing.max_line_length is None
    options = table.connector_options
    assert (options.emit_behavior, options.poll_interval_ms) == ("changed", 1000)


def test_reference_c_unnest_view() -> None:
    program = compile_sql(
        "create table events (\n    a TEXT[]\n) with (\n    connector = 'polling_http',\n"
        "    endpoint = 'https://example.com',\n    format = 'json'\n);\n\n"
        "create view names as (\n    select unnest(a)->'name' as name\n    from events);",
        env={},
    )
    create, view = program.statements
    assert isinstance(create, CreateTable) and isinstance(view, CreateView)
    assert view.name == "names"
    assert view.query == "select unnest(a)->'name' as name\n    from events"
    assert view.text.startswith("create view names as (")
    assert (view.position.line, view.position.col) == (9, 1)


def test_reference_d_pr311_post_with_headers() -> None:
    table = one_table(
        "CREATE TABLE polling_source (\n  value TEXT NOT NULL\n) WITH (\n"
        "  connector = 'polling_http',\n  endpoint = 'http://localhost:9091',\n"
        "  headers = 'Authorization: Bearer 1234,Content-Type: application/json',\n"
        "  method = 'POST',\n  body = '{}',\n  emit_behavior = 'changed',\n"
        "  format = 'raw_string'\n);"
    )
    options = table.connector_options
    assert options.headers == (
        ("Authorization", "Bearer 1234"),
        ("Content-Type", "application/json"),
    )
    assert (options.method, options.body, options.emit_behavior) == ("POST", "{}", "changed")


def test_reference_e_env_substitution_is_checked_but_not_stored() -> None:
    sql = (
        "CREATE TABLE data (\n    value TEXT\n) WITH (\n    connector = 'polling_http',\n"
        "    endpoint = 'https://mywebserver.com/api/data',\n    method = 'GET',\n"
        "    headers = 'Authorization: bearer {{ MY_TOKEN }}',\n    format = 'json'\n);"
    )
    table = one_table(sql, env={"MY_TOKEN": "tok-123"})
    assert table.connector_options.headers == (("Authorization", "bearer {{ MY_TOKEN }}"),)


def test_reference_g_unstructured_json_with_a_json_column() -> None:
    table = one_table(
        http("value JSON", "format = 'json'", "'json.unstructured' = 'true'",
             "poll_interval_ms = 5000", "headers = 'User-Agent:arroyo/0.6'")
    )  # fmt: skip
    assert table.format is not None and table.format.unstructured
    assert table.columns[0].is_json
    assert table.connector_options.headers == (("User-Agent", "arroyo/0.6"),)


def test_reference_q_impulse_without_columns_gets_the_impulse_schema() -> None:
    table = one_table("CREATE TABLE source with (connector = 'impulse', event_rate = 10);")
    assert [(c.name, c.data_type, c.nullable) for c in table.columns] == [
        ("counter", pa.int64(), False),
        ("subtask_index", pa.int64(), False),
    ]
    assert table.connector_options == ImpulseOptions(event_rate=10.0)
    assert table.format is None


def test_impulse_options() -> None:
    table = one_table(
        "CREATE TABLE i WITH (connector = 'impulse', event_rate = '2.5', "
        "message_count = 100, event_time_interval = '1000');"
    )
    assert table.connector_options == ImpulseOptions(2.5, 100, 1000)


def test_reference_p_memory_table_and_ctas() -> None:
    program = compile_sql(
        "CREATE TABLE memory (event_type TEXT, location TEXT, driver_id BIGINT);\n"
        "CREATE TABLE source with (connector = 'impulse', event_rate = 10);\n"
        "INSERT INTO memory SELECT 'a', 'b', counter FROM source;\n"
        "CREATE TABLE counts as (SELECT count(*) FROM memory);",
        env={},
    )
    memory, _, insert, counts = program.statements
    assert isinstance(memory, CreateTable) and memory.table.kind is TableKind.MEMORY
    assert memory.table.connector is None and memory.table.idle_micros is None
    assert isinstance(insert, Insert) and insert.target == "memory"
    assert insert.query == "SELECT 'a', 'b', counter FROM source"
    assert isinstance(counts, CreateView) and counts.query == "SELECT count(*) FROM memory"


def test_duplicate_keys_keep_the_last_value() -> None:
    table = one_table(http("value TEXT", "format = 'raw_string'", "format = 'json'"))
    assert table.format is not None and table.format.format is Format.JSON


def test_keys_can_be_bare_single_or_double_quoted() -> None:
    table = one_table(
        "CREATE TABLE t (value TEXT) WITH ('connector' = 'polling_http', "
        "\"endpoint\" = 'http://h.test/', format = 'raw_string', \"framing\" = 'newline', "
        "'framing.newline.max_length' = '64');"
    )
    assert table.framing is not None and table.framing.max_line_length == 64


def test_headers_split_on_the_first_colon_only() -> None:
    table = one_table(http("value TEXT", "format = 'raw_string'",
                           "headers = 'X-Url: http://h:8080/x , Accept:text/plain'"))  # fmt: skip
    assert table.connector_options.headers == (
        ("X-Url", "http://h:8080/x"),
        ("Accept", "text/plain"),
    )


def test_blank_headers_are_no_headers() -> None:
    table = one_table(http("value TEXT", "format = 'raw_string'", "headers = '  '"))
    assert table.connector_options.headers == ()


@pytest.mark.parametrize(
    ("literal", "expected"),
    [("true", True), ("false", False), ("'true'", True), ("'yes'", True), ("'no'", False)],
)
def test_booleans(literal: str, expected: bool) -> None:
    table = one_table(http("value JSON", "format = 'json'", f"'json.unstructured' = {literal}"))
    assert table.format is not None and table.format.unstructured is expected


def test_generic_options_and_extensions() -> None:
    table = one_table(
        http(
            "id BIGINT, ts TIMESTAMP NOT NULL, WATERMARK FOR ts AS ts - INTERVAL '5' SECOND",
            "format = 'json'", "bad_data = 'drop'", "idle_micros = '-1'",
            "'json.timestamp_format' = 'UnixMillis'", "timeout_ms = 2500",
            "max_body_bytes = 1024", "max_backoff_ms = '30000'",
            "'retention.max_rows' = 1000", "'retention.max_age' = interval '10' minute",
        )
    )  # fmt: skip
    assert table.bad_data is BadData.DROP
    assert table.idle_micros is None
    assert table.format is not None and table.format.timestamp_format == "unix_millis"
    assert table.watermark is not None and table.watermark.column == "ts"
    assert table.watermark.expression == "ts - INTERVAL '5 SECOND'"
    assert table.event_time_column == "ts"
    options = table.connector_options
    extensions = (options.timeout_ms, options.max_body_bytes, options.max_backoff_ms)
    assert extensions == (2500, 1024, 30000)
    assert (table.retention.max_rows, table.retention.max_age_seconds) == (1000, 600.0)


@pytest.mark.parametrize(
    ("columns", "expression"),
    [("ts TIMESTAMP NOT NULL, WATERMARK FOR ts AS (ts - INTERVAL '1' MINUTE)",
      "(ts - INTERVAL '1 MINUTE')"),
     ("s TEXT NOT NULL, ts TIMESTAMP GENERATED ALWAYS AS (CAST(s AS TIMESTAMP)), "
      "WATERMARK FOR ts AS CAST(s AS TIMESTAMP(3)) - INTERVAL '5 seconds'",
      "CAST(s AS TIMESTAMP(3)) - INTERVAL '5 SECONDS'"),
     # A shape the front end cannot type (a function call) is left to run time.
     ("ts TIMESTAMP, WATERMARK FOR ts AS my_udf(ts)", "my_udf(ts)")],
)  # fmt: skip
def test_watermark_expressions_of_not_null_timestamps(columns: str, expression: str) -> None:
    table = one_table(http(columns, "format = 'json'"))
    assert table.watermark is not None and table.watermark.expression == expression


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("'10 minutes'", 600.0), ("'1 hour 30 minutes'", 5400.0), ("interval '5' second", 5.0),
     ("INTERVAL '2 days'", 172800.0), ("'250ms'", 0.25)],
)  # fmt: skip
def test_retention_max_age_forms(text: str, seconds: float) -> None:
    table = one_table(http("value TEXT", "format = 'raw_string'", f"'retention.max_age' = {text}"))
    assert table.retention.max_age_seconds == pytest.approx(seconds)


def test_watermark_without_as_on_a_virtual_column() -> None:
    table = one_table(
        http(
            "date_string TEXT NOT NULL, "
            "timestamp TIMESTAMP GENERATED ALWAYS AS (CAST(date_string as TIMESTAMP)), "
            "WATERMARK for timestamp",
            "format = 'json'",
        )
    )
    assert table.watermark is not None and table.watermark.expression is None
    assert table.event_time_column == "timestamp"
    assert table.columns[1].generated == "CAST(date_string AS TIMESTAMP)"


def test_deprecated_event_time_field() -> None:
    table = one_table(http("ts TIMESTAMP(3)", "format = 'json'", "event_time_field = ts",
                           "watermark_field = 'ts'"))  # fmt: skip
    assert table.event_time_column == "ts"
    assert table.watermark is None


def test_column_primary_key_and_struct_json_field() -> None:
    table = one_table(http("id TEXT PRIMARY KEY, s STRUCT<j JSON>", "format = 'json'"))
    assert table.columns[0].primary_key
    nested = table.columns[1].data_type.field("j")
    assert nested.metadata == {b"ARROW:extension:name": b"arroyo.json"}


def test_query_set_and_statement_text() -> None:
    sql = (
        "-- a comment; with a semicolon\n"
        "SET updating_ttl = interval '1' hour;\n"
        "WITH x AS (SELECT 1 AS a) SELECT a, ';' AS s FROM x;\n"
        "/* block; comment */ SELECT 2;"
    )
    program = compile_sql(sql, env={})
    set_option, query, second = program.statements
    assert isinstance(set_option, SetOption)
    assert (set_option.name, set_option.value) == ("updating_ttl", "interval '1' hour")
    assert isinstance(query, Query)
    assert query.text == "WITH x AS (SELECT 1 AS a) SELECT a, ';' AS s FROM x"
    assert (query.position.line, query.position.col) == (3, 1)
    assert isinstance(second, Query) and second.query == "SELECT 2"
    assert (second.position.line, second.position.col) == (4, 22)


def test_temporary_table_without_connector_is_rejected_but_parses() -> None:
    from arroyo_lite.errors import ValidationErrors

    with pytest.raises(ValidationErrors, match="does not support lookup tables"):
        compile_sql(
            "CREATE TEMPORARY TABLE t (value TEXT) WITH (connector = 'polling_http', "
            "endpoint = 'http://h/', format = 'raw_string');",
            env={},
        )


def test_catalog_allows_statement_at_a_time_use() -> None:
    first = compile_sql("CREATE TABLE m (a INT);", env={})
    catalog = {t.name: t.kind for t in first.tables}
    # Reading a memory table defined earlier is fine when a catalog is given (the REPL).
    program = compile_sql("SELECT * FROM m;", env={}, catalog=catalog)
    assert isinstance(program.statements[0], Query)


def test_empty_text_is_an_empty_program() -> None:
    assert compile_sql("  -- nothing here\n", env={}).statements == ()
