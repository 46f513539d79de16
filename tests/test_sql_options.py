"""Arroyo's typed WITH-option pullers (OptionReader), one value at a time."""

from __future__ import annotations

from typing import Any

import pytest

from arroyo_lite.connectors.options import OptionReader, parse_duration
from arroyo_lite.errors import SqlError
from arroyo_lite.sql.parse import parse_statement
from arroyo_lite.sql.source import SourceText, split_statements


def reader_for(options: str) -> OptionReader:
    source = SourceText(f"CREATE TABLE t WITH ({options})", "o.sql")
    parsed = parse_statement(split_statements(source)[0], source)
    assert parsed.options is not None
    return OptionReader(parsed.options, clause_position=parsed.with_position)


OK: list[tuple[str, str, Any]] = [
    ("pull_opt_str", "'text'", "text"),
    ("pull_opt_str", "'it''s'", "it's"),
    ("pull_opt_bool", "true", True),
    ("pull_opt_bool", "FALSE", False),
    ("pull_opt_bool", "'yes'", True),
    ("pull_opt_bool", "'no'", False),
    ("pull_opt_i64", "5000", 5000),
    ("pull_opt_i64", "'-1'", -1),
    ("pull_opt_i64", "'9223372036854775807'", 2**63 - 1),
    ("pull_opt_u64", "'18446744073709551615'", 2**64 - 1),
    ("pull_opt_f64", "2.5", 2.5),
    ("pull_opt_f64", "'1e3'", 1000.0),
    ("pull_opt_f64", "10", 10.0),
    ("pull_opt_duration", "interval '5' second", 5.0),
    ("pull_opt_duration", "INTERVAL '1' HOUR", 3600.0),
    ("pull_opt_duration", "'90 seconds'", 90.0),
    ("pull_opt_field", "ts", "ts"),
    ("pull_opt_field", "'ts'", "ts"),
    ("pull_opt_data_size_bytes", "'64mb'", 64 << 20),
    ("pull_opt_data_size_bytes", "'512'", 512),
    ("pull_opt_data_size_bytes", "'2GB'", 2 << 30),
]

BAD: list[tuple[str, str, str]] = [
    ("pull_opt_str", '"dq"', "expected with option 'k' to be a single-quoted string, but it was "
     '`"dq"`'),
    ("pull_opt_str", "5", "expected with option 'k' to be a single-quoted string, but it was `5`"),
    ("pull_opt_bool", "'True'", "expected with option 'k' to be a boolean, but it was `'True'`"),
    ("pull_opt_bool", "1", "expected with option 'k' to be a boolean, but it was `1`"),
    ("pull_opt_i64", "-1", "expected with option 'k' to be an integer, but it was `-1`"),
    ("pull_opt_i64", "1.5", "expected with option 'k' to be an integer, but it was `1.5`"),
    ("pull_opt_i64", "'9223372036854775808'",
     "expected with option 'k' to be an integer, but it was `9223372036854775808`"),
    ("pull_opt_u64", "'-1'", "expected with option 'k' to be an unsigned integer, but it was `-1`"),
    ("pull_opt_f64", "'fast'", "expected with option 'k' to be a double, but it was `fast`"),
    ("pull_opt_duration", "5", "expected an interval for 'k', but found `5`"),
    ("pull_opt_duration", "'5 fortnights'", "invalid duration for 'k': unknown interval unit "
     "'fortnights'"),
    ("pull_opt_field", "1", "expected with option 'k' to be a field, but it was `1`"),
    ("pull_opt_data_size_bytes", "'12 mb'", "invalid data size for 'k': '12 mb'"),
    ("pull_opt_data_size_bytes", "'3zb'", "invalid data size for 'k': '3zb'"),
]  # fmt: skip


@pytest.mark.parametrize(("puller", "value", "expected"), OK)
def test_accepted(puller: str, value: str, expected: Any) -> None:
    reader = reader_for(f"k = {value}")
    assert getattr(reader, puller)("k") == expected
    assert "k" not in reader  # pulled, so it is not a leftover
    reader.check_leftovers()


