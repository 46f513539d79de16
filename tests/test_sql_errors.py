"""Invalid DDL: every case asserts Arroyo's message, the line and the column it points at."""

from __future__ import annotations

import pytest

from arroyo_lite.errors import SqlError, ValidationErrors
from arroyo_lite.sql import compile_sql

BASE = "  connector = 'polling_http',\n  endpoint = 'http://example.com/x',\n  format = 'json'"
ENV = {"API_TOKEN": "s3cr3t-value", "BAD_TOKEN": "abc\r\nX-Evil: 1"}


def pt(*extra: str, columns: str = "value TEXT", base: str = BASE) -> str:
    """A polling_http table; ``extra`` options go on lines 5, 6, ... starting at column 3."""
    options = base + "".join(",\n  " + e for e in extra)
    return f"CREATE TABLE t ({columns}) WITH (\n{options}\n);"


def errors_of(sql: str, env: dict[str, str] | None = None) -> list[SqlError]:
    with pytest.raises(ValidationErrors) as info:
        compile_sql(sql, file="t.sql", env=ENV if env is None else env)
    return list(info.value)


# (sql, message, line, col). A message ending in "..." is a prefix.
CASES = [
    # -- polling_http options (Arroyo's from_options) --
    ("CREATE TABLE t (value TEXT) WITH (connector = 'polling_http', format = 'json');",
     "required option 'endpoint' not set", 1, 29),
    (pt("method = 'get'"), "invalid value for 'method': 'get'", 5, 12),
    (pt("emit_behavior = 'ALL'"), "invalid value for 'emit_behavior': 'ALL'", 5, 19),
    (pt("poll_interval_ms = 1.5"),
     "expected with option 'poll_interval_ms' to be an integer, but it was `1.5`", 5, 22),
    (pt("poll_interval_ms = -1"),
     "expected with option 'poll_interval_ms' to be an integer, but it was `-1`", 5, 22),
    (pt("poll_interval_ms = 'soon'"),
     "expected with option 'poll_interval_ms' to be an integer, but it was `soon`", 5, 22),
    (pt("poll_interval_ms = 0"),
     "invalid value for 'poll_interval_ms': 0 (must be greater than 0)", 5, 22),
    (pt("timeout_ms = '0'"), "invalid value for 'timeout_ms': 0 (must be greater than 0)", 5, 16),
    (pt("body = 42"), "expected with option 'body' to be a single-quoted string, but it was `42`",
     5, 10),
    (pt(base="  connector = 'polling_http',\n  endpoint = \"http://x\",\n  format = 'json'"),
     "expected with option 'endpoint' to be a single-quoted string, but it was `\"http://x\"`",
     3, 14),
    (pt(base="  connector = 'polling_http',\n  endpoint = 'not a url',\n  format = 'json'"),
     "invalid endpoint 'not a url': the scheme must be http or https", 3, 14),
    (pt(base="  connector = 'polling_http',\n  endpoint = 'ftp://h/x',\n  format = 'json'"),
     "invalid endpoint 'ftp://h/x': the scheme must be http or https", 3, 14),
    (pt(base="  connector = 'polling_http',\n  endpoint = 'http://h:99999/',\n  format = 'json'"),
     "invalid endpoint 'http://h:99999/': ...", 3, 14),
    (pt("headers = 'NoColonHere'"),
     "Invalid format for headers; should be a comma-separated list of colon-separated key "
     "value pairs", 5, 13),
    (pt("headers = 'A: b,'"), "Invalid format for headers; ...", 5, 13),
    (pt("headers = 'Bad Name: v'"), "invalid header name 'Bad Name'", 5, 13),
    (pt("headers = ': v'"), "invalid header name ''", 5, 13),
    (pt("headers = 'Authorization: Bearer {{ NOPE_VAR }}'"),
     "Environment variable NOPE_VAR not found", 5, 13),
    (pt("headers = 'X-Bell: ding\x07'"),
     "invalid header value for 'X-Bell' ('ding\\x07'): contains a control character", 5, 13),
    (pt("headers = 'X-Token: {{BAD_TOKEN}}'"),
     "invalid header value for 'X-Token' (from BAD_TOKEN): contains a line break", 5, 13),
    # -- format, framing, bad_data (generic options) --
    (pt(base="  connector = 'polling_http',\n  endpoint = 'http://h/x'"),
     "'format' must be set for polling HTTP connection", 1, 29),
    (pt(base="  connector = 'polling_http',\n  endpoint = 'http://h/x',\n  format = 'xml'"),
     "invalid format: 'unknown format 'xml''", 4, 12),
    (pt(base="  connector = 'polling_http',\n  endpoint = 'http://h/x',\n  format = 'protobuf'"),
     "Protobuf is not yet supported in CREATE TABLE statements", 4, 12),
    (pt(base="  connector = 'polling_http',\n  endpoint = 'http://h/x',\n  format = 'avro'"),
     "format 'avro' is not supported by arroyo-lite", 4, 12),
    (pt("framing = 'lines'"), "invalid framing: 'Unknown framing method 'lines''", 5, 13),
    (pt("'framing.newline.max_length' = 10"),
     "unknown options provided in WITH clause: 'framing.newline.max_length'", 5, 3),
    (pt("'json.unstructured' = true"),
     "could not create connection schema: json format with unstructured flag enabled requires "
     "a schema with a single field called `value` of type JSON", 1, 14),
    (pt("'json.unstructured' = 'maybe'", columns="value JSON"),
     "expected with option 'json.unstructured' to be a boolean, but it was `'maybe'`", 5, 25),
    (pt("'json.timestamp_format' = 'rfc3339'"),
     "invalid format: 'invalid value for `json.timestamp_format`'", 5, 29),
    (pt("'json.include_schema' = true", "'json.confluent_schema_registry' = 'yes'"),
     "invalid format: 'at most one of `json.confluent_schema_registry` and "
     "`json.include_schema` may be set'", 5, 27),
    (pt("'json.compression' = 'gzip'"),
     "'json.compression' is only supported for the filesystem connector", 5, 24),
    (pt(base="  connector = 'polling_http',\n  endpoint = 'http://h/x',\n  format = 'raw_string'",
        columns="value TEXT, other TEXT"),
     "could not create connection schema: raw_string format requires a schema with a single "
     "field called `value` of type TEXT", 1, 14),
    (pt(base="  connector = 'polling_http',\n  endpoint = 'http://h/x',\n  format = 'raw_string'",
        columns="body TEXT"),
     "could not create connection schema: raw_string format requires ...", 1, 14),
    (pt("'json.unstructured' = true",
        base="  connector = 'polling_http',\n  endpoint = 'http://h/x',\n  format = 'raw_string'"),
     "unknown options provided in WITH clause: 'json.unstructured'", 5, 3),
    (pt(base="  connector = 'polling_http',\n  endpoint = 'http://h/x',\n  format = 'raw_bytes'"),
     "could not create connection schema: raw_bytes format requires a schema with a single "
     "field called `value` of type BYTEA", 1, 14),
    (pt("bad_data = 'skip'"),
     "Invalid bad_data: 'invalid value for 'bad_data': `skip`; expected one of 'drop' or "
     "'fail''", 5, 14),
    (pt("type = 'source'"), "unknown options provided in WITH clause: 'type'", 5, 3),
    (pt("endpont = 'http://h'", "pol_interval_ms = 5"),
     "unknown options provided in WITH clause: 'endpont', 'pol_interval_ms'", 5, 3),
    (pt("connection_profile = 'prod'"), "connection profile 'prod' not found", 5, 24),
    (pt("idle_micros = -1"),
     "expected with option 'idle_micros' to be an integer, but it was `-1`", 5, 17),
    (pt("'retention.max_age' = 'forever'"), "invalid duration for 'retention.max_age': ...", 5, 25),
    (pt("'retention.max_age' = interval '1' month"),
     "invalid duration for 'retention.max_age': intervals in months or years are not supported",
     5, 25),
    (pt("'retention.max_rows' = -5"),
     "expected with option 'retention.max_rows' to be an unsigned integer, but it was `-5`",
     5, 26),
    (pt("json.unstructured = true"),
     "invalid with option: 'json.unstructured = true'; expected an `=` delimited key-value pair",
     5, 3),
    # Beyond Arroyo: a STRUCT cannot name a field twice (a JSON object cannot fill both).
    (pt(columns="x INT, s STRUCT<a INT, b STRUCT<c TEXT, c INT>>[]"),
     "duplicate field name 'c' in STRUCT<c TEXT, c INT>", 1, 26),
    # An empty option is reported at the comma to remove.
    ("CREATE TABLE i WITH (connector = 'impulse', event_rate = 1,);",
     "invalid with option: ''; expected an `=` delimited key-value pair", 1, 59),
    ("CREATE TABLE i WITH (connector = 'impulse',, event_rate = 1);",
     "invalid with option: ''; expected an `=` delimited key-value pair", 1, 44),
    ("CREATE TABLE i WITH (, connector = 'impulse', event_rate = 1);",
     "invalid with option: ''; expected an `=` delimited key-value pair", 1, 22),
    # -- connectors --
    ("CREATE TABLE k (a INT) WITH (connector = 'kafka', topic = 'x');",
     "Unknown connector 'kafka'", 1, 42),
    ("CREATE TABLE k (a INT) WITH (connector = 'polling-http');",
     "Unknown connector 'polling-http'", 1, 42),
    ("CREATE TABLE i WITH (connector = 'impulse');", "required option 'event_rate' not set", 1, 16),
    ("CREATE TABLE i WITH (connector = 'impulse', event_rate = 0);",
     "invalid value for 'event_rate': 0.0 (must be greater than 0)", 1, 58),
    ("CREATE TABLE i WITH (connector = 'impulse', event_rate = 'fast');",
     "expected with option 'event_rate' to be a double, but it was `fast`", 1, 58),
    # Beyond Arroyo: a rate the generator cannot run at is caught before the table starts.
    ("CREATE TABLE i WITH (connector = 'impulse', event_rate = 'NaN');",
     "invalid value for 'event_rate': nan (must be a finite number)", 1, 58),
    ("CREATE TABLE i WITH (connector = 'impulse', event_rate = 1e400);",
     "invalid value for 'event_rate': inf (must be a finite number)", 1, 58),
    ("CREATE TABLE i (a INT) WITH (connector = 'impulse', event_rate = 1);",
     "invalid schema for impulse source", 1, 17),
    ("CREATE TABLE i WITH (connector = 'impulse', event_rate = 1, message_count = 'many');",
     "expected with option 'message_count' to be an integer, but it was `many`", 1, 77),
    # -- columns and constraints --
    (pt(columns="value TEXT, n SMALLINT"),
     "field 'n' has a type 'Int16' that cannot be used in a connection table", 1, 29),
    (pt(columns="d DATE"),
     "field 'd' has a type 'Date32' that cannot be used in a connection table", 1, 17),
    (pt(columns="ts TIMESTAMP(7)"),
     "unsupported precision 7 -- supported precisions are 0 (seconds), 3 (milliseconds), "
     "6 (microseconds), and 9 (nanoseconds)", 1, 20),
    (pt(columns="ts TIMESTAMP WITH TIME ZONE"),
     "Unsupported SQL type 'TIMESTAMP WITH TIME ZONE'", 1, 20),
    (pt(columns="value TEXT, topic TEXT METADATA FROM 'topic'"),
     "unknown metadata field 'topic' for polling_http connector 't'", 1, 29),
    (pt(columns="a INT, PRIMARY KEY (a)"), "Unsupported table constraint `PRIMARY KEY (a)`", 1, 24),
    (pt(columns="ts TIMESTAMP, WATERMARK FOR ts, WATERMARK FOR ts"),
     "Only one WATERMARK FOR constraint is allowed per table", 1, 49),
    (pt(columns="value TEXT, WATERMARK FOR value"),
     'WATERMARK FOR field `"value"` has type TEXT, but expected TIMESTAMP', 1, 43),
    (pt(columns="value TEXT, WATERMARK FOR ts"),
     "WATERMARK FOR field `ts` does not exist", 1, 43),
    (pt(columns="length JSON, diff INT GENERATED ALWAYS AS (notfield) STORED"),
     "column 'notfield' not found", 1, 60),
    (pt(columns="value TEXT, value TEXT GENERATED ALWAYS AS (value) STORED"),
     "could not create connection schema: invalid field names in schema: Schema error: Schema "
     "contains duplicate unqualified field name value", 1, 29),
    (pt(columns="ts TIMESTAMP, WATERMARK FOR ts AS tss - INTERVAL '1' SECOND"),
     "column 'tss' not found", 1, 51),
    # The AS expression must be a TIMESTAMP that is never NULL (Arroyo's planner rules),
    # reported at the start of the expression.
    (pt(columns="ts TIMESTAMP, WATERMARK FOR ts AS ts - INTERVAL '1' SECOND"),
     "the type of the WATERMARK FOR expression must be NOT NULL", 1, 51),
    (pt(columns="ts TIMESTAMP NOT NULL, s TEXT, WATERMARK FOR ts AS (CAST(s AS TIMESTAMP))"),
     "the type of the WATERMARK FOR expression must be NOT NULL", 1, 68),
    (pt(columns="ts TIMESTAMP NOT NULL, WATERMARK FOR ts AS TRY_CAST(ts AS TIMESTAMP)"),
     "the type of the WATERMARK FOR expression must be NOT NULL", 1, 60),
    (pt(columns="ts TIMESTAMP NOT NULL, WATERMARK FOR ts AS CAST(ts AS TEXT)"),
     "the type of the WATERMARK FOR expression must be TIMESTAMP, but was Utf8", 1, 60),
    (pt(columns="ts TIMESTAMP NOT NULL, n BIGINT NOT NULL, WATERMARK FOR ts AS n"),
     "the type of the WATERMARK FOR expression must be TIMESTAMP, but was Int64", 1, 79),
    (pt("watermark_field = wm"), "watermark_field 'wm' does not exist", 5, 21),
    (pt("event_time_field = missing"), "event_time_field 'missing' does not exist", 5, 22),
    # -- memory tables and statements --
    ("CREATE TABLE m (a INT) WITH (format = 'json');",
     "Memory tables do not allow with options; to create a connection table set the "
     "'connector' option", 1, 30),
    ("CREATE TABLE m (a INT, b INT GENERATED ALWAYS AS (a + 1));",
     "memory table column 'b' cannot be virtual or metadata", 1, 24),
    ("CREATE TABLE t (a INT b INT);",
     "Expected: ',' or ')' after column definition, found: b", 1, 23),
    ("CREATE VIEW v SELECT 1;", "Expected AS, found: SELECT", 1, 15),
    ("SELECT a FROM t WHERE;", "syntax error: WHERE is incomplete", 1, 17),
    ("SELECT 'unterminated FROM t;", "could not tokenize SQL: unterminated string starting here",
     1, 8),
    ("SET parallelism = 4;", "invalid option 'parallelism'; supported options are 'updating_ttl'",
     1, 1),
    ("SELECT 1;\nSET updating_ttl = 5;", "expected an interval, but found `5`", 2, 20),
    ("SET updating_ttl = interval '1' month;",
     "intervals in months or years are not supported", 1, 20),
    ("SET updating_ttl =  '-2 hours';", "negative intervals are not supported", 1, 21),
    ("DELETE FROM t;", "unsupported statement: DELETE", 1, 1),
    ("CREATE TABLE i WITH (connector = 'impulse', event_rate = 1);\n"
     "INSERT INTO i SELECT * FROM i;",
     "attempted to insert into table 'i', but it is a source", 2, 13),
    ("CREATE TABLE m (a INT);\nINSERT INTO m SELECT 1;\nINSERT INTO m SELECT 2;",
     "Can only insert into a memory table once", 3, 13),
    ("CREATE TABLE m (a INT);\nSELECT * FROM m;",
     "Can't query from memory table m without first inserting into it.", 2, 15),
    ("CREATE TABLE m (a INT);\nCREATE TABLE M (b INT);\nINSERT INTO m SELECT 1;",
     "table 'M' is already defined", 2, 1),
]  # fmt: skip


