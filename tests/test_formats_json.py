"""Structured JSON decoding: one table-driven case per rule of reference §3.4.

Every case runs through the public decoder three ways (a single object body, the value inside
a top-level array, and an NDJSON line with newline framing), and each answer is compared with
the exact path's, so the fast path can never disagree with the rules.
"""

from __future__ import annotations

import decimal
from typing import Any

import pyarrow as pa
import pytest

from arroyo_lite.config import TIMESTAMP_COLUMN, BadData
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.formats import make_decoder
from arroyo_lite.formats.json_decoder import DROP_SUMMARY, JsonDecoder
from tests.support.format_tables import col, table

NOW = 1_700_000_000_000_000_000
BAD = object()
D = decimal.Decimal


def plain(batch: pa.RecordBatch) -> dict[str, list[Any]]:
    """Columns as Python lists, timestamps as integers in their unit (no datetime rounding)."""
    out = {}
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if pa.types.is_timestamp(column.type):
            column = column.cast(pa.int64())
        out[name] = column.to_pylist()
    return out


CASES: list[tuple[str, pa.DataType, bytes, Any]] = [
    # integers: numbers, numeric strings, truncation of fractions; nothing else
    ("int", pa.int64(), b"42", 42),
    ("int_negative", pa.int64(), b"-7", -7),
    ("int_from_string", pa.int64(), b'"123"', 123),
    ("int_truncates", pa.int64(), b"1.7", 1),
    ("int_truncates_negative", pa.int64(), b"-1.7", -1),
    ("int_exponent", pa.int64(), b"1e3", 1000),
    ("int_from_float_string", pa.int64(), b'"2.9"', 2),
    ("int_bool_is_bad", pa.int64(), b"true", BAD),
    ("int_word_is_bad", pa.int64(), b'"abc"', BAD),
    ("int_object_is_bad", pa.int64(), b'{"a": 1}', BAD),
    ("int32_overflow_is_bad", pa.int32(), b"5000000000", BAD),
    ("int32", pa.int32(), b"-2147483648", -(2**31)),
    ("uint32_negative_is_bad", pa.uint32(), b"-1", BAD),
    ("uint64_big", pa.uint64(), b"18446744073709551615", 2**64 - 1),
    ("int_null", pa.int64(), b"null", None),
    # floats: numbers or numeric strings
    ("double", pa.float64(), b"1.5", 1.5),
    ("double_from_int", pa.float64(), b"3", 3.0),
    ("double_from_string", pa.float64(), b'"2.25"', 2.25),
    ("double_exponent_string", pa.float64(), b'"1e-3"', 0.001),
    ("double_bool_is_bad", pa.float64(), b"false", BAD),
    ("double_word_is_bad", pa.float64(), b'"x1"', BAD),
    ("float32", pa.float32(), b"0.5", 0.5),
    # TEXT: only JSON strings
    ("text", pa.string(), b'"hello"', "hello"),
    ("text_escapes", pa.string(), b'"caf\\u00e9 \\"q\\"\\n"', 'café "q"\n'),
    ("text_unicode", pa.string(), '"日本"'.encode(), "日本"),
    ("text_number_is_bad", pa.string(), b"1", BAD),
    ("text_bool_is_bad", pa.string(), b"true", BAD),
    ("text_object_is_bad", pa.string(), b'{"a": "b"}', BAD),
    ("text_array_is_bad", pa.string(), b'["a"]', BAD),
    # BOOLEAN: only true/false
    ("bool_true", pa.bool_(), b"true", True),
    ("bool_false", pa.bool_(), b"false", False),
    ("bool_string_is_bad", pa.bool_(), b'"true"', BAD),
    ("bool_number_is_bad", pa.bool_(), b"1", BAD),
    # TIMESTAMP(p): RFC 3339 / ISO 8601 strings, or a raw count in the column's unit
    ("ts_z", pa.timestamp("ns"), b'"2024-01-02T03:04:05Z"', 1704164645 * 10**9),
    ("ts_space_naive", pa.timestamp("ns"), b'"2024-01-02 03:04:05"', 1704164645 * 10**9),
    ("ts_offset", pa.timestamp("ns"), b'"2024-01-02T03:04:05+01:00"', 1704161045 * 10**9),
    ("ts_fraction", pa.timestamp("ns"), b'"2024-01-02T03:04:05.123456789Z"', 1704164645123456789),
    ("ts_date_only", pa.timestamp("ns"), b'"2024-01-02"', 1704153600 * 10**9),
    ("ts_number_is_ns", pa.timestamp("ns"), b"1704164645000000000", 1704164645 * 10**9),
    ("ts3_number_is_ms", pa.timestamp("ms"), b"1704164645123", 1704164645123),
    ("ts3_string_truncates", pa.timestamp("ms"), b'"2024-01-02T03:04:05.123999Z"', 1704164645123),
    ("ts0_string", pa.timestamp("s"), b'"2024-01-02T03:04:05.9"', 1704164645),
    ("ts6_string", pa.timestamp("us"), b'"1970-01-01T00:00:01.000001"', 1_000_001),
    ("ts_garbage_is_bad", pa.timestamp("ns"), b'"yesterday"', BAD),
    ("ts_bool_is_bad", pa.timestamp("ns"), b"true", BAD),
    ("ts_float_is_bad", pa.timestamp("ms"), b"1.5", BAD),
    # DECIMAL: a number or a string
    ("decimal_number", pa.decimal128(10, 2), b"1.25", D("1.25")),
    ("decimal_string", pa.decimal128(10, 2), b'"-3.5"', D("-3.50")),
    ("decimal_int", pa.decimal128(10, 2), b"7", D("7.00")),
    ("decimal_truncates_scale", pa.decimal128(10, 2), b'"1.259"', D("1.25")),
    ("decimal_too_big_is_bad", pa.decimal128(4, 2), b"123.4", BAD),
    ("decimal_word_is_bad", pa.decimal128(10, 2), b'"one"', BAD),
    # BYTEA: base64 text
    ("bytea_base64", pa.binary(), b'"aGVsbG8="', b"hello"),
    ("bytea_not_base64_is_bad", pa.binary(), b'"!!"', BAD),
    ("bytea_number_is_bad", pa.binary(), b"5", BAD),
    # LIST and STRUCT
    ("list", pa.list_(pa.int64()), b'[1, "2", null, 3.9]', [1, 2, None, 3]),
    ("list_empty", pa.list_(pa.string()), b"[]", []),
    ("list_scalar_is_bad", pa.list_(pa.int64()), b"1", BAD),
    ("list_bad_item_is_bad", pa.list_(pa.int64()), b'[1, "x"]', BAD),
    (
        "struct",
        pa.struct([("a", pa.int64()), ("b", pa.string())]),
        b'{"a": "5", "c": true}',
        {"a": 5, "b": None},
    ),
    ("struct_bad_child", pa.struct([("a", pa.int64())]), b'{"a": "x"}', BAD),
    ("struct_scalar_is_bad", pa.struct([("a", pa.int64())]), b"3", BAD),
    (
        "struct_nested_list_ts",
        pa.struct([("ts", pa.list_(pa.timestamp("ms")))]),
        b'{"ts": ["1970-01-01T00:00:01Z", 5]}',
        {"ts": [1000, 5]},
    ),
]


