"""``cbor_to_json(BYTEA) -> TEXT``: CBOR (RFC 8949) to JSON text, as a DuckDB scalar function.

Arroyo's SQL corpus reads Bluesky's firesky feed with ``cbor_to_json(value)``, a UDF its test
suite compiles (serde_cbor transcoded by serde_json). arroyo-lite ships the same function
built in (an *extension*: on an Arroyo cluster it is a UDF to register). Its rules follow the
transcoding: tags are dropped (their content is kept), byte strings become arrays of numbers,
integer map keys become strings, ``undefined`` becomes ``null``; a value JSON cannot hold
(a non-finite float, another kind of key), malformed or truncated CBOR, or trailing bytes give
NULL, never an error.

Decoding is per value in Python: fine for feeds of posts, not meant for bulk data.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import orjson

#: Nesting deeper than this is refused (NULL): a hostile message must not exhaust the stack.
MAX_DEPTH = 256


class _Invalid(Exception):
    """The input is not CBOR that JSON can represent."""


def cbor_to_json(data: bytes | None) -> str | None:
    """JSON text of the CBOR item ``data`` holds, or ``None`` (see the module docstring)."""
    if data is None:
        return None
    try:
        value, end = _item(memoryview(data), 0, 0)
        if end != len(data):
            return None
        return orjson.dumps(value).decode()
    except (_Invalid, IndexError, ValueError, struct.error, UnicodeDecodeError, TypeError):
        return None


def _length(view: memoryview, pos: int, info: int) -> tuple[int | None, int]:
    """The argument of an initial byte (``None`` for indefinite length) and the next offset."""
    if info < 24:
        return info, pos
    if info == 31:
        return None, pos
    sizes = {24: 1, 25: 2, 26: 4, 27: 8}
    if info not in sizes:
        raise _Invalid("reserved additional information")
    size = sizes[info]
    if pos + size > len(view):
        raise _Invalid("truncated")
    return int.from_bytes(view[pos : pos + size], "big"), pos + size


def _item(view: memoryview, pos: int, depth: int) -> tuple[Any, int]:
    if depth > MAX_DEPTH:
        raise _Invalid("too deep")
    initial = view[pos]
    major, info = initial >> 5, initial & 0x1F
    pos += 1
    if major == 7:
        return _simple(view, pos, info)
    n, pos = _length(view, pos, info)
    if major == 0:
        return _int(n), pos
    if major == 1:
        return -1 - _int(n), pos
    if major in (2, 3):
        raw, pos = _string(view, pos, n, major)
        return (list(raw) if major == 2 else raw.decode("utf-8")), pos
    if major == 4:
        items: list[Any] = []
        while n is None or len(items) < n:
            if n is None and view[pos] == 0xFF:
                return items, pos + 1
            item, pos = _item(view, pos, depth + 1)
            items.append(item)
        return items, pos
    if major == 5:
        out: dict[str, Any] = {}
        count = 0
        while n is None or count < n:
            if n is None and view[pos] == 0xFF:
                return out, pos + 1
            key, pos = _item(view, pos, depth + 1)
            if isinstance(key, bool) or not isinstance(key, str | int):
                raise _Invalid("map key must be a string or an integer")
            value, pos = _item(view, pos, depth + 1)
            out[str(key)] = value
            count += 1
        return out, pos
    # major 6: a tag; its content is the value (serde_cbor ignores tags)
    return _item(view, pos, depth + 1)


def _int(n: int | None) -> int:
    if n is None:
        raise _Invalid("indefinite integer")
    return n


def _string(view: memoryview, pos: int, n: int | None, major: int) -> tuple[bytes, int]:
    if n is not None:
        if pos + n > len(view):
            raise _Invalid("truncated")
        return bytes(view[pos : pos + n]), pos + n
    chunks = []
    while view[pos] != 0xFF:
        initial = view[pos]
        if initial >> 5 != major:
            raise _Invalid("bad chunk in an indefinite string")
        size, pos = _length(view, pos + 1, initial & 0x1F)
        chunk, pos = _string(view, pos, _int(size), major)
        chunks.append(chunk)
    return b"".join(chunks), pos + 1


def _simple(view: memoryview, pos: int, info: int) -> tuple[Any, int]:
    if info == 20:
        return False, pos
    if info == 21:
        return True, pos
    if info in (22, 23):
        return None, pos
    if info in (25, 26, 27):
        size = {25: 2, 26: 4, 27: 8}[info]
        (value,) = struct.unpack({2: ">e", 4: ">f", 8: ">d"}[size], view[pos : pos + size])
        if not math.isfinite(value):
            raise _Invalid("JSON has no NaN or infinity")
        return value, pos + size
    raise _Invalid("unsupported simple value")


#: The DuckDB function :func:`register` defines.
FUNCTION_NAME = "cbor_to_json"


def register(con: Any) -> None:
    """Make ``cbor_to_json`` callable on the DuckDB connection ``con``.

    DuckDB's Python functions need numpy; without it (an install that predates the
    dependency) the function is simply not defined, and DuckDB says so when it is called.
    """
    import duckdb

    try:
        import numpy  # noqa: F401
    except ImportError:
        return
    con.create_function(
        FUNCTION_NAME,
        cbor_to_json,
        [duckdb.sqltype("BLOB")],
        duckdb.sqltype("VARCHAR"),
        null_handling="special",  # NULL in, NULL out; and NULL for what does not transcode
        side_effects=False,
    )
