"""Arroyo's own SQL test corpus through the front end (reference/arroyo-sql-corpus).

Every file: no crash, every error positioned in that file. Files whose tables use only
polling_http, impulse or memory tables validate, unless they are expected to fail (``--fail=``)
for a reason the front end checks, in which case that message is reported. Connectors
arroyo-lite does not have are ``Unknown connector 'x'``, pointing at the name.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from arroyo_lite.errors import ValidationErrors
from arroyo_lite.sql import compile_file, compile_sql
from tests.support.corpus import CORPUS, MISSING

FILES = sorted(CORPUS.rglob("*.sql")) if CORPUS is not None else []
OURS = {"polling_http", "impulse", "single_file", "memory", "sse", "websocket"}
#: `--fail=` messages that are the front end's business (file-level and table rules).
OUR_FAILURES = (
    "Can only insert into a memory table once",
    "Can't query from memory table",
    "attempted to insert into table",
    "attempted to read from table",
    "'notfield' not found",
    "time window function",
    "hop() width",
    # Arroyo's join rules (sql/join_rules.py).
    "This feature is not implemented: can't handle non-inner joins",
    "can't handle updating",
)
#: What Arroyo's planner tests get from their harness (``get_test_schema_provider`` in
#: ``crates/arroyo-planner/src/test/mod.rs``: a ``nexmark`` table and the Rust UDFs of
#: ``src/test/udfs/``). Files using them get exactly these errors here, as files using a
#: connector arroyo-lite lacks get ``Unknown connector``.
HARNESS_ERRORS = (
    "table 'nexmark' not found",
    *(f"Invalid function '{udf}'" for udf in
      ("get_city", "irate", "parse_log", "parse_prom", "my_sqr")),
)  # fmt: skip
#: (cbor_to_json, one of them, is a built-in function of arroyo-lite: formats/cbor.py.)
_HARNESS = re.compile(r"\b(nexmark|get_city|irate|parse_log|parse_prom|my_sqr)\b")
#: Files that use only our connectors but a feature arroyo-lite lacks: the exact messages.
NOT_YET = {
    # Arroyo's own message, found by the query check (the file expects this failure).
    "planner/updating_filter_join.sql": ["Updating joins must include an equijoin condition"],
    # Rust UDFs of Arroyo's test crate.
    "sql-testing/async_udf.sql": ["Invalid function 'double_negative'"],
    "sql-testing/double_negative_udf.sql": ["Invalid function 'double_negative'"],
    "sql-testing/udaf.sql": ["Invalid function 'my_median'"],
}
_CONNECTOR = re.compile(r"connector\s*=\s*'([^']*)'", re.IGNORECASE)
_COMMENT = re.compile(r"--[^\n]*")

pytestmark = pytest.mark.skipif(not FILES, reason=MISSING)


def _expected_failure(text: str) -> str | None:
    first = text.splitlines()[0] if text else ""
    if not first.startswith("--fail="):
        return None
    message = first[len("--fail=") :]
    # Arroyo wraps plan errors; our messages carry the inner text.
    for prefix in ("Error during planning: ",):
        message = message.split(prefix)[-1]
    return message


def _compile(path: Path) -> list[str]:
    try:
        compile_file(path, env={})
    except ValidationErrors as e:
        for error in e:
            assert error.position is not None, error.message
            assert error.position.file == str(path)
            assert error.position.line >= 1 and error.position.col >= 1
        return [error.message for error in e]
    return []


def test_corpus_is_complete() -> None:
    assert len(FILES) == 99


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_file(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    connectors = set(_CONNECTOR.findall(_COMMENT.sub("", text)))
    messages = _compile(path)
    expected = _expected_failure(text)
    ours = expected is not None and any(expected.startswith(m) for m in OUR_FAILURES)
    harness = _HARNESS.search(_COMMENT.sub("", text)) is not None
    if ours:
        # As Arroyo's plan_tests.rs: the first diagnostic's message contains the --fail text.
        assert any(expected in m for m in messages) or not connectors <= OURS, messages
    elif harness and connectors <= OURS:
        assert messages and all(m in HARNESS_ERRORS for m in messages), messages
    elif connectors <= OURS:
        assert messages == NOT_YET.get(f"{path.parent.name}/{path.name}", []), messages
    for name in connectors - OURS:
        # (arroyo-lite has some as sinks only: their sources are refused by name.)
        assert {
            f"Unknown connector '{name}'",
            f"{name} sources are not supported by arroyo-lite",
        } & set(messages), messages


def test_our_failures_are_found() -> None:
    found = {
        path.name: _compile(path)
        for path in FILES
        if path.name
        in {"error_memory_table_double_write.sql", "error_read_from_unwritten_memory_table.sql",
            "insert_into_source.sql"}
    }  # fmt: skip
    double_write = found["error_memory_table_double_write.sql"]
    assert "Can only insert into a memory table once" in double_write
    assert found["error_read_from_unwritten_memory_table.sql"] == [
        "Can't query from memory table memory without first inserting into it."
    ]
    assert found["insert_into_source.sql"] == [
        "attempted to insert into table 'source', but it is a source"
    ]


def test_unknown_connector_points_at_the_name() -> None:
    path = CORPUS / "planner" / "struct_ddl.sql"
    with pytest.raises(ValidationErrors) as info:
        compile_file(path, env={})
    [error] = info.value
    assert error.position is not None and error.position.token == "'kafka'"
    line = path.read_text(encoding="utf-8").splitlines()[error.position.line - 1]
    assert line[error.position.col - 1 :].startswith("'kafka'")


@pytest.mark.parametrize("name", ["decimal.sql", "unnest.sql"])
def test_polling_http_files_validate(name: str) -> None:
    program = compile_file(CORPUS / "planner" / name, env={})
    assert program.tables and all(t.connector == "polling_http" for t in program.tables)


ARROYO_SHAPED = {
    "error_memory_table_double_write.sql": "Can only insert into a memory table once",
    "error_read_from_unwritten_memory_table.sql": "Can't query from memory table memory without "
    "first inserting into it.",
    "insert_into_source.sql": "attempted to insert into table 'source', but it is a source",
    "metadata_error.sql": "incorrect data type for metadata field 'topic'; expected TEXT, but "
    "found INT",
    "no_virtual_fields_updating.sql": "can't use virtual fields with debezium format",
    "select_from_sink.sql": "attempted to read from table 'cars_output', but it is a sink",
    "virtual_bad_schema.sql": "'notfield' not found",
}


@pytest.mark.parametrize(("name", "message"), sorted(ARROYO_SHAPED.items()))
def test_expected_failures_with_arroyo_shaped_connectors(name: str, message: str) -> None:
    """With test connectors shaped like Arroyo's (kafka, sse, ...), the table and file rules
    of the front end report what Arroyo's test expects."""
    from tests.plugins.arroyo_like import lookup

    path = CORPUS / "planner" / name
    text = path.read_text(encoding="utf-8")
    assert message in (_expected_failure(text) or "")
    with pytest.raises(ValidationErrors) as info:
        compile_sql(text, file=name, env={}, lookup=lookup)
    # (Arroyo's plan_tests.rs checks that its message *contains* the --fail text.)
    assert any(message in e.message for e in info.value), [e.message for e in info.value]
