"""A large records array read by pyarrow on several threads, its commas left where they are.

pyarrow parses NDJSON on several threads, a block of lines per thread, but an array separates
its elements with commas, and pyarrow reads neither an array of records as rows nor values
separated by commas. Rewriting every ``},{`` as ``}\\n{`` works but costs a search through the
whole body (a sixth of the parse). Here the array is instead cut into a few pieces of about
:data:`PIECE_SIZE` at element boundaries, found by a short search near evenly spaced offsets
(a few searches per body, not one per record), and each piece becomes a line of its own::

    {"r":[[<piece>],<nonce>]}<spaces>\\n

padded with spaces so that every line has the same length, which is then the read's block
size: each block pyarrow parses (on its threads) is exactly one line, and a value can never
continue into the next line. Each line reads as ``r = [records, nonce]``; the pieces' records
in order are the array's records, with no Python per record. The cost over parsing the same
records as NDJSON is one copy of the body (joining the lines).

Why a read that passes :func:`read_pieces`' checks is exactly the array (the caller has proven
that the array starts at ``first``):

* every piece starts where an element starts: the first just after the ``[``, each other one
  after a cut that the previous line proved;
* a cut inside a string leaves that line inside a string, and a cut inside an element's nested
  value leaves brackets that the line's end does not close: pyarrow rejects the line;
* a piece in which the array itself ends (the searched end went past it, to a later array of
  objects): the rest of the piece is read inside the outer list, where what follows an array
  member in a valid body (``,"key":`` or ``}``) is an error. An invalid body could be written
  to fit there, but then it would have to spell the nonce: 32 ``null``/``{}`` elements drawn
  at random for each read, after the body arrived.

So every accepted line is one piece of elements followed by this read's nonce, and a rejected
one sends the caller to another way of reading (pyarrow's error is raised, so the caller can
tell a value of another kind, which it adapts to, from a proof that failed).
"""

from __future__ import annotations

import random
import re
from typing import Any

import pyarrow as pa
import pyarrow.json as pajson

from arroyo_lite.formats.pandas_free import array_from_values, empty_table

#: The size pieces aim at: pyarrow's default block size, so the threads get as many blocks
#: as they would for the same records as NDJSON.
PIECE_SIZE = 1 << 20
#: The line's one member: ``[records, nonce]``.
_KEY = "r"
_PREFIX = b'{"' + _KEY.encode() + b'":[['
_NONCE_BITS = 32
#: How many ``},`` are tried after an offset before giving up on a cut there (a ``},`` also
#: ends nested objects; the record's own end follows within a record or two).
_MAX_TRIES = 64
_SPACE_RUN = re.compile(rb"[ \t\r\n]*")
_SPACE = b" \t\r\n"


def read_pieces(
    body: bytes, first: int, end: int, schema: pa.Schema, piece_size: int = PIECE_SIZE
) -> pa.Table | None:
    """The records of the array ``body[first:end]`` (from its ``[`` to just past its ``]``,
    which the caller has found and proven to start the value it wants), read with
    ``schema``, as a table of one chunk per piece of about ``piece_size`` bytes; ``None``
    when the read does not prove the pieces (the caller reads the array another way).

    Raises what pyarrow raises (``pa.ArrowInvalid``) for a line it rejects: a value of
    another kind than its column, or a cut that was not an element boundary.
    """
    if body[first : first + 1] != b"[" or body[end - 1 : end] != b"]":
        return None
    lo, hi = first + 1, end - 1
    if _skip_space(body, lo) >= hi:
        return empty_table(schema)  # []
    spans = _pieces(body, lo, hi, piece_size)
    if max(stop - start for start, stop in spans) * len(spans) > 2 * (hi - lo):
        # Very uneven pieces (cuts not found near most offsets): padding every line to the
        # longest would more than double the copy, so the array is read as one line.
        spans = [(lo, hi)]
    view = memoryview(body)
    batches = _read_lines([view[start:stop] for start, stop in spans], schema)
    return None if batches is None else pa.Table.from_batches(batches, schema)


def read_arrays(bodies: list[bytes], schema: pa.Schema) -> list[pa.RecordBatch] | None:
    """The records of each body of ``bodies``, each one top-level array (spaces around it
    allowed), read with ``schema`` by one pyarrow read (a line per body, parsed on pyarrow's
    threads), as one batch per body; ``None`` when a body is not one array of records, or
    when the bodies' sizes are so uneven that padding their lines would more than double the
    copy (the caller reads them one by one).

    Each body's elements (between its first ``[`` and its last ``]``) are a piece as
    :func:`read_pieces` makes them, and the same proof holds: every accepted line is one
    body's elements followed by this read's nonce. Raises what pyarrow raises.
    """
    views: list[Any] = []
    for body in bodies:
        first = _skip_space(body, 0)
        end = len(body)
        while end > first and body[end - 1] in _SPACE:
            end -= 1
        if body[first : first + 1] != b"[" or body[end - 1 : end] != b"]" or end - first < 2:
            return None
        views.append(memoryview(body)[first + 1 : end - 1])
    if not views or max(len(v) for v in views) * len(views) > 2 * sum(len(v) for v in views):
        return None
    return _read_lines(views, schema)


