"""``records.path`` read in pieces (:mod:`arroyo_lite.formats.json_pieces`): the pieces' records
are exactly the array's, and every body built to break a cut, to end the array inside a piece
or to imitate the read's proof decodes as the exact path decodes it."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arroyo_lite.errors import FatalSourceError
from arroyo_lite.formats import make_decoder
from arroyo_lite.formats.json_fast import _records_span, _span_verified
from arroyo_lite.formats.json_pieces import read_pieces
from arroyo_lite.formats.records import RecordPath
from arroyo_lite.sql import compile_sql

CONFIG = compile_sql(
    "CREATE TABLE t (id BIGINT, name TEXT, tags TEXT[], props STRUCT<sig INT, kind TEXT>) "
    "WITH (connector = 'polling_http', endpoint = 'http://127.0.0.1:1/', format = 'json');",
    env={},
).tables[0]
SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64()),
        pa.field("name", pa.string()),
        pa.field("tags", pa.list_(pa.string())),
        pa.field("props", pa.struct([pa.field("sig", pa.int32()), pa.field("kind", pa.string())])),
    ]
)
DATA = RecordPath.parse("$.data")
#: Names that put a cut candidate, a bracket or an escape inside a string.
TRICKY = ["},{", '}, {"id": 1}', '"},{"', "]", "],[", "\\", '\\"},{\\"', "null]", "a\nb", "é"]


def record(i: int, name: str = "") -> dict[str, Any]:
    return {"id": i, "name": name or f"n{i}", "tags": ["a", name], "props": {"sig": i % 7}}


def expected_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return pa.Table.from_pylist(records, SCHEMA).to_pylist()


def pieces_of(body: bytes, piece_size: int) -> pa.Table | None:
    """What :func:`read_pieces` gives for ``body``'s searched span, once the span is proven as
    the decoder proves it (``None`` also when pyarrow rejects a line)."""
    span = _records_span(body, DATA)
    assert span is not None
    if not _span_verified(body, span, DATA):
        return None
    try:
        return read_pieces(body, span[0], span[1], SCHEMA, piece_size)
    except pa.ArrowInvalid:
        return None


def decoded(body: bytes) -> tuple[Any, Any]:
    """The decoder's answer for ``body`` and the exact path's, as rows or the error text."""
    decoder: Any = make_decoder(CONFIG, records=DATA)

    def answer(decode: Any) -> Any:
        try:
            result = decode(body, 0)
        except FatalSourceError as e:
            return ("error", str(e))
        if result.batch is None:
            return [], result.dropped
        return result.batch.drop_columns(["_timestamp"]).to_pylist(), result.dropped

    return answer(decoder.decode), answer(decoder._decode_records_exactly)


@pytest.mark.parametrize(
    "separators", [(",", ":"), (", ", ": "), None], ids=["compact", "spaced", "indented"]
)
def test_many_pieces_give_the_array_in_order(separators: tuple[str, str] | None) -> None:
    records = [record(i) for i in range(300)]
    indent = 2 if separators is None else None
    body = json.dumps({"meta": {"n": 300}, "data": records, "next": None}, indent=indent,
                      separators=separators).encode()  # fmt: skip
    table = pieces_of(body, 512)
    assert table is not None
    assert table.column(0).num_chunks > 10, "cut into many pieces"
    assert table.to_pylist() == expected_rows(records)


def test_an_empty_array_and_a_single_record() -> None:
    assert pieces_of(b'{"data": [ ], "x": [{"a": 1}]}', 64) is None  # the end goes past
    body = b'{"data": [ \n ]}'
    empty = read_pieces(body, body.index(b"["), body.index(b"]") + 1, SCHEMA, 64)
    assert empty is not None and empty.num_rows == 0 and empty.schema == SCHEMA
    one = pieces_of(json.dumps({"data": [record(1)]}).encode(), 64)
    assert one is not None and one.to_pylist() == expected_rows([record(1)])


@pytest.mark.parametrize("name", TRICKY)
def test_cut_candidates_inside_strings(name: str) -> None:
    records = [record(i, name if i % 3 == 0 else "") for i in range(200)]
    body = json.dumps({"data": records}).encode()
    table = pieces_of(body, 256)
    assert table is None or table.to_pylist() == expected_rows(records)
    fast, exact = decoded(body + b" " * 2000)
    assert fast == exact and fast[0] == expected_rows(records)


def test_an_array_of_objects_after_the_records_is_not_read_as_records() -> None:
    # JSON:API: the searched end is that of "included", so the array ends inside a piece.
    records = [record(i) for i in range(100)]
    body = json.dumps({"data": records, "included": [record(-1), record(-2)]}).encode()
    for size in (256, 1 << 20):
        assert pieces_of(body, size) is None
    fast, exact = decoded(body)
    assert fast == exact and fast[0] == expected_rows(records)


def test_an_invalid_body_that_imitates_the_proof_is_invalid_json() -> None:
    # '[records],<a nonce>],"k":[[more' reads as r = [records, nonce] in a piece's line: only
    # a nonce drawn after the body arrived tells it apart (this one is all null).
    fake = "[" + ",".join(["null"] * 32) + "]"
    records = ",".join(json.dumps(record(i)) for i in range(40))
    body = '{"data":[' + records + "]," + fake + '],"k":[[' + json.dumps(record(-1)) + "]}"
    assert pieces_of(body.encode(), 256) is None
    fast, exact = decoded(body.encode())
    assert fast == exact and fast[0] == "error" and "invalid JSON" in fast[1]


@pytest.mark.parametrize(
    ("element", "bad"), [("null", True), ("{}", False), ("7", True), ('"x"', True), ("[]", True)]
)
def test_elements_that_are_not_records(element: str, bad: bool) -> None:
    records = [json.dumps(record(i)) for i in range(60)]
    records.insert(30, element)
    body = ('{"data":[' + ",".join(records) + '],"next":null}').encode()
    fast, exact = decoded(body)
    assert fast == exact
    assert (fast[0] == "error") is bad


def test_a_numeric_string_column_is_adapted_in_pieces() -> None:
    records = [{"id": str(i), "name": "x" * 40} for i in range(60)]
    body = json.dumps({"data": records}).encode()
    span = _records_span(body, DATA)
    assert span is not None
    with pytest.raises(pa.ArrowInvalid, match="changed from number to string"):
        read_pieces(body, span[0], span[1], SCHEMA, 256)
    decoder: Any = make_decoder(CONFIG, records=DATA)
    result = decoder.decode(body, 0)
    assert result.batch.column("id").to_pylist() == list(range(60))
    assert decoder.fast_bodies == 1 and decoder.slow_bodies == 0


@pytest.mark.parametrize("tricky", [False, True], ids=["plain", "tricky names"])
def test_a_big_body_through_the_decoder(tricky: bool) -> None:
    records = [
        record(i, TRICKY[i % len(TRICKY)] if tricky and i % 5 == 0 else "") for i in range(40_000)
    ]
    body = json.dumps({"data": records, "cursor": "c"}, separators=(",", ":")).encode()
    assert len(body) > 2 << 20  # several pieces of the default size
    if not tricky:
        table = pieces_of(body, 1 << 20)
        assert table is not None and table.column(0).num_chunks >= 2
    decoder: Any = make_decoder(CONFIG, records=DATA)
    result = decoder.decode(body, 0)
    assert decoder.fast_bodies == 1 and decoder.slow_bodies == 0
    assert result.batch.drop_columns(["_timestamp"]).to_pylist() == expected_rows(records)


names = st.one_of(st.sampled_from(TRICKY), st.text(alphabet='{}[],:" \\\nab\t', max_size=8))
separators = st.sampled_from([",", ", ", ",\n  ", " ,", ",\t"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=st.lists(names, min_size=0, max_size=40),
    separator=separators,
    after=st.sampled_from(["", ',"included":[{"id":-1}]', ',"next":null', ',"k":[[{"id":-2}]]']),
    piece_size=st.integers(16, 400),
)
def test_pieces_never_differ_from_the_exact_path(
    names: list[str], separator: str, after: str, piece_size: int
) -> None:
    records = [record(i, name) for i, name in enumerate(names)]
    array = "[" + separator.join(orjson.dumps(r).decode() for r in records) + "]"
    body = ('{"meta":{"data":[{"id":0}]},"data":' + array + after + "}").encode()
    table = pieces_of(body, piece_size)
    assert table is None or table.to_pylist() == expected_rows(records)
    fast, exact = decoded(body + b" " * 1024)
    assert fast == exact


@pytest.mark.parametrize("pad", [100, 70_000], ids=["small rest", "large rest"])
@pytest.mark.parametrize(
    "decoy",
    [
        {},
        {"note": '"data": [{"id": -1}]'},  # the key inside a string first
        {"meta": {"data": [record(-1)]}},  # a nested decoy first
        {"included": [record(-1)]},  # an array of objects after the records
    ],
    ids=["plain", "key in a string", "nested decoy", "objects after"],
)
def test_the_span_is_proven_whatever_is_left_of_the_body(decoy: dict[str, Any], pad: int) -> None:
    records = [record(i) for i in range(200)]
    value = {"pad": "p" * pad, **decoy, "data": records}
    if "included" in decoy:
        value = {"pad": "p" * pad, "data": records, **decoy}
    body = json.dumps(value).encode()
    table = pieces_of(body, 512)
    if not decoy:
        assert table is not None and table.to_pylist() == expected_rows(records)
    assert table is None or table.to_pylist() == expected_rows(records)
    fast, exact = decoded(body)
    assert fast == exact and fast[0] == expected_rows(records)


def test_records_with_many_nested_objects_are_still_cut() -> None:
    # Each record holds 100 '},' that end nested objects: a search from some offsets gives up
    # before the record's own end, and that piece grows to the next offset instead.
    records = [{**record(i), **{f"x{j}": {} for j in range(100)}} for i in range(30)]
    body = json.dumps({"data": records}, separators=(",", ":")).encode()
    table = pieces_of(body, 300)
    assert table is not None
    assert 2 <= table.column(0).num_chunks < len(body) // 300
    assert table.to_pylist() == expected_rows(records)


def test_very_uneven_pieces_are_read_as_one_line() -> None:
    # Short records first, then records of 200 nested objects, in which a search from most
    # offsets gives up: padding each line to the longest piece would more than double the
    # copy, so the array is read as one line instead.
    short = [record(i) for i in range(100)]
    long = [{**record(i), **{f"x{j}": {} for j in range(200)}} for i in range(100, 106)]
    body = json.dumps({"data": short + long}, separators=(",", ":")).encode()
    table = pieces_of(body, 300)
    assert table is not None and table.column(0).num_chunks == 1
    assert table.to_pylist() == expected_rows(short + long)
