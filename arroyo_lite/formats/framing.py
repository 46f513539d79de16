"""Framing: how one response body becomes messages (Arroyo's ``FramingIterator``).

* No framing: the whole body is one message. An empty body is no message at all.
* ``newline``: split on ``\\n`` only (a ``\\r`` stays in the message); a trailing ``\\n`` does
  not make an extra empty message, empty lines in the middle are empty messages; each message
  is cut to ``max_line_length`` bytes (the rest is dropped, not an error).

Messages come back as one ``pa.BinaryArray`` so callers can stay in Arrow (no per-line Python).
"""

from __future__ import annotations

from typing import Any

# (pyarrow.compute is imported in the functions that call a kernel: its import, ~40 ms,
# would otherwise come before a run's first row.)
import pyarrow as pa

from arroyo_lite.config import FramingSpec
from arroyo_lite.formats.pandas_free import array_from_values


def split_messages(body: bytes, framing: FramingSpec | None) -> pa.Array[Any]:
    """The messages of ``body`` under ``framing``, in order, as a non-null binary array."""
    import pyarrow.compute as pc

    # Built from buffers: pa.array would import pandas (0.5 s before a run's first row).
    if not body:
        return array_from_values([], pa.binary())
    whole: pa.Array[Any] = array_from_values([body], pa.binary())
    if framing is None:
        return whole
    split: pa.Array[Any] = pc.split_pattern(whole, b"\n")  # type: ignore[call-overload]
    pieces: pa.Array[Any] = pc.list_flatten(split)
    if body.endswith(b"\n"):
        # split_pattern yields an empty piece after the final separator; Arroyo does not.
        pieces = pieces.slice(0, len(pieces) - 1)
    if framing.max_line_length is not None:
        pieces = pc.binary_slice(pieces, 0, framing.max_line_length)
    return pieces.cast(pa.binary())