@pytest.mark.parametrize(("puller", "value", "message"), BAD)
def test_rejected_at_the_value(puller: str, value: str, message: str) -> None:
    reader = reader_for(f"k = {value}")
    with pytest.raises(SqlError) as info:
        getattr(reader, puller)("k")
    assert info.value.message == message
    assert info.value.position is not None
    assert (info.value.position.line, info.value.position.col) == (1, 26)


def test_absent_optional_is_none_and_required_is_an_error() -> None:
    reader = reader_for("other = 1")
    assert reader.pull_opt_str("k") is None
    with pytest.raises(SqlError) as info:
        reader.pull_i64("k")
    assert info.value.message == "required option 'k' not set"
    assert info.value.position is not None and info.value.position.col == 16  # WITH


def test_duplicate_key_keeps_the_last_value() -> None:
    reader = reader_for("k = 'first', k = 'second'")
    assert reader.pull_opt_str("k") == "second"
    assert len(reader) == 0


def test_leftovers_are_listed_in_order_with_hints() -> None:
    reader = reader_for("endpoint = 'x', zzz = 1, methd = 'GET'")
    reader.know("method")
    reader.pull_opt_str("endpoint")
    with pytest.raises(SqlError) as info:
        reader.check_leftovers()
    assert info.value.message == "unknown options provided in WITH clause: 'zzz', 'methd'"
    assert info.value.hint == "did you mean 'method' instead of 'methd'?"
    assert info.value.position is not None and info.value.position.token == "zzz"


@pytest.mark.parametrize("text", ["", "  ", "5", "-5 seconds", "1 month", "3 lightyears"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def collecting(options: str) -> OptionReader:
    source = SourceText(f"CREATE TABLE t WITH ({options})", "o.sql")
    parsed = parse_statement(split_statements(source)[0], source)
    assert parsed.options is not None
    return OptionReader(parsed.options, clause_position=parsed.with_position, collect=True)


@pytest.mark.parametrize(("puller", "value", "message"), BAD)
def test_collecting_records_the_problem_and_reads_none(
    puller: str, value: str, message: str
) -> None:
    reader = collecting(f"k = {value}")
    assert getattr(reader, puller)("k") is None
    [error] = reader.errors
    assert error.message == message
    assert error.position is not None and error.position.col == 26
    assert reader.is_invalid("k") and "k" not in reader


def test_collecting_keeps_going_over_every_option() -> None:
    reader = collecting("a = 'x', b = 'y', c = 3, zzz = 1")
    assert reader.pull_opt_i64("a") is None
    assert reader.pull_opt_bool("b") is None
    assert reader.pull_opt_i64("c") == 3
    reader.check_leftovers()
    assert [e.message for e in reader.errors] == [
        "expected with option 'a' to be an integer, but it was `x`",
        "expected with option 'b' to be a boolean, but it was `'y'`",
        "unknown options provided in WITH clause: 'zzz'",
    ]


def test_collecting_required_puller_raises_the_recorded_error_once() -> None:
    reader = collecting("n = 'many'")
    with pytest.raises(SqlError) as bad:
        reader.pull_i64("n")
    with pytest.raises(SqlError) as absent:
        reader.pull_str("s")
    assert [e.message for e in reader.errors] == [
        "expected with option 'n' to be an integer, but it was `many`",
        "required option 's' not set",
    ]
    assert bad.value is reader.errors[0] and absent.value is reader.errors[1]
    reader.report(bad.value)  # what the table builder does with a raised error
    assert len(reader.errors) == 2


def test_require_is_quiet_for_a_bad_value() -> None:
    reader = collecting("n = 'many'")
    assert reader.pull_opt_i64("n") is None
    reader.require("n", "add n")
    reader.require("m", "add m")
    assert [e.message for e in reader.errors] == [
        "expected with option 'n' to be an integer, but it was `many`",
        "required option 'm' not set",
    ]


def test_a_missing_key_misspelled_as_a_leftover_is_one_error() -> None:
    reader = collecting("fromat = 'json'")
    reader.know("format")
    reader.require("format", "add format")
    reader.check_leftovers()
    [error] = reader.errors
    assert error.message == "unknown options provided in WITH clause: 'fromat'"
    assert error.hint == "did you mean 'format' instead of 'fromat'?"
    assert error.position is not None and error.position.token == "fromat"
