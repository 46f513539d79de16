"""Every DDL example of reference §4.5, verbatim, with the outcome the reference gives.

Examples that use connectors arroyo-lite lacks are checked twice: with the real registry
(``Unknown connector``) and with Arroyo-shaped test connectors, so that the rest of the DDL
(metadata columns, watermarks, structs, virtual columns) is validated too.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from arroyo_lite.config import Format, TableKind
from arroyo_lite.errors import ValidationErrors
from arroyo_lite.sql import compile_sql
from tests.plugins.arroyo_like import lookup

EX_H = """CREATE TABLE mastodon (
    value TEXT
) WITH (
    connector = 'sse',
    format = 'raw_string',
    endpoint = 'http://mastodon.arroyo.dev/api/v1/streaming/public',
    events = 'update'
);"""
EX_I = """create table firesky (
    value BYTEA
) with (
    connector = 'websocket',
    endpoint = 'wss://firesky.tv/ws/app',
    format = 'raw_bytes'
);"""
EX_J = """CREATE TABLE orders (
  customer_id INT,
  order_id INT,
  date_string TEXT NOT NULL,
  timestamp TIMESTAMP GENERATED ALWAYS AS (CAST(date_string as TIMESTAMP)),
  watermark FOR timestamp as CAST(date_string as TIMESTAMP) - INTERVAL '5 seconds'
) WITH (
  connector = 'kafka',
  format = 'json',
  type = 'source',
  bootstrap_servers = 'localhost:9092',
  topic = 'order_topic'
);"""
EX_K = """CREATE TABLE cars(
  timestamp TIMESTAMP,
  driver_id BIGINT,
  event_type TEXT,
  location TEXT,
  WATERMARK for timestamp\x20
) WITH (
  connector = 'single_file',
  path = '$input_dir/cars.json',
  format = 'json',
  type = 'source'
);"""
EX_L = """create table mqtt (
    name TEXT,
    value INT,
    my_topic TEXT METADATA FROM 'topic'
) with (
    connector = 'mqtt',
    url = 'tcp://localhost:1883',
    topic = 'plant/#',
    type = 'source',
    format = 'json'
);"""
EX_M = """create table users (
    id TEXT,
    t struct<a int, x struct<b text>>
) with (
    connector = 'kafka',
    format = 'json',
    bootstrap_servers = 'localhost:9092',
    type = 'source',
    topic = 'structs'
);"""
EX_N = """create table input (
    length JSON,
    diff INT GENERATED ALWAYS AS (extract_json(length, '$.old')[1]) STORED
) with (
    connector = 'sse',
    endpoint = 'https://localhost:9091',
    format = 'json'
);"""
EX_G = """CREATE TABLE cars (
    value JSON
) WITH (
    connector = 'single_file',
    path = '$input_dir/cars.json',
    format = 'json',
    type = 'source',
    'json.unstructured' = 'true'
);"""
EX_F = """CREATE TABLE prs (
    value TEXT
) WITH (
    connector = 'polling_http',
    endpoint = 'https://api.github.com/repos/ArroyoSystems/arroyo/pulls?per_page=1&state=all',
    poll_interval_ms = 5000,
    emit_behavior = 'changed',
    headers = 'User-Agent:arroyo/0.6',
    format = 'json',
    'json.unstructured' = true
);"""
EX_O = """create temporary table customers (
    customer_id TEXT METADATA FROM 'key' PRIMARY KEY,
    customer_name TEXT,
    plan TEXT
) with (
    connector = 'redis',
    format = 'raw_string',
    address = 'redis://localhost:6379',
    format = 'json',
    'lookup.cache.max_bytes' = 1000000,
    'lookup.cache.ttl' = interval '5' second
);"""


@pytest.mark.parametrize(
    ("sql", "connector", "line", "col"),
    [(EX_J, "kafka", 8, 15), (EX_L, "mqtt", 6, 17),
     (EX_M, "kafka", 5, 17), (EX_O, "redis", 6, 17)],
)  # fmt: skip
def test_other_connectors_are_unknown(sql: str, connector: str, line: int, col: int) -> None:
    with pytest.raises(ValidationErrors) as info:
        compile_sql(sql, file="r.sql", env={})
    [error] = info.value
    assert error.message == f"Unknown connector '{connector}'"
    assert error.position is not None
    assert (error.position.line, error.position.col) == (line, col)


@pytest.mark.parametrize("sql", [EX_H, EX_I, EX_N], ids=["sse", "websocket", "sse-virtual"])
def test_reference_push_tables_validate(sql: str) -> None:
    [table] = compile_sql(sql + "\nSELECT 1;", file="r.sql", env={}).tables
    assert table.connector in ("sse", "websocket")


@pytest.mark.parametrize("sql", [EX_K, EX_G])
def test_single_file_tables_of_the_reference_compile(sql: str) -> None:
    [table] = compile_sql(sql, env={}).tables
    assert table.connector == "single_file"
    assert table.connector_options.path == "$input_dir/cars.json"


def compile_like(sql: str):  # type: ignore[no-untyped-def]
    [table] = compile_sql(sql, env={}, lookup=lookup).tables
    return table


def test_f_unstructured_json_needs_a_json_column() -> None:
    with pytest.raises(ValidationErrors) as info:
        compile_sql(EX_F, file="f.sql", env={})
    [error] = info.value
    assert error.message.endswith(
        "json format with unstructured flag enabled requires a schema with a single field "
        "called `value` of type JSON"
    )
    fixed = compile_sql(EX_F.replace("value TEXT", "value JSON"), env={}).tables[0]
    assert fixed.format is not None and fixed.format.unstructured


def test_g_unstructured_shape_is_accepted() -> None:
    table = compile_like(EX_G)
    assert table.format is not None and table.format.unstructured and table.columns[0].is_json
    assert table.kind is TableKind.SOURCE


def test_h_sse_raw_string() -> None:
    table = compile_like(EX_H)
    assert table.format is not None and table.format.format is Format.RAW_STRING
    assert table.connector_options.values["events"] == "update"


def test_i_websocket_raw_bytes() -> None:
    table = compile_like(EX_I)
    assert table.columns[0].data_type == pa.binary()


def test_j_virtual_event_time_and_watermark_expression() -> None:
    table = compile_like(EX_J)
    assert table.event_time_column == "timestamp"
    assert table.watermark is not None
    assert table.watermark.expression == "CAST(date_string AS TIMESTAMP) - INTERVAL '5 SECONDS'"
    assert table.columns[3].generated == "CAST(date_string AS TIMESTAMP)"
    assert table.decode_schema().names == ["customer_id", "order_id", "date_string"]


def test_k_watermark_without_as() -> None:
    table = compile_like(EX_K)
    assert table.watermark is not None and table.watermark.expression is None
    assert table.event_time_column == "timestamp"


def test_l_metadata_column() -> None:
    table = compile_like(EX_L)
    column = table.columns[2]
    assert (column.name, column.metadata_key, column.is_physical) == ("my_topic", "topic", False)
    # In the emitted batches (NULL from the decoder; the connector fills it).
    assert "my_topic" in table.output_schema().names
    wrong = EX_L.replace("my_topic TEXT METADATA", "my_topic INT METADATA")
    with pytest.raises(ValidationErrors, match="incorrect data type for metadata field 'topic'; "
                       "expected TEXT, but found INT"):  # fmt: skip
        compile_sql(wrong, env={}, lookup=lookup)


def test_m_nested_struct() -> None:
    table = compile_like(EX_M)
    assert table.columns[1].data_type == pa.struct(
        [pa.field("a", pa.int32()), pa.field("x", pa.struct([pa.field("b", pa.string())]))]
    )


def test_n_json_column_and_subscript_in_virtual_column() -> None:
    table = compile_like(EX_N)
    assert table.columns[0].is_json
    assert table.columns[1].generated == "extract_json(length, '$.old')[1]"


def test_o_temporary_lookup_table_is_not_supported() -> None:
    with pytest.raises(ValidationErrors) as info:
        compile_sql(EX_O.replace("'redis'", "'kafka'"), env={}, lookup=lookup)
    [error] = info.value
    assert error.message == (
        "connector 'kafka' does not support lookup tables (CREATE TEMPORARY TABLE)"
    )


def test_debezium_with_virtual_fields_keeps_arroyos_message() -> None:
    with pytest.raises(ValidationErrors) as info:
        compile_sql(
            "CREATE TABLE d (a INT PRIMARY KEY, b INT GENERATED ALWAYS AS (a + 1) STORED) WITH ("
            "connector = 'kafka', bootstrap_servers = 'k:9092', type = 'source', topic = 't', "
            "format = 'debezium_json');",
            env={},
            lookup=lookup,
        )
    # Arroyo's own rule (debezium_json sources are decoded: formats/debezium.py).
    assert [e.message for e in info.value] == ["can't use virtual fields with debezium format"]


def test_plugin_connector_problems_are_collected_with_the_others() -> None:
    """A plugin that raises (pull_str of an absent key) adds one error; the rest of the
    table is still checked, and its unpulled keys are not called unknown."""
    with pytest.raises(ValidationErrors) as info:
        compile_sql(
            "CREATE TABLE k (value TEXT) WITH (connector = 'kafka', topic = 't', "
            "bad_data = 'skip', format = 'json');",
            env={},
            lookup=lookup,
        )
    assert [(e.message, e.position.col if e.position else 0) for e in info.value] == [
        ("required option 'type' not set", 29),
        ("required option 'bootstrap_servers' not set", 29),
        ("Invalid bad_data: 'invalid value for 'bad_data': `skip`; expected one of 'drop' or "
         "'fail''", 80),
    ]


def test_plugin_misspelled_required_key_is_one_error() -> None:
    with pytest.raises(ValidationErrors) as info:
        compile_sql(
            "CREATE TABLE k (value TEXT) WITH (connector = 'kafka', type = 'source', "
            "bootstrap_server = 'k', topic = 't', format = 'json');",
            env={},
            lookup=lookup,
        )
    [error] = info.value
    assert error.message == "required option 'bootstrap_servers' not set"
    assert error.hint == "did you mean 'bootstrap_servers' instead of 'bootstrap_server'?"
    assert error.position is not None and error.position.col == 73


def test_p_memory_table_and_ctas_verbatim() -> None:
    """(p) as the reference gives it: the CTAS reads a table defined elsewhere (nexmark),
    as a REPL statement would (``catalog``), so it is accepted as a named query; alone in a
    file it is ``table 'nexmark' not found``."""
    from arroyo_lite.sql.statements import CreateTable, CreateView

    [memory] = compile_sql(
        "CREATE TABLE memory (event_type TEXT, location TEXT, driver_id BIGINT);", env={}
    ).statements
    assert isinstance(memory, CreateTable) and memory.table.kind is TableKind.MEMORY
    assert [c.data_type for c in memory.table.columns] == [pa.string(), pa.string(), pa.int64()]
    ctas = "CREATE TABLE counts as (SELECT count(*) FROM nexmark);"
    with pytest.raises(ValidationErrors, match="table 'nexmark' not found"):
        compile_sql(ctas, env={})
    [counts] = compile_sql(ctas, env={}, catalog={"nexmark": TableKind.SOURCE}).statements
    assert isinstance(counts, CreateView)
    assert (counts.name, counts.query) == ("counts", "SELECT count(*) FROM nexmark")
