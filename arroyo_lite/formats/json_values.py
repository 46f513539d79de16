"""Per-value JSON -> Arrow conversion: the reference rules of structured JSON decoding.

This is the slow, exact path (Python per value). It states every rule of Arroyo's JSON decoder
(reference §3.4) in one place; the fast path in :mod:`~arroyo_lite.formats.json_fast` only
accepts bodies on which pyarrow's native reader gives the same answer, and hands everything
else here.

A converter takes one parsed JSON value (as orjson returns it) and gives the Python value
``pa.array`` builds the column from, or raises :class:`BadValue` with a detail in Arroyo's
style that never contains the value itself (``field 'x': expected Int64, got string
(length: 5)``).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import decimal
import math
import re
from collections.abc import Callable
from typing import Any

import orjson
import pyarrow as pa

Converter = Callable[[Any, str], Any]

_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_UNIT_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}
_NAIVE_NS = pa.timestamp("ns")
_UTC_NS = pa.timestamp("ns", tz="UTC")


class BadValue(ValueError):
    """A value that does not fit its column; ``str()`` is a detail safe to show."""


def arrow_name(t: Any) -> str:
    """The Arrow type as arrow-rs prints it (``Int64``, ``Utf8``, ``Timestamp(Second, None)``)."""
    if pa.types.is_timestamp(t):
        unit = {"s": "Second", "ms": "Millisecond", "us": "Microsecond", "ns": "Nanosecond"}
        return f"Timestamp({unit[t.unit]}, None)"
    if pa.types.is_decimal(t):
        return f"Decimal128({t.precision}, {t.scale})"
    if pa.types.is_list(t):
        return f"List({arrow_name(t.value_type)})"
    if pa.types.is_struct(t):
        return "Struct(" + ", ".join(f"{f.name} {arrow_name(f.type)}" for f in t) + ")"
    simple = {
        "bool": "Boolean", "int32": "Int32", "int64": "Int64", "uint32": "UInt32",
        "uint64": "UInt64", "float": "Float32", "double": "Float64", "string": "Utf8",
        "binary": "Binary", "int8": "Int8", "int16": "Int16", "uint8": "UInt8",
        "uint16": "UInt16", "large_string": "LargeUtf8",
    }
    return simple.get(str(t), str(t))


def json_kind(value: Any) -> str:
    """The JSON type of a parsed value, with its size but never its content."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return f"number (length: {len(repr(value))})"
    if isinstance(value, str):
        return f"string (length: {len(value)})"
    if isinstance(value, list):
        return "array"
    return "object"


def _mismatch(path: str, expected: str, value: Any, parse: bool = False) -> BadValue:
    suffix = " - parse failure" if parse else ""
    return BadValue(f"field '{path}': expected {expected}, got {json_kind(value)}{suffix}")


def _int_converter(t: Any) -> Converter:
    bits = t.bit_width
    lo, hi = (0, 2**bits - 1) if pa.types.is_unsigned_integer(t) else (-(2 ** (bits - 1)),
                                                                           2 ** (bits - 1) - 1)
    name = arrow_name(t)

    def convert(value: Any, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise _mismatch(path, name, value)
        number: Any = value
        if isinstance(value, str):
            if _INT.fullmatch(value):
                number = int(value)
            elif _FLOAT.fullmatch(value):
                number = float(value)
            else:
                raise _mismatch(path, name, value, parse=True)
        if isinstance(number, float):
            # Arroyo's decoder falls back to f64 and a truncating cast (1.7 -> 1).
            if not math.isfinite(number):
                raise _mismatch(path, name, value, parse=True)
            number = int(number)
        if not lo <= number <= hi:
            raise _mismatch(path, name, value, parse=True)
        return number

    return convert


def _float_converter(t: Any) -> Converter:
    name = arrow_name(t)

    def convert(value: Any, path: str) -> Any:
        if isinstance(value, bool):
            raise _mismatch(path, name, value)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, str) and _FLOAT.fullmatch(value):
            return float(value)
        raise _mismatch(path, name, value, parse=isinstance(value, str))

    return convert


def _exact(kind: type, t: pa.DataType) -> Converter:
    name = arrow_name(t)

    def convert(value: Any, path: str) -> Any:
        if isinstance(value, kind):
            return value
        raise _mismatch(path, name, value)

    return convert


_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(Z|([+-])(\d{2}):(\d{2}))?"
)


_EPOCH_ORDINAL = datetime.date(1970, 1, 1).toordinal()