@pytest.mark.parametrize(("sql", "message", "line", "col"), CASES)
def test_invalid_ddl(sql: str, message: str, line: int, col: int) -> None:
    errors = errors_of(sql)
    first = errors[0]
    if message.endswith("..."):
        assert first.message.startswith(message[:-3]), first.message
    else:
        assert first.message == message
    assert first.position is not None
    assert (first.position.file, first.position.line, first.position.col) == ("t.sql", line, col)


FMT_XML = "  connector = 'polling_http',\n  endpoint = 'http://h/x',\n  format = 'xml'"
RAW = "  connector = 'polling_http',\n  endpoint = 'http://h/x',\n  format = 'raw_string'"

# Every problem of a table is reported, in source order, with no cascade from an earlier one.
# (sql, [(message, line, col), ...]). A message ending in "..." is a prefix.
MULTI_CASES = [
    # The example: one error per mistake, and a misspelled required key is reported
    # once (unknown option + did-you-mean), not also as "'format' must be set".
    ("CREATE TABLE p2 (symbol TEXT, price DOUBLE) WITH (\n"
     "  connector = 'polling_http', endpoint = 'https://api.example.com/prices',\n"
     "  method = 'get', headers = 'Authorization: Bearer {{ NOPE_TOKEN }}',\n"
     "  poll_interval_ms = '0', emit_behavior = 'changd', fromat = 'json');",
     [("invalid value for 'method': 'get'", 3, 12),
      ("Environment variable NOPE_TOKEN not found", 3, 29),
      ("invalid value for 'poll_interval_ms': 0 (must be greater than 0)", 4, 22),
      ("invalid value for 'emit_behavior': 'changd'", 4, 43),
      ("unknown options provided in WITH clause: 'fromat'", 4, 53)]),
    # Typed-value problems of several options, then a leftover key.
    (pt("poll_interval_ms = -1", "timeout_ms = 0", "'retention.max_rows' = -5",
        "idle_micros = 'x'", "bogus = 1"),
     [("expected with option 'poll_interval_ms' to be an integer, but it was `-1`", 5, 22),
      ("invalid value for 'timeout_ms': 0 (must be greater than 0)", 6, 16),
      ("expected with option 'retention.max_rows' to be an unsigned integer, but it was `-5`",
       7, 26),
      ("expected with option 'idle_micros' to be an integer, but it was `x`", 8, 17),
      ("unknown options provided in WITH clause: 'bogus'", 9, 3)]),
    # A bad format: its json.* sub-options are not "unknown", and no "'format' must be set".
    (pt("'json.unstructured' = true", "'json.timestamp_format' = 'x'", base=FMT_XML),
     [("invalid format: 'unknown format 'xml''", 4, 12)]),
    # A bad framing: its max_length is not "unknown".
    (pt("framing = 'lines'", "'framing.newline.max_length' = 10"),
     [("invalid framing: 'Unknown framing method 'lines''", 5, 13)]),
    # A misspelled required key: one error, at the misspelling.
    (pt(base="  connector = 'polling_http',\n  endpont = 'http://h/x',\n  format = 'json'"),
     [("unknown options provided in WITH clause: 'endpont'", 3, 3)]),
    # Column type errors and option errors; event_time_field is not checked against the
    # broken columns (and not called unknown either).
    (pt("method = 'get'", "event_time_field = ts",
        columns="value TEXT, ts TIMESTAMP(2), n SMALLINT"),
     [("unsupported precision 2 -- ...", 1, 32),
      ("field 'n' has a type 'Int16' that cannot be used in a connection table", 1, 46),
      ("invalid value for 'method': 'get'", 5, 12)]),
    # Two headers problems (both at the headers value, in the order found).
    (pt("headers = 'Bad Name: v,X: {{ NOPE }}'"),
     [("Environment variable NOPE not found", 5, 13),
      ("invalid header name 'Bad Name'", 5, 13)]),
    (pt("bad_data = 'skip'", columns="value TEXT, WATERMARK FOR ts"),
     [("WATERMARK FOR field `ts` does not exist", 1, 43),
      ("Invalid bad_data: 'invalid value for 'bad_data': `skip`; expected one of 'drop' or "
       "'fail''", 5, 14)]),
    (pt(base="  connector = 'polling_http',\n  endpoint = 'ftp://x',\n  format = 'protobuf'",
        columns="value TEXT, topic TEXT METADATA FROM 'topic'"),
     [("unknown metadata field 'topic' for polling_http connector 't'", 1, 29),
      ("invalid endpoint 'ftp://x': the scheme must be http or https", 3, 14),
      ("Protobuf is not yet supported in CREATE TABLE statements", 4, 12)]),
    # A repeated column name is reported once (not also as a broken raw_string shape).
    (pt(columns="value TEXT, value TEXT", base=RAW),
     [("could not create connection schema: invalid field names in schema: Schema error: "
       "Schema contains duplicate unqualified field name value", 1, 29)]),
    ("CREATE TABLE t WITH (connector = 'polling_http', endpoint = 'http://h/x', "
     "format = 'json', method = 'get');",
     [("table 't' declares no columns, and connector 'polling_http' has no default schema",
       1, 14),
      ("invalid value for 'method': 'get'", 1, 101)]),
    # impulse: both bad values; a bad event_rate is not also "not set".
    ("CREATE TABLE i WITH (connector = 'impulse', event_rate = 'fast', message_count = 'many');",
     [("expected with option 'event_rate' to be a double, but it was `fast`", 1, 58),
      ("expected with option 'message_count' to be an integer, but it was `many`", 1, 82)]),
    ("CREATE TABLE i WITH (connector = 'impulse', evnt_rate = 1);",
     [("unknown options provided in WITH clause: 'evnt_rate'", 1, 45)]),
    # Memory tables: every problem.
    ("CREATE TABLE m (a INT, b INT GENERATED ALWAYS AS (a + 1), c BIT) WITH (format = 'json');",
     [("memory table column 'b' cannot be virtual or metadata", 1, 24),
      ("Unsupported SQL type 'BIT'", 1, 61),
      ("Memory tables do not allow with options; to create a connection table set the "
       "'connector' option", 1, 72)]),
    # A connector that is not a string, or unknown: nothing else of the table can be checked.
    ("CREATE TABLE t (value TEXT) WITH (connector = 5, format = 'json', method = 'get');",
     [("expected with option 'connector' to be a single-quoted string, but it was `5`", 1, 47)]),
    ("CREATE TABLE t (value TEXT) WITH (connector = 'kafak', fromat = 'json');",
     [("Unknown connector 'kafak'", 1, 47)]),
    # Several tables, several problems each: all of them, in source order.
    (pt("method = 'get'", "emit_behavior = 'ALL'") + "\n"
     "CREATE TABLE i WITH (connector = 'impulse', event_rate = 0, message_count = '-1');",
     [("invalid value for 'method': 'get'", 5, 12),
      ("invalid value for 'emit_behavior': 'ALL'", 6, 19),
      ("invalid value for 'event_rate': 0.0 (must be greater than 0)", 8, 58),
      ("invalid value for 'message_count': -1 (must be at least 0)", 8, 77)]),
]  # fmt: skip


