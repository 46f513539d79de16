"""Framing and the non-parsing formats: raw_string, raw_bytes, unstructured JSON."""

from __future__ import annotations

import pyarrow as pa
import pytest

from arroyo_lite.config import TIMESTAMP_COLUMN, Format, FramingSpec
from arroyo_lite.formats import make_decoder, split_messages
from tests.support.format_tables import col, raw_bytes, raw_string, table

NOW = 1_700_000_000_123_456_789


@pytest.mark.parametrize(
    ("body", "framing", "expected"),
    [
        (b"", None, []),
        (b"", FramingSpec(), []),
        (b"one block", None, [b"one block"]),
        (b"a\nb\n", None, [b"a\nb\n"]),
        (b"one block", FramingSpec(), [b"one block"]),
        (b"one\ntwo\nthree", FramingSpec(), [b"one", b"two", b"three"]),
        (b"one\ntwo\nthree\n", FramingSpec(), [b"one", b"two", b"three"]),
        (b"a\n\nb\n", FramingSpec(), [b"a", b"", b"b"]),
        (b"\n", FramingSpec(), [b""]),
        (b"\n\n", FramingSpec(), [b"", b""]),
        (b"a\r\nb\r\n", FramingSpec(), [b"a\r", b"b\r"]),
        (
            b"one block\ntwo block\nwhole",
            FramingSpec(max_line_length=5),
            [b"one b", b"two b", b"whole"],
        ),
        (b"abc\n", FramingSpec(max_line_length=0), [b""]),
    ],
)
def test_framing(body: bytes, framing: FramingSpec | None, expected: list[bytes]) -> None:
    assert split_messages(body, framing).to_pylist() == expected


def test_raw_string_whole_body_is_one_row() -> None:
    result = make_decoder(raw_string()).decode(b"hello\nworld", NOW)
    assert result.rows == 1 and result.dropped == 0 and result.errors == ()
    assert result.batch is not None
    assert result.batch.schema == raw_string().output_schema()
    assert result.batch.column("value").to_pylist() == ["hello\nworld"]
    assert result.batch.column(TIMESTAMP_COLUMN).cast(pa.int64()).to_pylist() == [NOW]


def test_raw_string_newline_framing_one_row_per_line() -> None:
    result = make_decoder(raw_string(newline=True)).decode(b"a\r\n\nb\n", NOW)
    assert result.batch is not None
    assert result.batch.column("value").to_pylist() == ["a\r", "", "b"]
    stamps = result.batch.column(TIMESTAMP_COLUMN).cast(pa.int64()).to_pylist()
    assert stamps == [NOW] * 3


def test_raw_string_is_lossy_utf8() -> None:
    body = b"ok \xff\xfe end\n\xe2\x82\xac\n\xe2\x82"
    result = make_decoder(raw_string(newline=True)).decode(body, NOW)
    assert result.batch is not None
    assert result.batch.column("value").to_pylist() == [
        "ok \ufffd\ufffd end",
        "\u20ac",
        "\ufffd",
    ]


def test_max_line_length_cutting_a_character_is_lossy() -> None:
    result = make_decoder(raw_string(newline=True, max_line_length=2)).decode("€uro".encode(), NOW)
    assert result.batch is not None
    assert result.batch.column("value").to_pylist() == ["\ufffd"]


def test_empty_body_gives_no_batch() -> None:
    result = make_decoder(raw_string()).decode(b"", NOW)
    assert result.batch is None and result.rows == 0 and result.dropped == 0


def test_raw_bytes_keeps_bytes() -> None:
    body = bytes(range(256))
    result = make_decoder(raw_bytes()).decode(body, NOW)
    assert result.batch is not None
    assert result.batch.schema.field("value").type == pa.binary()
    assert result.batch.column("value").to_pylist() == [body]


def test_raw_bytes_newline_framing() -> None:
    result = make_decoder(raw_bytes(newline=True)).decode(b"\x00\xff\n\x01\n", NOW)
    assert result.batch is not None
    assert result.batch.column("value").to_pylist() == [b"\x00\xff", b"\x01"]


def test_unstructured_json_keeps_text_without_validation() -> None:
    config = table(col("value", pa.string(), is_json=True), unstructured=True, newline=True)
    result = make_decoder(config).decode(b'{"a": 1}\nnot json at all\n[1,\n', NOW)
    assert result.batch is not None
    assert result.batch.schema == config.output_schema()
    assert result.batch.schema.field("value").metadata == {b"ARROW:extension:name": b"arroyo.json"}
    assert result.batch.column("value").to_pylist() == ['{"a": 1}', "not json at all", "[1,"]


def test_raw_string_virtual_column() -> None:
    config = table(
        col("value", pa.string(), sql_type="TEXT"),
        col("n", pa.int64(), generated="length(value)"),
        col("upper", pa.string(), generated="upper(value)"),
        fmt=Format.RAW_STRING,
        newline=True,
    )
    result = make_decoder(config).decode(b"ab\ncde\n", NOW)
    assert result.batch is not None
    assert result.batch.schema == config.output_schema()
    assert result.batch.column("n").to_pylist() == [2, 3]
    assert result.batch.column("upper").to_pylist() == ["AB", "CDE"]


@pytest.mark.parametrize(
    ("config", "needle"),
    [
        (table(col("value", pa.string()), fmt=Format.RAW_BYTES), "`value` of type BYTEA"),
        (table(col("v", pa.binary()), fmt=Format.RAW_BYTES), "`value` of type BYTEA"),
        (
            table(col("value", pa.string()), col("x", pa.int64()), fmt=Format.RAW_STRING),
            "`value` of type TEXT",
        ),
    ],
)
def test_bad_raw_schema_is_a_clear_error(config: object, needle: str) -> None:
    from arroyo_lite.errors import ConnectorError

    with pytest.raises(ConnectorError, match=needle):
        make_decoder(config)  # type: ignore[arg-type]