def _rfc3339_ns(text: str) -> int | None:
    """The common RFC 3339 shapes, parsed in Python (Arrow's parser accepts all of them)."""
    m = _RFC3339.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    if hour > 23 or minute > 59 or second > 59:
        return None  # let Arrow's parser decide
    try:
        days = datetime.date(year, month, day).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None  # an impossible date: let Arrow's parser decide
    seconds = days * 86_400 + hour * 3_600 + minute * 60 + second
    fraction = m.group(7) or ""
    ns = seconds * 1_000_000_000 + int(fraction.ljust(9, "0") or 0)
    if m.group(9):
        offset = (int(m.group(10)) * 60 + int(m.group(11))) * 60_000_000_000
        ns = ns - offset if m.group(9) == "+" else ns + offset
    return ns


def parse_timestamp_ns(text: str) -> int | None:
    """Nanoseconds since the epoch for an RFC 3339 / ISO 8601 string, or ``None``.

    Arrow's own ISO 8601 parser (what ``pyarrow.json`` uses on the fast path) decides: ``T``
    or a space, optional fraction, optional ``Z`` or offset (naive times are UTC), date only.
    The most common shapes are parsed in Python first, which is much cheaper per value.
    """
    ns = _rfc3339_ns(text)
    if ns is not None and -(2**63) <= ns < 2**63:
        return ns
    for target in (_NAIVE_NS, _UTC_NS):
        try:
            scalar: Any = pa.array([text], pa.string()).cast(target)[0]
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        return int(scalar.value)
    return None


def _timestamp_converter(t: Any) -> Converter:
    name = arrow_name(t)
    per_unit = _UNIT_NS[t.unit]

    def convert(value: Any, path: str) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            return value  # a JSON number is a raw count in the column's unit
        if not isinstance(value, str):
            raise _mismatch(path, name, value)
        ns = parse_timestamp_ns(value)
        if ns is None:
            raise _mismatch(path, name, value, parse=True)
        # Truncate toward zero, as Arrow's unsafe cast from ns does on the fast path.
        return ns // per_unit if ns >= 0 else -((-ns) // per_unit)

    return convert


def _decimal_converter(t: Any) -> Converter:
    name = arrow_name(t)
    exponent = decimal.Decimal(1).scaleb(-t.scale)
    limit = decimal.Decimal(10) ** (t.precision - t.scale)

    def convert(value: Any, path: str) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise _mismatch(path, name, value)
        try:
            number = decimal.Decimal(str(value))
        except decimal.InvalidOperation:
            raise _mismatch(path, name, value, parse=True) from None
        if not number.is_finite():
            raise _mismatch(path, name, value, parse=True)
        number = number.quantize(exponent, rounding=decimal.ROUND_DOWN)
        if abs(number) >= limit:
            raise _mismatch(path, name, value, parse=True)
        return number

    return convert


def _binary_converter(t: Any) -> Converter:
    name = arrow_name(t)

    def convert(value: Any, path: str) -> Any:
        if not isinstance(value, str):
            raise _mismatch(path, name, value)
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise _mismatch(path, name, value, parse=True) from None

    return convert


def _json_text(value: Any, path: str) -> Any:
    return orjson.dumps(value).decode()


def _list_converter(t: Any) -> Converter:
    item = converter_for(t.value_field)
    name = arrow_name(t)

    def convert(value: Any, path: str) -> Any:
        if not isinstance(value, list):
            raise _mismatch(path, name, value)
        return [None if v is None else item(v, path) for v in value]

    return convert


def _struct_converter(t: Any) -> Converter:
    children = [(f.name, converter_for(f)) for f in t]
    name = arrow_name(t)

    def convert(value: Any, path: str) -> Any:
        if not isinstance(value, dict):
            raise _mismatch(path, name, value)
        out = {}
        for key, child in children:
            v = value.get(key)
            out[key] = None if v is None else child(v, f"{path}.{key}")
        return out

    return convert


def converter_for(field: pa.Field[Any]) -> Converter:
    """The converter for a column (or nested field); ``None`` values never reach it.

    A field with ``ARROW:extension:name = arroyo.json`` metadata is a JSON column: any value
    becomes its compact JSON text.
    """
    if field.metadata and field.metadata.get(b"ARROW:extension:name") == b"arroyo.json":
        return _json_text
    t: Any = field.type
    if pa.types.is_integer(t):
        return _int_converter(t)
    if pa.types.is_floating(t):
        return _float_converter(t)
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return _exact(str, t)
    if pa.types.is_boolean(t):
        return _exact(bool, t)
    if pa.types.is_timestamp(t):
        return _timestamp_converter(t)
    if pa.types.is_decimal(t):
        return _decimal_converter(t)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return _binary_converter(t)
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return _list_converter(t)
    if pa.types.is_struct(t):
        return _struct_converter(t)
    raise BadValue(f"field '{field.name}': type {arrow_name(t)} cannot be decoded from JSON")