@pytest.mark.parametrize(("sql", "expected"), MULTI_CASES)
def test_every_problem_of_a_table(sql: str, expected: list[tuple[str, int, int]]) -> None:
    errors = errors_of(sql)
    got = [(e.message, e.position.line, e.position.col) for e in errors if e.position]
    assert len(got) == len(errors)  # every error is positioned
    assert len(got) == len(expected), "\n".join(e.format() for e in errors)
    for (message, line, col), (want, want_line, want_col) in zip(got, expected, strict=True):
        if want.endswith("..."):
            assert message.startswith(want[:-3]), message
        else:
            assert message == want
        assert (line, col) == (want_line, want_col), message


def test_a_misspelled_required_key_is_one_error_with_a_did_you_mean() -> None:
    [error] = errors_of(pt(base="  connector = 'polling_http',\n  endpoint = 'http://h/x',\n"
                              "  fromat = 'json'"))
    assert error.message == "unknown options provided in WITH clause: 'fromat'"
    assert error.hint == "did you mean 'format' instead of 'fromat'?"


def test_enum_hint_suggests_a_close_value() -> None:
    errors = errors_of(pt("emit_behavior = 'changd'"))
    assert [e.hint for e in errors] == [
        "did you mean 'changed'? expected 'all', 'changed', 'dedup' or 'snapshot' (case-sensitive)"
    ]


