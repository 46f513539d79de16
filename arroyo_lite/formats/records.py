"""Record paths: which part of a JSON body holds the records (``records.path = '$.features'``).

Most APIs wrap their records (``{"data": [...]}``, GeoJSON's ``{"features": [...]}``). A
:class:`RecordPath` is a path of the one grammar (:mod:`arroyo_lite.formats.json_path`) made of
member names, optionally ending in ``[*]`` (``$.data`` and ``$.data[*]`` mean the same: the
elements of the array there). What it selects in a body:

* an array: one record per element;
* an object: that one record;
* nothing (a member is missing, or is ``null``, or a step meets a non-object): no record, an
  empty poll, not an error;
* anything else (a string, a number, ``true``): bad data, handled under ``bad_data``.

Two ways to apply it, with the same answers:

* natively (no Python per record): :meth:`RecordPath.nest` wraps the records' read schema in
  structs along the path, so pyarrow reads the whole body in one pass and ignores everything
  outside the path; :meth:`RecordPath.unnest` walks back down to the records. (The decoder
  first tries a faster native read of the array alone, in pieces on several threads, where a
  byte search finds it and the read proves it: :mod:`arroyo_lite.formats.json_pieces`.)
* exactly, on a parsed value: :meth:`RecordPath.select` (what the exact decoding path and
  anything else that already holds the parsed body, such as a paginator reading a cursor, use).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from arroyo_lite.formats.json_path import RECORDS_HINT, JsonPath, JsonPathError, parse_path

if TYPE_CHECKING:  # (imported where used: checking a records.path needs no pyarrow)
    import pyarrow as pa

RecordPathError = JsonPathError  # the name this module's callers know


@dataclass(frozen=True, slots=True)
class RecordPath:
    """A :class:`JsonPath` of member names (optionally ending in ``[*]``) from the body's root
    to the records; ``keys`` are those names (empty: the body itself)."""

    path: JsonPath
    keys: tuple[str, ...]

    @property
    def text(self) -> str:
        return self.path.text

    @classmethod
    def of(cls, path: JsonPath) -> RecordPath:
        """The record path ``path`` spells; raises :class:`JsonPathError` for indices or a
        ``[*]`` before the end."""
        path.require(wildcard="last", index=False, empty=True, hint=RECORDS_HINT)
        return cls(path, path.keys)

    @classmethod
    def parse(cls, text: str) -> RecordPath:
        """Parse ``$.a.b``, ``$['a']['b']``, ``$.a[*]``; raises :class:`JsonPathError`."""
        return cls.of(parse_path(text, RECORDS_HINT))

    def nest(self, records: pa.Schema) -> pa.Schema:
        """The schema pyarrow reads a whole body with: ``records`` as a list at the path.

        Every member outside the path is ignored by the reader; the records themselves are
        read as a ``list<struct>``. (For the empty path, the body is the records.)
        """
        import pyarrow as pa

        if not self.keys:
            return records
        kind: pa.DataType = pa.list_(pa.struct(records))
        for key in reversed(self.keys[1:]):
            kind = pa.struct([pa.field(key, kind)])
        return pa.schema([pa.field(self.keys[0], kind)])

    def unnest(self, table: pa.Table) -> tuple[pa.StructArray | None, int]:
        """The records of a body read with :meth:`nest` (one row of ``table`` per body value).

        Returns ``(records, values)``: ``records`` is ``None`` when the path selects nothing,
        and ``values`` counts the body values that had a records list. Raises
        ``pa.ArrowInvalid`` when a record is a JSON ``null`` (bad data: the exact path says
        so) or the body held several values with records.
        """
        import pyarrow as pa
        import pyarrow.compute as pc  # loaded on first use: validating SQL does not need it

        column: Any = table.column(self.keys[0]).combine_chunks()
        for key in self.keys[1:]:
            column = pc.struct_field(column, key)
        present = len(column) - column.null_count
        if present == 0:
            return None, 0
        if present != 1 or len(column) != 1:
            raise pa.ArrowInvalid("several JSON values in one body: the exact path decides")
        rows: Any = column.flatten()
        if rows.null_count:
            raise pa.ArrowInvalid("a null record")
        return rows, 1

    def select(self, value: Any) -> tuple[str, Any]:
        """Apply the path to a parsed JSON value.

        Returns ``(kind, selected)``: ``("records", list)``, ``("record", dict)``,
        ``("none", None)`` when the path selects nothing, or ``("bad", value)`` for a scalar.
        """
        value = self.path.find(value)
        if value is None:
            return "none", None
        if isinstance(value, list):
            return "records", value
        if isinstance(value, dict):
            return "record", value
        return "bad", value


def json_kind_name(value: Any) -> str:
    """The JSON kind of a parsed scalar, for messages (``a string``, ``a number``)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    return "a number"