def _bodies(value: bytes) -> list[tuple[str, bytes, bool]]:
    obj = b'{"other": 1, "x": ' + value + b"}"
    return [
        ("object", obj, False),
        ("array", b"[" + obj + b"]", False),
        ("ndjson", obj + b"\n", True),
    ]


@pytest.mark.parametrize(
    ("name", "arrow_type", "value", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_json_value_rules(name: str, arrow_type: pa.DataType, value: bytes, expected: Any) -> None:
    for shape, body, newline in _bodies(value):
        config = table(col("x", arrow_type), col("y", pa.int64()), newline=newline)
        decoder = make_decoder(config)
        if expected is BAD:
            with pytest.raises(FatalSourceError) as info:
                decoder.decode(body, NOW)
            assert info.value.message.startswith("JSON does not match schema: field 'x"), shape
            # Details describe the value's JSON type and size, never its content.
            assert value.decode() not in info.value.message or len(value) < 2
            continue
        result = decoder.decode(body, NOW)
        assert result.batch is not None, shape
        assert result.batch.schema == config.output_schema()
        got = plain(result.batch)
        if pa.types.is_struct(arrow_type) and pa.types.is_list(arrow_type[0].type):
            stamps = result.batch.column("x").field("ts").flatten().cast(pa.int64())
            assert [{"ts": stamps.to_pylist()}] == [expected], shape
        else:
            assert got["x"] == [expected], shape
        assert got["y"] == [None]
        assert got[TIMESTAMP_COLUMN] == [NOW]


@pytest.mark.parametrize(
    ("name", "arrow_type", "value", "expected"),
    [c for c in CASES if c[3] is not BAD],
    ids=[c[0] for c in CASES if c[3] is not BAD],
)
def test_fast_path_agrees_with_exact_path(
    name: str, arrow_type: pa.DataType, value: bytes, expected: Any
) -> None:
    config = table(col("x", arrow_type), newline=True)
    decoder = make_decoder(config)
    assert isinstance(decoder, JsonDecoder)
    body = b'{"x": ' + value + b'}\n{"x": ' + value + b"}\n"
    fast = decoder._decode_fast(body, NOW)
    exact = decoder._decode_exactly(body, NOW)
    if fast is None:
        return  # a rule pyarrow does not implement: the exact path decides, nothing to compare
    assert fast.batch is not None and exact.batch is not None
    assert fast.batch.equals(exact.batch)


def test_json_column_keeps_compact_text() -> None:
    config = table(col("id", pa.int64()), col("j", pa.string(), is_json=True), newline=True)
    body = b'{"id": 1, "j": {"a": [1, 2.5, "x"],  "b": null}}\n{"id": 2, "j": null}\n{"id": 3}\n'
    body += b'{"id": 4, "j": "text"}\n{"id": 5, "j": 12}\n'
    result = make_decoder(config).decode(body, NOW)
    assert result.batch is not None
    assert result.batch.schema.field("j").metadata == {b"ARROW:extension:name": b"arroyo.json"}
    assert result.batch.column("j").to_pylist() == [
        '{"a":[1,2.5,"x"],"b":null}',
        "null",
        None,
        '"text"',
        "12",
    ]


def test_top_level_array_is_one_row_per_element() -> None:
    config = table(col("id", pa.int64()), col("name", pa.string()))
    body = b'  [\n {"id": 1, "name": "a"},\n {"id": 2}\n, {"name": "c", "extra": [1]}]\n'
    result = make_decoder(config).decode(body, NOW)
    assert result.rows == 3
    assert result.batch is not None
    assert plain(result.batch)["id"] == [1, 2, None]
    assert plain(result.batch)["name"] == ["a", None, "c"]


def test_empty_array_gives_no_rows() -> None:
    result = make_decoder(table(col("id", pa.int64()))).decode(b"[]", NOW)
    assert result.batch is None and result.rows == 0 and result.dropped == 0


def test_pretty_printed_object_is_one_row() -> None:
    body = b'{\n  "id": 7,\n  "tags": [\n    "a",\n    "b"\n  ]\n}\n'
    config = table(col("id", pa.int64()), col("tags", pa.list_(pa.string())))
    result = make_decoder(config).decode(body, NOW)
    assert result.batch is not None
    assert plain(result.batch)["tags"] == [["a", "b"]]


def test_names_are_case_sensitive_and_extra_keys_ignored() -> None:
    config = table(col("Id", pa.int64()), col("id", pa.int64()))
    result = make_decoder(config).decode(b'{"ID": 1, "id": 2, "zzz": {"deep": [1]}}', NOW)
    assert result.batch is not None
    assert plain(result.batch)["Id"] == [None]
    assert plain(result.batch)["id"] == [2]


def test_ndjson_with_crlf_blank_lines_and_max_length() -> None:
    config = table(col("id", pa.int64()), newline=True, max_line_length=9)
    body = b'{"id": 1}\r\n\n{"id":22}XXXXXXX\n   \n{"id": 3}'
    result = make_decoder(config).decode(body, NOW)
    assert result.batch is not None
    assert plain(result.batch)["id"] == [1, 22, 3]


def test_unframed_ndjson_body_gives_every_object() -> None:
    config = table(col("id", pa.int64()))
    result = make_decoder(config).decode(b'{"id": 1}\n{"id": 2} {"id": 3}', NOW)
    assert result.batch is not None and plain(result.batch)["id"] == [1, 2, 3]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"id": 1', "invalid JSON: "),
        (b"not json", "invalid JSON: "),
        (b'{"id": "x"}', "JSON does not match schema: field 'id': expected Int64, got string"),
        (b"5", "JSON does not match schema: expected { got number"),
        (b'["a"]', "JSON does not match schema: expected { got string"),
        (b"[null]", "JSON does not match schema: expected { got null"),
        (b'{"id": 1, "n": null}', "field 'n': null value for non-nullable field (expected Utf8)"),
        (b'{"id": 1}', "field 'n': required field is missing (expected Utf8)"),
        (b'{"id": 1, "n": "\xff"}', "invalid JSON: "),
    ],
)
def test_bad_data_fail(body: bytes, message: str) -> None:
    config = table(col("id", pa.int64()), col("n", pa.string(), nullable=False))
    with pytest.raises(FatalSourceError) as info:
        make_decoder(config).decode(body, NOW)
    assert message in info.value.message