def test_unknown_option_hint_suggests_the_closest_key() -> None:
    [error] = errors_of(pt("endpont = 'http://h'", "pol_interval_ms = 5"))
    assert error.hint is not None
    assert "did you mean 'endpoint' instead of 'endpont'?" in error.hint
    assert "did you mean 'poll_interval_ms' instead of 'pol_interval_ms'?" in error.hint


@pytest.mark.parametrize(
    ("sql", "key", "col", "hint"),
    [(pt("'json.unstructured' = true", base=RAW), "json.unstructured", 3,
      "'json.unstructured' is only read with format = 'json'"),
     (pt("'framing.newline.max_length' = 64"), "framing.newline.max_length", 3,
      "'framing.newline.max_length' is only read with framing = 'newline'"),
     (pt("type = 'source'"), "type", 3,
      "'type' is only for connectors that are both source and sink; remove it")],
)  # fmt: skip
def test_a_sub_option_without_its_parent_says_why(sql: str, key: str, col: int, hint: str) -> None:
    """Arroyo leaves such keys unpulled (unknown); the hint names the missing parent
    instead of suggesting the key itself as a spelling."""
    [error] = errors_of(sql)
    assert error.message == f"unknown options provided in WITH clause: '{key}'"
    assert error.position is not None and (error.position.line, error.position.col) == (5, col)
    assert error.hint == hint


