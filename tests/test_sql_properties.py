"""Property tests: option strings survive SQL quoting, splitting and header parsing."""

from __future__ import annotations

import string

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from arroyo_lite.errors import ValidationErrors
from arroyo_lite.sql import compile_sql
from arroyo_lite.sql.statements import Query

# Any text, including quotes, semicolons, newlines, comment markers and non-ASCII.
TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    max_size=60,
) | st.lists(st.sampled_from(["'", ";", "\n", "\r\n", "--", "/*", "*/", "''", "\\", "{{", "$$"]),
             max_size=12).map("".join)  # fmt: skip
TOKEN_CHARS = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"


def quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def table(**options: str) -> str:
    extra = "".join(f", {k} = {v}" for k, v in options.items())
    return (
        "CREATE TABLE t (value TEXT) WITH (connector = 'polling_http', "
        f"endpoint = 'http://h.test/', format = 'raw_string'{extra});"
    )


@settings(max_examples=150, deadline=None)
@given(body=TEXT)
def test_body_round_trips(body: str) -> None:
    options = compile_sql(table(body=quote(body)), env={}).tables[0].connector_options
    assert options.body == body


@settings(max_examples=100, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(
            st.text(alphabet=TOKEN_CHARS, min_size=1, max_size=12),
            st.text(
                alphabet=st.characters(
                    blacklist_categories=("Cs", "Zs", "Zl", "Zp", "Cc"), blacklist_characters=","
                ),
                max_size=20,
            ),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_headers_split_on_commas_and_the_first_colon(pairs: list[tuple[str, str]]) -> None:
    text = ",".join(f"{name}: {value}" for name, value in pairs)
    options = compile_sql(table(headers=quote(text)), env={}).tables[0].connector_options
    assert options.headers == tuple(pairs)


@settings(max_examples=100, deadline=None)
@given(values=st.lists(TEXT, min_size=1, max_size=4))
def test_semicolons_in_strings_do_not_split_statements(values: list[str]) -> None:
    statements = [f"SELECT {quote(v)} AS v" for v in values]
    program = compile_sql(";\n".join(statements) + ";", env={})
    assert [s.text for s in program.statements] == statements
    assert all(isinstance(s, Query) for s in program.statements)


@settings(max_examples=100, deadline=None)
@given(key=st.text(alphabet=string.ascii_lowercase + "._", min_size=1, max_size=20))
def test_unknown_quoted_keys_are_reported_verbatim(key: str) -> None:
    known = {"connector", "endpoint", "format", "headers", "method", "body", "framing",
             "bad_data", "idle_micros", "timeout_ms", "emit_behavior", "poll_interval_ms",
             "max_body_bytes", "max_backoff_ms", "event_time_field", "watermark_field",
             "connection_profile"}  # fmt: skip
    from arroyo_lite.connectors.registry import get_connector
    from arroyo_lite.sql.generic_options import GENERIC_KEYS

    known |= set(get_connector("polling_http").options_schema()["properties"])
    known |= set(GENERIC_KEYS)  # the options every table takes (max_records_per_body...)
    assume(key not in known)
    assume(not key.startswith(("json.", "retention.", "framing.", "query.")))
    try:
        compile_sql(table(**{"x": "1"}).replace("x = 1", f"{quote(key)} = 1"), env={})
    except ValidationErrors as e:
        [error] = e
        assert error.message == f"unknown options provided in WITH clause: '{key}'"
        assert error.position is not None and error.position.token == quote(key)
    else:
        raise AssertionError("an unknown key must be rejected")


PIECES = ["CREATE", "TABLE", "TEMPORARY", "VIEW", "t", "(", ")", "[", "]", "<", ">", ",", ";",
          "=", "-", "WITH", "connector", "'polling_http'", "'impulse'", "endpoint", "'http://h/'",
          "format", "'json'", "'raw_string'", "INT", "TEXT", "STRUCT", "DECIMAL", "38",
          "TIMESTAMP", "JSON", "NOT", "NULL", "PRIMARY", "KEY", "WATERMARK", "FOR", "AS",
          "GENERATED", "ALWAYS", "STORED", "METADATA", "FROM", "SELECT", "INSERT", "INTO", "SET",
          "interval", "'5'", "second", "1.5", "'", '"', "/*", "*/", "--", "\n", "{{", "}}", "::",
          "window", "session", "OVER", "value"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(text=st.lists(st.sampled_from(PIECES), max_size=30).map(" ".join) | st.text(max_size=60))
def test_garbage_is_a_positioned_error_never_a_crash(text: str) -> None:
    try:
        compile_sql(text, file="g.sql", env={})
    except ValidationErrors as e:
        assert len(e) >= 1
        for error in e:
            assert error.position is not None and error.position.file == "g.sql"
            assert error.position.line >= 1 and error.position.col >= 1


SCALARS = ["BOOLEAN", "INT", "BIGINT", "INT UNSIGNED", "BIGINT UNSIGNED", "FLOAT", "DOUBLE",
           "TEXT", "VARCHAR", "JSON", "BYTEA", "TIMESTAMP", "TIMESTAMP(3)", "DECIMAL(10, 2)",
           "DECIMAL"]  # fmt: skip
FIELD = st.from_regex(r"[a-z][a-z0-9_]{0,6}", fullmatch=True).filter(
    lambda n: n not in {"as", "by", "in", "is", "on", "or", "to", "if", "all", "and", "any",
                        "asc", "end", "for", "not", "set", "use", "key", "row", "top", "div"}
)  # fmt: skip


def sql_types(depth: int = 2) -> st.SearchStrategy[str]:
    scalar = st.sampled_from(SCALARS)
    if depth == 0:
        return scalar
    inner = sql_types(depth - 1)
    return st.one_of(
        scalar,
        # An array's element cannot itself be an array (Arroyo's types.rs).
        inner.filter(lambda t: not t.endswith("[]")).map(lambda t: f"{t}[]"),
        st.lists(st.tuples(FIELD, inner), min_size=1, max_size=3, unique_by=lambda f: f[0]).map(
            lambda fs: "STRUCT<" + ", ".join(f"{n} {t}" for n, t in fs) + ">"
        ),
    )


@settings(max_examples=150, deadline=None)
@given(sql_type=sql_types())
def test_column_types_round_trip_through_their_canonical_name(sql_type: str) -> None:
    def column(type_text: str):  # type: ignore[no-untyped-def]
        sql = (
            f"CREATE TABLE t (c {type_text}) WITH (connector = 'polling_http', "
            "endpoint = 'http://h.test/', format = 'json');"
        )
        return compile_sql(sql, env={}).tables[0].columns[0]

    first = column(sql_type)
    again = column(first.sql_type)
    assert again.data_type == first.data_type
    assert again.sql_type == first.sql_type


@settings(max_examples=100, deadline=None)
@given(bodies=st.lists(TEXT, min_size=2, max_size=4))
def test_many_tables_in_one_file_keep_their_values_and_positions(bodies: list[str]) -> None:
    """Quotes, semicolons, comment markers and newlines inside one table's string values
    neither split the file nor shift where the next table is said to start."""
    statements = [
        table(body=quote(body)).replace("CREATE TABLE t ", f"CREATE TABLE t{i} ")
        for i, body in enumerate(bodies)
    ]
    text = "\n".join(statements)
    program = compile_sql(text, file="many.sql", env={})
    assert [t.connector_options.body for t in program.tables] == bodies
    offset = 0
    for statement, source in zip(program.statements, statements, strict=True):
        start = text.index(source, offset)
        assert statement.text == source[:-1]  # without its ';'
        assert statement.position.line == text.count("\n", 0, start) + 1
        assert statement.position.col == start - (text.rfind("\n", 0, start) + 1) + 1
        offset = start + len(source)