def test_bad_data_drop_keeps_good_rows_and_counts_bad_ones() -> None:
    config = table(
        col("id", pa.int64(), nullable=False),
        col("n", pa.string()),
        newline=True,
        bad_data=BadData.DROP,
    )
    body = b"\n".join(
        [
            b'{"id": 1, "n": "a"}',
            b'{"id": "oops"}',
            b"{broken",
            b'{"n": "no id"}',
            b'[{"id": 2}, 17, {"id": 3, "n": 4}, {"id": 4}]',
            b'{"id": 5, "n": "e"}',
        ]
    )
    result = make_decoder(config).decode(body, NOW)
    assert result.batch is not None
    assert plain(result.batch)["id"] == [1, 2, 4, 5]
    assert result.rows == 4
    assert result.dropped == 5
    assert result.errors[0] == DROP_SUMMARY
    assert len(result.errors) == 6
    assert any(e.startswith("invalid JSON: ") for e in result.errors)
    assert "field 'id': required field is missing (expected Int64)" in result.errors
    # the raw values never appear in the details
    assert not any("oops" in e or "no id" in e for e in result.errors)


def test_bad_data_drop_everything_bad_gives_no_batch() -> None:
    config = table(col("id", pa.int64()), bad_data=BadData.DROP)
    result = make_decoder(config).decode(b"[1, 2, 3]", NOW)
    assert result.batch is None and result.rows == 0 and result.dropped == 3