def test_a_missing_comma_between_options_gets_a_hint() -> None:
    [error] = errors_of("CREATE TABLE u WITH (connector = 'impulse'\n  event_rate = 1);")
    assert error.position is not None and (error.position.line, error.position.col) == (2, 14)
    assert error.hint == (
        "could not read the value of 'connector': is a comma missing? (key = value, key = value)"
    )


@pytest.mark.parametrize(
    ("sql", "token", "line", "hint"),
    [("SELEC * FROM t;", "SELEC", 1, "did you mean SELECT?"),
     ("CREATE TABLE m (a INT);\nCRATE TABLE t (a INT);", "CRATE", 2, "did you mean CREATE?"),
     ("INSRT INTO t SELECT 1;", "INSRT", 1, "did you mean INSERT?"),
     ("frobnicate;", "frobnicate", 1,
      "arroyo-lite runs CREATE TABLE, CREATE VIEW, INSERT INTO, SELECT and SET")],
)  # fmt: skip
def test_a_misspelled_statement_keyword_is_named(
    sql: str, token: str, line: int, hint: str
) -> None:
    [error] = errors_of(sql)
    assert error.message == f"Expected an SQL statement, found: {token}"
    assert error.position is not None
    assert (error.position.line, error.position.col, error.position.token) == (line, 1, token)
    assert error.hint == hint


