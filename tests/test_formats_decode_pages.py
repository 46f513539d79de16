"""Several pages decoded together (``Decoder.decode_pages``; for JSON arrays one native read
of all of them, ``FastJsonReader.read_arrays``) give exactly what decoding each page by
itself gives: the same rows, each page's own ``_timestamp``, the same dropped records and
errors, a failing page's error in its place and the other pages decoded."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pyarrow as pa
import pytest

from arroyo_lite.config import BadData
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.formats import make_decoder
from arroyo_lite.formats.json_decoder import JsonDecoder
from arroyo_lite.formats.result import Decoder, DecodeResult
from tests.support.format_tables import col, table

COLUMNS = (
    col("id", pa.int64(), nullable=False),
    col("name", pa.string()),
    col("value", pa.float64()),
    col("created_at", pa.timestamp("us")),
    col("tags", pa.list_(pa.string())),
)


def page(start: int, count: int = 40, separators: tuple[str, str] = (", ", ": ")) -> bytes:
    """A JSON array of ``count`` records (over 1 KiB, so not sent to the exact path whole)."""
    records = [
        {
            "id": i,
            "name": f"item-{i}",
            "value": i / 2,
            "created_at": "2026-12-01T12:00:00Z",
            "tags": ["a", "b"],
        }
        for i in range(start, start + count)
    ]
    return json.dumps(records, separators=separators).encode()


def assert_same(bodies: list[bytes], bad_data: BadData = BadData.FAIL, **config: Any) -> list[Any]:
    """decode_pages on a fresh decoder == decode of each body alone on another fresh one."""
    made = dataclasses.replace(table(*COLUMNS, bad_data=bad_data), **config)
    stamps = [1_000 + n for n in range(len(bodies))]
    together = make_decoder(made).decode_pages(bodies, stamps)
    # The base class's decode_pages: decode() of each body by itself, errors in place.
    alone = Decoder.decode_pages(make_decoder(made), bodies, stamps)
    assert len(together) == len(alone) == len(bodies)
    for got, want in zip(together, alone, strict=True):
        assert type(got) is type(want)
        if isinstance(want, FatalSourceError):
            assert got.message == want.message
            continue
        assert isinstance(got, DecodeResult)
        assert (got.rows, got.dropped, got.errors) == (want.rows, want.dropped, want.errors)
        if want.batch is None:
            assert got.batch is None
        else:
            assert got.batch is not None and got.batch.equals(want.batch)
            assert got.batch.schema == want.batch.schema
    return together


def test_array_pages_are_read_in_one_native_read_with_each_pages_timestamp() -> None:
    bodies = [page(0), page(40), page(80, 10)]
    decoder = make_decoder(table(*COLUMNS))
    assert isinstance(decoder, JsonDecoder)
    results = decoder.decode_pages(bodies, [10, 20, 30])
    assert decoder.fast_bodies == 3 and decoder.slow_bodies == 0
    assert [r.rows for r in results] == [40, 40, 10]
    ids = [r.batch.column("id").to_pylist() for r in results]
    assert ids == [list(range(0, 40)), list(range(40, 80)), list(range(80, 90))]
    stamps = [set(r.batch.column("_timestamp").cast(pa.int64()).to_pylist()) for r in results]
    assert stamps == [{10}, {20}, {30}]
    read = decoder.fast.read_arrays(bodies)
    assert read is not None and read[1] == [40, 40, 10]
    assert_same(bodies)


@pytest.mark.parametrize(
    "separators", [(", ", ": "), (",", ":"), (",\n", ": ")], ids=["spaced", "compact", "lines"]
)
def test_every_separator_style(separators: tuple[str, str]) -> None:
    assert_same([page(0, separators=separators), page(40, separators=separators)])


def test_pages_spelled_differently_are_read_together() -> None:
    pretty = json.dumps(json.loads(page(80)), indent=2).encode()
    bodies = [page(0), page(40, separators=(",", ":")), b"\n " + pretty + b" \r\n"]
    decoder = make_decoder(table(*COLUMNS))
    assert isinstance(decoder, JsonDecoder)
    read = decoder.fast.read_arrays(bodies)
    assert read is not None and read[1] == [40, 40, 40]
    assert_same(bodies)


def test_very_uneven_pages_are_each_decoded_alone() -> None:
    bodies = [page(0, 200), page(200, 10), page(210, 10)]
    decoder = make_decoder(table(*COLUMNS))
    assert isinstance(decoder, JsonDecoder)
    assert decoder.fast.read_arrays(bodies) is None
    assert_same(bodies)


def test_a_bad_record_on_one_page_fails_that_page_only() -> None:
    bad = page(40).replace(b'"id": 45,', b'"id": "forty-five",')
    results = assert_same([page(0), bad, page(80)])
    assert isinstance(results[1], FatalSourceError)
    assert "JSON does not match schema" in results[1].message
    assert isinstance(results[0], DecodeResult) and isinstance(results[2], DecodeResult)


def test_a_bad_record_is_dropped_from_its_page_only() -> None:
    bad = page(40).replace(b'"id": 45,', b'"id": "forty-five",')
    results = assert_same([page(0), bad, page(80)], BadData.DROP)
    assert [r.dropped for r in results] == [0, 1, 0]


def test_records_the_exact_path_refuses_are_not_read_together() -> None:
    # Two records without a comma, a null element, a null id (NOT NULL), a string holding
    # a separator, a second array after the first; then an empty array, a small page, a
    # page with spaces around its array and a page that is no array.
    two_on_a_line = page(0).replace(b"}, {", b"} {", 1)
    null_element = page(40)[:-1] + b", null]"
    null_id = page(80).replace(b'"id": 85,', b'"id": null,')
    separator_in_a_string = page(120).replace(b"item-121", b"item}, {121")
    two_arrays = page(160)[:-1] + b"], [" + page(160)[1:]
    pages = [two_on_a_line, null_element, null_id, separator_in_a_string, two_arrays]
    for bad_data in (BadData.FAIL, BadData.DROP):
        for bad in pages:
            assert_same([page(200), bad, page(240)], bad_data)
    assert_same([page(200), b"[]", page(240), b'[{"id": 1}]', page(280)[:-1] + b"   ]  "])
    assert_same([page(200), json.dumps({"items": []}).encode() + b" " * 2000, page(240)])


def test_numbers_sent_as_text_are_adapted_to_as_alone() -> None:
    as_text = page(40).replace(b'"id": 41,', b'"id": "41",')
    assert_same([page(0), as_text, page(80)])
    assert_same([as_text, page(80)], BadData.DROP)


def test_a_page_with_more_records_than_allowed_is_refused_alone() -> None:
    results = assert_same([page(0, 5), page(5, 60), page(65, 5)], max_records_per_body=50)
    assert isinstance(results[1], FatalSourceError)
    results = assert_same(
        [page(0, 5), page(5, 60), page(65, 5)], BadData.DROP, max_records_per_body=50
    )
    assert [r.rows for r in results] == [5, 0, 5]


def test_event_time_and_virtual_columns_per_page() -> None:
    assert_same([page(0), page(40)], event_time_column="created_at")
    late = page(40).replace(b'"created_at": "2026-12-01T12:00:00Z"', b'"created_at": null', 1)
    results = assert_same([page(0), late, page(80)], event_time_column="created_at")
    assert isinstance(results[1], FatalSourceError)
    halves = (*COLUMNS, col("half", pa.float64(), generated="value / 2"))
    assert_same([page(0), page(40)], columns=halves)