def test_error_messages_are_bounded() -> None:
    config = table(col("id", pa.int64()))
    with pytest.raises(FatalSourceError) as info:
        make_decoder(config).decode(b'{"id": 1, "junk": "' + b"x" * 100_000 + b"", NOW)
    assert len(info.value.message) <= 500


def test_typical_api_bodies_take_the_native_path() -> None:
    config = table(
        col("id", pa.int64(), nullable=False),
        col("name", pa.string()),
        col("price", pa.float64()),
        col("ok", pa.bool_()),
        col("at", pa.timestamp("ms")),
        col("tags", pa.list_(pa.string())),
        col("geo", pa.struct([("lat", pa.float64()), ("lon", pa.float64())])),
    )
    row = (
        b'{"id": %d, "name": "n", "price": 1.5, "ok": true, "at": "2024-05-01T10:00:00Z",'
        b' "tags": ["a"], "geo": {"lat": 1, "lon": 2}, "ignored": {"x": [1, 2]}}'
    )
    body = b"[" + b",\n".join(row % i for i in range(1000)) + b"]"
    decoder = make_decoder(config)
    assert isinstance(decoder, JsonDecoder)
    result = decoder.decode(body, NOW)
    assert result.rows == 1000
    assert decoder.fast_bodies == 1 and decoder.slow_bodies == 0
    assert result.batch is not None
    assert result.batch.equals(decoder._decode_exactly(body, NOW).batch)


@pytest.mark.parametrize("newline", [False, True])
def test_epoch_counts_and_numeric_strings_stay_native(newline: bool) -> None:
    config = table(
        col("at", pa.timestamp("ms")),
        col("n", pa.int64()),
        col("f", pa.float64()),
        newline=newline,
    )
    row = b'{"at": %d, "n": "%d", "f": "%d.5"}'
    rows = [row % (1_700_000_000_000 + i, i, i) for i in range(50)]
    body = b"\n".join(rows) if newline else b"[" + b",".join(rows) + b"]"
    decoder = make_decoder(config)
    assert isinstance(decoder, JsonDecoder)
    for _ in range(2):
        result = decoder.decode(body, NOW)
        assert result.batch is not None
        got = plain(result.batch)
        assert got["at"] == [1_700_000_000_000 + i for i in range(50)]
        assert got["n"] == list(range(50))
        assert got["f"] == [i + 0.5 for i in range(50)]
    assert decoder.slow_bodies == 0 and decoder.fast_bodies == 2


@pytest.mark.parametrize(
    ("arrow_type", "values", "expected"),
    [
        # mixed kinds in one body: the exact path, same rules
        (pa.timestamp("ms"), [b'"2024-01-02T00:00:00Z"', b"1000"], [1704153600000, 1000]),
        (pa.int64(), [b'"7"', b"8", b'"9.9"'], [7, 8, 9]),
        (pa.float64(), [b'"nan"'], BAD),
        (pa.int64(), [b'" 5"'], BAD),
    ],
)
def test_mixed_kinds_fall_back_to_the_exact_rules(
    arrow_type: pa.DataType, values: list[bytes], expected: Any
) -> None:
    config = table(col("x", arrow_type), newline=True)
    body = b"\n".join(b'{"x": ' + v + b"}" for v in values)
    decoder = make_decoder(config)
    if expected is BAD:
        with pytest.raises(FatalSourceError, match="JSON does not match schema"):
            decoder.decode(body, NOW)
        return
    result = decoder.decode(body, NOW)
    assert result.batch is not None
    assert plain(result.batch)["x"] == expected


