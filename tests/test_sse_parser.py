"""The text/event-stream parser against the WHATWG rules, whole and split at every byte."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arroyo_lite.connectors.sse.parser import EventStreamParser, SseEvent


def parse(stream: bytes, **kwargs: int) -> tuple[list[SseEvent], EventStreamParser]:
    parser = EventStreamParser(**kwargs)  # type: ignore[arg-type]
    return parser.feed(stream), parser


CASES = [
    # (stream, [(event, data, id)])
    (b"data: hello\n\n", [("message", b"hello", "")]),
    (b"data:hello\n\n", [("message", b"hello", "")]),
    (b"data:  two spaces\n\n", [("message", b" two spaces", "")]),
    (b"data: a\ndata: b\n\n", [("message", b"a\nb", "")]),
    (b"data\n\n", [("message", b"", "")]),  # a data field with no value: one empty event
    (b"data:\ndata:\n\n", [("message", b"\n", "")]),
    (b"event: update\ndata: x\n\n", [("update", b"x", "")]),
    (b"event: update\n\ndata: x\n\n", [("message", b"x", "")]),  # type resets at dispatch
    (b"id: 7\ndata: x\n\ndata: y\n\n", [("message", b"x", "7"), ("message", b"y", "7")]),
    (b"id: 1\x002\ndata: x\n\n", [("message", b"x", "")]),  # an id with NUL is ignored
    (b": comment\ndata: x\n\n", [("message", b"x", "")]),
    (b"data: x\r\n\r\n", [("message", b"x", "")]),
    (b"data: x\r\rdata: y\n\n", [("message", b"x", ""), ("message", b"y", "")]),
    (b"\xef\xbb\xbfdata: bom\n\n", [("message", b"bom", "")]),
    (b"unknown: field\ndata: x\n\n", [("message", b"x", "")]),
    (b"data: x\n", []),  # unfinished at the end of the stream: discarded
    (b"\n\n\n", []),  # blank lines with an empty data buffer dispatch nothing
    (b"data: x\ndata", []),
    (b"DATA: x\n\n", []),  # field names are case-sensitive
    (b'data: {"a": 1}\n\n', [("message", b'{"a": 1}', "")]),
]


@pytest.mark.parametrize(("stream", "expected"), CASES)
def test_whatwg_rules(stream: bytes, expected: list[tuple[str, bytes, str]]) -> None:
    events, _ = parse(stream)
    assert [(e.event, e.data, e.id) for e in events] == expected


def test_last_event_id_updates_even_without_data() -> None:
    events, parser = parse(b"id: 41\ndata: x\n\nid: 42\n\n")
    assert [e.id for e in events] == ["41"]
    assert parser.last_event_id == "42"


def test_empty_id_resets_last_event_id() -> None:
    _, parser = parse(b"id: 5\ndata: x\n\nid\ndata: y\n\n")
    assert parser.last_event_id == ""


def test_initial_last_event_id_is_kept_until_changed() -> None:
    parser = EventStreamParser("abc")
    assert [e.id for e in parser.feed(b"data: x\n\n")] == ["abc"]


@pytest.mark.parametrize(
    ("value", "expected"), [(b"3000", 3000), (b"0", 0), (b"3s", None), (b"", None), (b"-1", None)]
)
def test_retry_only_digits(value: bytes, expected: int | None) -> None:
    _, parser = parse(b"retry: " + value + b"\n\n")
    assert parser.retry_ms == expected


def test_oversized_event_is_discarded_and_counted() -> None:
    stream = b"data: " + b"x" * 100 + b"\ndata: more\n\ndata: ok\n\n"
    events, parser = parse(stream, max_event_bytes=50)
    assert [e.data for e in events] == [b"ok"]
    assert parser.oversized == 1


def test_oversized_single_line_is_dropped_as_it_streams() -> None:
    parser = EventStreamParser(max_event_bytes=50)
    events = parser.feed(b"data: " + b"x" * 60)
    events += parser.feed(b"y" * 1000)  # still the same line: nothing kept
    assert len(parser._pending) <= 50
    events += parser.feed(b"z\n\ndata: ok\n\n")
    assert [e.data for e in events] == [b"ok"]
    assert parser.oversized == 1


STREAM = (
    b'\xef\xbb\xbfretry: 250\r\n: keep-alive\r\nid: 1\r\nevent: edit\r\ndata: {"a":1}\r\n\r\n'
    b"data: line one\rdata: line two\r\r"
    b"id: 2\ndata: x\n\ndata: tail-unfinished\n"
)


def _expected() -> list[tuple[str, bytes, str]]:
    return [(e.event, e.data, e.id) for e in EventStreamParser().feed(STREAM)]


def test_reference_stream() -> None:
    assert _expected() == [
        ("edit", b'{"a":1}', "1"),
        ("message", b"line one\nline two", "1"),
        ("message", b"x", "2"),
    ]


@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_chunking_gives_the_same_events(cuts: list[int]) -> None:
    points = sorted(set(cuts))
    pieces = [STREAM[a:b] for a, b in zip([0, *points], [*points, len(STREAM)], strict=True)]
    parser = EventStreamParser()
    events = [e for piece in pieces for e in parser.feed(piece)]
    assert [(e.event, e.data, e.id) for e in events] == _expected()
    assert parser.retry_ms == 250
    assert parser.last_event_id == "2"


def test_byte_by_byte() -> None:
    parser = EventStreamParser()
    events = [e for i in range(len(STREAM)) for e in parser.feed(STREAM[i : i + 1])]
    assert [(e.event, e.data, e.id) for e in events] == _expected()