def _read_lines(parts: list[Any], schema: pa.Schema) -> list[pa.RecordBatch] | None:
    """Each of ``parts`` (a run of whole array elements) as a line ``{"r":[[part],nonce]}``
    padded to one width, read in blocks of one line each; the records of each part, or
    ``None`` when a line did not read as its part's records and the nonce."""
    nonce = random.getrandbits(_NONCE_BITS)
    suffix = b"]," + _nonce_text(nonce) + b"]}"
    width = max(len(part) for part in parts) + len(_PREFIX) + len(suffix) + 1
    pieces: list[Any] = []
    for part in parts:
        pad = width - 1 - len(_PREFIX) - len(part) - len(suffix)
        pieces += (_PREFIX, part, suffix, b" " * pad, b"\n")
    lines = b"".join(pieces)  # the one copy of the records
    table = pajson.read_json(
        pa.BufferReader(lines),  # type: ignore[arg-type]
        read_options=pajson.ReadOptions(block_size=width),
        parse_options=pajson.ParseOptions(
            explicit_schema=pa.schema([pa.field(_KEY, pa.list_(pa.list_(pa.struct(schema))))]),
            unexpected_field_behavior="ignore",
            newlines_in_values=False,
        ),
    )
    return _records(table, len(parts), nonce, schema)


def _pieces(body: bytes, lo: int, hi: int, piece_size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each piece of the elements in ``body[lo:hi]``: cut at the first
    element boundary after each multiple of about ``piece_size`` (fewer pieces where none is
    found)."""
    count = -(-(hi - lo) // piece_size)
    spans: list[tuple[int, int]] = []
    start = lo
    for k in range(1, count):
        boundary = _boundary(body, max(start, lo + k * (hi - lo) // count), hi)
        if boundary is _NO_MORE:
            break  # no '},' after this offset: none after the next ones either
        if boundary is None:
            continue  # none near this offset: the piece grows to the next one
        spans.append((start, boundary[0]))
        start = boundary[1]
    spans.append((start, hi))
    return spans


#: What :func:`_boundary` returns when ``body`` holds no ``},`` after the offset.
_NO_MORE = (-1, -1)


def _boundary(body: bytes, at: int, hi: int) -> tuple[int, int] | None:
    """The first ``}`` + ``,`` + ``{`` (spaces allowed after the comma) at or after ``at``:
    ``(just past the }, the {)``; ``None`` when :data:`_MAX_TRIES` ``},`` were not followed by
    a ``{``, :data:`_NO_MORE` when there is no ``},`` left. Only a guess: the read proves it."""
    for _ in range(_MAX_TRIES):
        close = body.find(b"},", at, hi)
        if close < 0:
            return _NO_MORE
        after = _skip_space(body, close + 2)
        if after < hi and body[after] == 0x7B:  # {
            return close + 1, after
        at = close + 1
    return None


def _skip_space(body: bytes, at: int) -> int:
    match = _SPACE_RUN.match(body, at)
    return match.end() if match is not None else at


def _nonce_text(nonce: int) -> bytes:
    """The nonce as a JSON list: ``{}`` for a set bit, ``null`` for a clear one."""
    return b"[" + b",".join(b"{}" if nonce >> i & 1 else b"null" for i in range(_NONCE_BITS)) + b"]"


def _records(
    table: pa.Table, pieces: int, nonce: int, schema: pa.Schema
) -> list[pa.RecordBatch] | None:
    """The records of a read, one batch per piece, or ``None`` unless each piece's block
    read as one line with ``r = [records, nonce]`` and no record is ``null``."""
    column: Any = table.column(0)
    if table.num_rows != pieces or column.num_chunks != pieces:
        return None
    # Built from buffers: pa.array of Python values would import pandas (pandas_free).
    expected = array_from_values([bool(nonce >> i & 1) for i in range(_NONCE_BITS)], pa.bool_())
    batches = []
    chunk: Any
    for chunk in column.chunks:
        if len(chunk) != 1 or chunk.null_count:
            return None
        pair: Any = _values(chunk)
        if len(pair) != 2 or pair.null_count:
            return None
        records: Any = _values(pair.slice(0, 1))
        if records.null_count:
            return None  # a null record: bad data, which the exact path reports
        if not _validity(_values(pair.slice(1, 1))).equals(expected):
            return None
        batches.append(pa.RecordBatch.from_struct_array(records))
    return batches


# Neither helper calls a kernel: ``ListArray.flatten`` and ``Array.is_valid`` would import
# pyarrow.compute (~40 ms: it wraps every kernel), before a run's first row.


def _values(lists: Any) -> Any:
    """The values of ``lists`` (a list array without nulls) in order: its ``flatten()``."""
    offsets = lists.offsets
    start = offsets[0].as_py()
    return lists.values.slice(start, offsets[-1].as_py() - start)


def _validity(array: Any) -> Any:
    """Whether each value of ``array`` is valid (its ``is_valid()``), from its bitmap."""
    bitmap = array.buffers()[0]
    if bitmap is None:  # no nulls
        return array_from_values([True] * len(array), pa.bool_())
    return pa.Array.from_buffers(pa.bool_(), len(array), [None, bitmap], offset=array.offset)