def test_adapted_plan_adapts_back() -> None:
    config = table(col("at", pa.timestamp("s")), newline=True)
    decoder = make_decoder(config)
    assert isinstance(decoder, JsonDecoder)
    first = decoder._decode_fast(b'{"at": 5}\n{"at": 6}', NOW)
    second = decoder._decode_fast(b'{"at": "1970-01-01T00:00:07Z"}', NOW)
    assert first is not None and second is not None
    assert first.batch is not None and second.batch is not None
    assert plain(first.batch)["at"] == [5, 6]
    assert plain(second.batch)["at"] == [7]


def test_small_bodies_take_the_exact_path_directly() -> None:
    decoder = make_decoder(table(col("id", pa.int64())))
    assert isinstance(decoder, JsonDecoder)
    result = decoder.decode(b'{"id": 1}', NOW)
    assert result.batch is not None and plain(result.batch)["id"] == [1]
    assert decoder.small_bodies == 1 and decoder.fast_bodies == 0


@pytest.mark.parametrize(
    ("body", "newline"),
    [
        (b'{"id": 1, "j": {"a": [1, 2.5]}}\n\n{"id": 2, "j": null}\n{"id": 3}\n', True),
        (b'[{"id": 1, "j": {"a": [1, 2.5]}},{"id": 2, "j": null},{"id": 3}]', False),
        (b'[\n{"id": 1, "j": {"a": [1, 2.5]}},\n{"id": 2, "j": null},\n{"id": 3}\n]', False),
        (b'[\n  {\n    "id": 1,\n    "j": {"a": [1, 2.5]}\n  },\n  {"id": 2, "j": null},\n'
         b'  {"id": 3}\n]', False),
    ],
    ids=["ndjson", "compact array", "array per line", "pretty array"],
)
def test_json_columns_on_the_native_path(body: bytes, newline: bool) -> None:
    config = table(col("id", pa.int64()), col("j", pa.string(), is_json=True), newline=newline)
    decoder = make_decoder(config)
    assert isinstance(decoder, JsonDecoder)
    fast = decoder._decode_fast(body, NOW)
    assert fast is not None and fast.batch is not None
    assert fast.batch.column("j").to_pylist() == ['{"a":[1,2.5]}', "null", None]
    exact = decoder._decode_exactly(body, NOW)
    assert exact.batch is not None and exact.batch.equals(fast.batch)


def test_json_column_with_two_objects_on_a_line_is_still_right() -> None:
    config = table(col("id", pa.int64()), col("j", pa.string(), is_json=True), newline=True)
    body = b'{"id": 1, "j": 1} {"id": 2, "j": [2]}\n{"id": 3, "j": "x"}\n'
    result = make_decoder(config).decode(body + b" " * 2000, NOW)
    assert result.batch is not None
    assert result.batch.column("j").to_pylist() == ["1", "[2]", '"x"']


@pytest.mark.parametrize(
    ("body", "newline"),
    [
        (b'null\n{"id": 1}\n', True),
        (b'  \n null\n{"id": 1}\n', True),
        (b'{"id": 1}\nnull\n', True),
        (b'{"id": 1} null', False),
        (b"null", False),
        (b'[null, {"id": 1}]', False),
        (b'[{"id": 1}, null]', False),
    ],
)
def test_top_level_null_is_bad_data_on_every_path(body: bytes, newline: bool) -> None:
    # pyarrow 26 crashes on a leading top-level null and reads a later one as a row of
    # nulls; neither may reach the user. Padding takes the body past the small-body cut.
    padded = body + b" " * 2000
    with pytest.raises(FatalSourceError, match="expected { got null"):
        make_decoder(table(col("id", pa.int64()), newline=newline)).decode(padded, NOW)
    dropping = table(col("id", pa.int64()), newline=newline, bad_data=BadData.DROP)
    result = make_decoder(dropping).decode(padded, NOW)
    assert result.dropped == 1
    assert result.rows == body.count(b'"id"')
    if result.rows:
        assert result.batch is not None and plain(result.batch)["id"] == [1]
