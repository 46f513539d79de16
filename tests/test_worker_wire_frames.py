"""The worker wire's frame reader and the worker's tracked state (``--workers N``)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arroyo_lite.connectors.base import SourceState, SourceStatus
from arroyo_lite.runtime import worker_wire as wire
from arroyo_lite.runtime.worker_process import _TrackedState

MESSAGES = [
    (wire.DATA, [], [(1, {"k": b"v"}, None)]),
    (wire.STATUS, [(7, ("running", 1, 2))]),
    (wire.LOG, 30, "arroyo_lite.x", "x" * 70_000),  # a frame larger than most chunks
    (wire.EXIT,),
]


def stream() -> bytes:
    return b"".join(wire.frame(m) for m in MESSAGES)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=40_000), max_size=12))
def test_frames_come_out_whole_and_in_order_however_the_stream_is_cut(sizes: list[int]) -> None:
    data = stream()
    chunks, at = [], 0
    for size in sizes:
        chunks.append(data[at : at + size])
        at += size
    chunks.append(data[at:])
    reader = wire.FrameReader()
    out = [message for chunk in chunks if chunk for message in reader.feed(chunk)]
    assert out == MESSAGES


def test_one_byte_at_a_time() -> None:
    reader = wire.FrameReader()
    data = stream()
    out = [m for i in range(len(data)) for m in reader.feed(data[i : i + 1])]
    assert out == MESSAGES


def test_a_corrupted_length_is_refused() -> None:
    with pytest.raises(ValueError, match="frame of"):
        wire.FrameReader().feed(struct.pack(">I", wire.MAX_FRAME + 1) + b"x")


def test_status_values_copy_extra_and_carry_the_state_value() -> None:
    status = SourceStatus(table="t", connector="polling_http", state=SourceState.BACKOFF)
    plain = wire.status_values(status)
    assert plain[0] == "backoff" and type(plain[0]) is str
    assert len(plain) == 1 + len(wire.STATUS_FIELDS)
    status.extra["k"] = 1
    with_extra = wire.status_values(status)
    extra = with_extra[1 + wire.STATUS_FIELDS.index("extra")]
    assert extra == {"k": 1} and extra is not status.extra


def test_tracked_state_pop_records_a_deletion_only_of_a_present_key() -> None:
    touched: list[None] = []
    state = _TrackedState({"a": b"1"}, lambda: touched.append(None))
    assert state.pop("missing", None) is None
    assert not state.dirty and not touched
    with pytest.raises(KeyError):
        state.pop("missing")
    assert state.pop("a") == b"1"
    assert state.dirty and touched
    assert state.take_changes() == (None, ["a"])
    assert not state.dirty
    state["b"] = b"2"
    assert state.take_changes() == ({"b": b"2"}, None)