def test_unknown_connector_hint() -> None:
    [error] = errors_of("CREATE TABLE k (a INT) WITH (connector = 'polling-http');")
    assert error.hint == "did you mean 'polling_http'?"


def test_enum_hint_lists_accepted_values() -> None:
    [error] = errors_of(pt("method = 'get'"))
    assert error.hint == (
        "did you mean 'GET'? expected 'GET', 'POST', 'PUT' or 'PATCH' (case-sensitive)"
    )


def test_every_problem_in_a_file_is_reported_in_order() -> None:
    sql = "\n".join(
        [
            "CREATE TABLE a (value TEXT) WITH (connector = 'kafka');",
            "CREATE TABLE ok (value TEXT) WITH (connector = 'polling_http', "
            "endpoint = 'http://h/x', format = 'raw_string');",
            "SELEC * FROM ok;",
            "CREATE TABLE b (value TEXT) WITH (connector = 'polling_http', "
            "endpoint = 'http://h/x', format = 'json', method = 'get');",
            "SELECT value FROM ok;",
        ]
    )
    errors = errors_of(sql)
    assert [(e.position.line if e.position else 0) for e in errors] == [1, 3, 4]
    assert errors[0].message == "Unknown connector 'kafka'"
    assert errors[2].message == "invalid value for 'method': 'get'"


