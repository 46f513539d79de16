"""``cbor_to_json``: RFC 8949 Appendix A examples, the transcoding rules, and bad input -> NULL."""

from __future__ import annotations

import duckdb
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arroyo_lite.demo.streams import cbor_encode
from arroyo_lite.formats.cbor import cbor_to_json, register

APPENDIX_A = [
    ("00", "0"), ("17", "23"), ("1818", "24"), ("1903e8", "1000"),
    ("1b000000e8d4a51000", "1000000000000"), ("20", "-1"), ("3903e7", "-1000"),
    ("f93c00", "1.0"), ("fb3ff199999999999a", "1.1"), ("fa47c35000", "100000.0"),
    ("f4", "false"), ("f5", "true"), ("f6", "null"), ("f7", "null"),
    ("6161", '"a"'), ("62c3bc", '"\u00fc"'), ("80", "[]"), ("83010203", "[1,2,3]"),
    ("a201020304", '{"1":2,"3":4}'), ("a26161016162820203", '{"a":1,"b":[2,3]}'),
    ("c074323031332d30332d32315432303a30343a30305a", '"2013-03-21T20:04:00Z"'),  # a tag
    ("d82a4401020304", "[1,2,3,4]"),  # tag 42 (a CID) around bytes: bytes become numbers
    ("7f657374726561646d696e67ff", '"streaming"'),
    ("9f018202039f0405ffff", "[1,[2,3],[4,5]]"),
    ("bf61610161629f0203ffff", '{"a":1,"b":[2,3]}'),
]  # fmt: skip


@pytest.mark.parametrize(("hex_", "expected"), APPENDIX_A)
def test_rfc_8949_examples(hex_: str, expected: str) -> None:
    assert cbor_to_json(bytes.fromhex(hex_)) == expected


@pytest.mark.parametrize(
    "hex_",
    ["", "ff", "18", "6261", "f97e00", "f97c00", "a1f601", "0000", "1c", "5f6161ff"],
    ids=[
        "empty",
        "break",
        "truncated-int",
        "truncated-text",
        "nan",
        "inf",
        "null-key",
        "trailing",
        "reserved",
        "text-chunk-in-bytes",
    ],  # fmt: skip
)
def test_what_json_cannot_hold_is_null(hex_: str) -> None:
    assert cbor_to_json(bytes.fromhex(hex_)) is None


def test_deep_nesting_is_null_not_a_crash() -> None:
    assert cbor_to_json(b"\x81" * 10_000 + b"\x00") is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=20,
)  # fmt: skip


@settings(max_examples=60, deadline=None)
@given(json_values)
def test_round_trip_of_json_values(value: object) -> None:
    import orjson

    assert cbor_to_json(cbor_encode(value)) == orjson.dumps(value).decode()


def test_sql_function_on_every_connection_and_cursor() -> None:
    con = duckdb.connect()
    register(con)
    blob = cbor_encode({"info": {"post": {"text": "hi"}}})
    assert con.execute("SELECT cbor_to_json(?::BLOB)", [blob]).fetchone() == (
        '{"info":{"post":{"text":"hi"}}}',
    )
    assert con.cursor().execute(
        "SELECT cbor_to_json(NULL), cbor_to_json('\\xFF'::BLOB)"
    ).fetchone() == (None, None)
