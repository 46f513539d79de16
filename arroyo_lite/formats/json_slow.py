"""The exact structured-JSON path: parse with orjson, convert value by value.

Used when the fast path cannot vouch for a body (a rule pyarrow does not implement, or bad
data somewhere in it). It finds every bad record and says why, so it is also what produces
every structured-JSON error message. Per-record Python: correct first, fast enough for the
bodies that need it.

Messages: each framed message holds zero or more JSON values separated by whitespace (a
blank message gives no row). A top-level object is one record; a top-level array gives one
record per element (our improvement over Arroyo); any other value is a bad record
(``expected { got ...``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from arroyo_lite.config import TableConfig
from arroyo_lite.errors import ConnectorError
from arroyo_lite.formats.json_text import JsonText
from arroyo_lite.formats.json_values import BadValue, arrow_name, converter_for, json_kind
from arroyo_lite.formats.pandas_free import array_from_values, empty_batch
from arroyo_lite.formats.result import TooManyRecords, bounded

_MISSING = object()
_DECODER = json.JSONDecoder(parse_constant=lambda name: _reject_constant(name))


def _reject_constant(name: str) -> Any:
    # NaN and Infinity are not JSON; orjson rejects them too, so both parsers agree.
    raise ValueError(f"invalid constant {name}")


class InvalidJson(ValueError):
    """A message that is not JSON; ``str()`` is the parser's message (positions, no values)."""


def parse_values(message: bytes) -> list[Any]:
    """Every whitespace-separated JSON value in ``message`` (empty for a blank message)."""
    try:
        return [orjson.loads(message)]
    except orjson.JSONDecodeError as e:
        first_error = str(e)
    if not message.strip():
        return []
    # Several concatenated values (NDJSON without framing): the stdlib finds where each one
    # ends, and orjson parses it, so every value obeys orjson's rules (a lone surrogate
    # such as "\ud800" and nesting deeper than 1024 are invalid JSON, as for a single value).
    try:
        text = message.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidJson(first_error) from None
    values: list[Any] = []
    end, n = 0, len(text)
    try:
        while True:
            while end < n and text[end] in " \t\r\n":
                end += 1
            if end == n:
                return values
            start = end
            _, end = _DECODER.raw_decode(text, start)
            values.append(orjson.loads(text[start:end]))
    except (ValueError, RecursionError):
        # ValueError covers orjson.JSONDecodeError; the stdlib scanner recurses per nesting
        # level, so 100 KB of "[" ends in RecursionError: invalid JSON, not a crash.
        raise InvalidJson(first_error) from None


def iter_records(values: list[Any]) -> Iterator[dict[str, Any] | BadValue]:
    """Records of the parsed values of one message: objects, or array elements."""
    for value in values:
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict):
                yield item
            else:
                kind = json_kind(item).split(" ")[0]
                yield BadValue(f"expected {{ got {kind}")


@dataclass
class SlowResult:
    """Good records as a batch of the physical columns, and what was wrong with the rest."""

    batch: pa.RecordBatch
    invalid_json: list[str] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)

    @property
    def bad(self) -> int:
        return len(self.invalid_json) + len(self.mismatches)


class SlowJsonDecoder:
    """Decodes framed messages into the table's physical columns, record by record."""

    def __init__(self, config: TableConfig) -> None:
        self.schema = config.decode_schema()
        try:
            self.columns = [
                (f.name, converter_for(f), f.nullable, _is_json(f), arrow_name(f.type))
                for f in self.schema
            ]
        except BadValue as e:
            raise ConnectorError(str(e)) from e
        json_names = [f.name for f in self.schema if _is_json(f)]
        self._json = JsonText(json_names) if json_names else None

    def empty(self) -> pa.RecordBatch:
        """No records, with the physical columns."""
        return empty_batch(self.schema)

    def decode(self, messages: list[bytes], *, stop_at_first: bool, limit: int) -> SlowResult:
        """Decode ``messages``; with ``stop_at_first`` return as soon as one record is bad.

        Raises :class:`~arroyo_lite.formats.result.TooManyRecords` as soon as more than
        ``limit`` records (good or bad) were seen, before converting more of them.
        """
        good: list[list[Any]] = []
        invalid: list[str] = []
        mismatches: list[str] = []
        seen = 0
        for message in messages:
            try:
                values = parse_values(message)
            except InvalidJson as e:
                invalid.append(bounded(str(e), 200))
                seen += 1
                if seen > limit:
                    raise TooManyRecords(seen) from None
                if stop_at_first:
                    break
                continue
            for record in iter_records(values):
                seen += 1
                if seen > limit:
                    raise TooManyRecords(seen)
                try:
                    if isinstance(record, BadValue):
                        raise record
                    good.append(self._row(record))
                except BadValue as e:
                    mismatches.append(bounded(str(e), 200))
                    if stop_at_first:
                        break
            if stop_at_first and mismatches:
                break
        arrays = [
            array_from_values([row[i] for row in good], f.type) for i, f in enumerate(self.schema)
        ]
        if self._json is not None:
            # Spell JSON text as the fast path does (DuckDB), whichever path a body takes.
            arrays = [
                self._json.normalize(a) if _is_json(f) else a
                for a, f in zip(arrays, self.schema, strict=True)
            ]
        batch = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        return SlowResult(batch, invalid, mismatches)

    def _row(self, record: dict[str, Any]) -> list[Any]:
        row: list[Any] = []
        for name, convert, nullable, is_json, type_name in self.columns:
            value = record.get(name, _MISSING)
            if value is _MISSING:
                if not nullable:
                    raise BadValue(
                        f"field '{name}': required field is missing (expected {type_name})"
                    )
                row.append(None)
            elif value is None and is_json:
                # An explicit null in a JSON column is the JSON text "null" (Arroyo).
                row.append("null")
            elif value is None:
                if not nullable:
                    raise BadValue(
                        f"field '{name}': null value for non-nullable field (expected {type_name})"
                    )
                row.append(None)
            else:
                row.append(convert(value, name))
        return row


def _is_json(f: pa.Field[Any]) -> bool:
    return (f.metadata or {}).get(b"ARROW:extension:name") == b"arroyo.json"