def test_column_errors_are_all_collected() -> None:
    errors = errors_of(pt(columns="a TIMESTAMP(2), b BIT, c INT"))
    assert [e.message.split(" ")[0] for e in errors] == ["unsupported", "Unsupported"]
    assert [e.position.col for e in errors if e.position] == [19, 35]  # at the types


def test_secret_values_never_appear_in_messages() -> None:
    errors = errors_of(pt("headers = 'X-Token: {{ BAD_TOKEN }}'"))
    text = "\n".join(e.format() for e in errors)
    assert "BAD_TOKEN" in text
    assert "abc" not in text and "X-Evil" not in text


def test_env_defaults_to_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    sql = pt("headers = 'Authorization: Bearer {{ H1_TEST_TOKEN }}'")
    monkeypatch.delenv("H1_TEST_TOKEN", raising=False)
    with pytest.raises(ValidationErrors, match="Environment variable H1_TEST_TOKEN not found"):
        compile_sql(sql)
    monkeypatch.setenv("H1_TEST_TOKEN", "value-from-env")
    table = compile_sql(sql).tables[0]
    # The template is kept: the secret value is not stored in the config.
    assert table.connector_options.headers == (("Authorization", "Bearer {{ H1_TEST_TOKEN }}"),)
    assert "value-from-env" not in repr(table)


def test_insert_into_an_unknown_table() -> None:
    [error] = errors_of("CREATE TABLE memo (a INT);\nINSERT INTO mem SELECT 1;")
    assert error.message == "table 'mem' not found"
    assert error.hint == "did you mean 'memo'?"
    assert error.position is not None and (error.position.line, error.position.col) == (2, 13)


def test_a_failed_table_is_not_reported_again_by_its_users() -> None:
    errors = errors_of(
        "CREATE TABLE m (a INT) WITH (format = 'json');\nINSERT INTO m SELECT 1;\nSELECT * FROM m;"
    )
    assert [e.message.split(";")[0] for e in errors] == ["Memory tables do not allow with options"]


def test_with_clause_before_insert_stays_with_the_query() -> None:
    from arroyo_lite.sql.statements import Insert

    program = compile_sql(
        "CREATE TABLE y (a INT);\nWITH x AS (SELECT 1 AS a) INSERT INTO y (a) SELECT * FROM x;",
        env={},
    )
    insert = program.statements[1]
    assert isinstance(insert, Insert) and insert.target == "y"
    assert insert.query == "WITH x AS (SELECT 1 AS a) SELECT * FROM x"


@pytest.mark.parametrize(
    ("sql", "hint"),
    [(pt("headers = '{{ API_TOKEN }}: v'"), "{{ VAR }} is substituted in header values only"),
     (pt("poll_interval_ms = 'soon'"),
      "write a whole number, bare or quoted: poll_interval_ms = 10 or poll_interval_ms = '10'"),
     (pt("'retention.max_rows' = -5"), "write a whole number (0 or more), bare or quoted: "
      "retention.max_rows = 10 or retention.max_rows = '10'"),
     ("CREATE TABLE i WITH (connector = 'impulse', event_rate = 'fast');",
      "write a number, bare or quoted: event_rate = 2.5 or event_rate = '2.5'"),
     (pt(columns="ts TIMESTAMP WITH TIME ZONE"),
      "use TIMESTAMP (Arroyo's timestamps have no time zone)"),
     (pt(columns="ts TIMESTAMP(7)"),
      "use TIMESTAMP, TIMESTAMP(0), TIMESTAMP(3), TIMESTAMP(6) or TIMESTAMP(9)"),
     (pt(columns="s STRUCT<a INT, a TEXT>"), "give each STRUCT field its own name"),
     ("CREATE TABLE m (a INT);\nCREATE TABLE M (b INT);\nINSERT INTO m SELECT 1;",
      "table names are case-insensitive; pick another name"),
     ("CREATE TABLE m (a INT);\nSELECT * FROM m;", "add INSERT INTO m SELECT ... to the file"),
     ("CREATE TABLE m (a INT);\nINSERT INTO m SELECT 1;\nINSERT INTO m SELECT 2;",
      "combine the queries with UNION ALL in one INSERT")],
)  # fmt: skip
def test_hints_say_what_to_write(sql: str, hint: str) -> None:
    [error] = errors_of(sql)
    assert error.hint == hint


@pytest.mark.parametrize(
    ("sql", "hint"),
    [("CREATE TABLE t (a INT b INT);", "is a comma missing before 'b'?"),
     ("SELECT * FROM t WHERE (a = 1;", "a '(' is not closed"),
     ("CREATE VIEW v SELECT 1;", "write CREATE VIEW name AS SELECT ...")],
)  # fmt: skip
def test_syntax_errors_get_a_hint(sql: str, hint: str) -> None:
    assert [e.hint for e in errors_of(sql)] == [hint]


def test_an_unparsable_create_is_not_reported_again_by_its_users() -> None:
    """Statements using a table whose CREATE did not parse get no "not found" on top."""
    errors = errors_of(
        "CREATE TABLE IF NOT EXISTS db.m (a INT b INT);\nINSERT INTO m SELECT 1;\n"
        "CREATE VIEW v SELECT 1;\nSELECT * FROM v;"
    )
    assert [(e.message, e.position.line if e.position else 0) for e in errors] == [
        ("Expected: ',' or ')' after column definition, found: b", 1),
        ("Expected AS, found: SELECT", 3),
    ]
