"""Text of ``JSON`` columns, computed natively by DuckDB.

A ``JSON`` column stores the compact JSON text of its key's value (an explicit ``null`` is
the text ``null``; a missing key is SQL NULL). pyarrow cannot give a value's text, so the fast
path asks DuckDB to extract each JSON column from the records' text in one query. The exact
path serialises values with orjson and passes the texts through :meth:`JsonText.normalize`,
so both paths spell numbers the same way (DuckDB's ``1e100`` where orjson writes ``1e+100``).

Each call opens its own cursor on the decoders' shared database (:mod:`.duck`), so calls
from several threads never share a registration.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb

# (pyarrow.compute is imported in the functions that call a kernel: its import, ~40 ms,
# would otherwise come before a run's first row.)
import pyarrow as pa

from arroyo_lite.formats.duck import cursor as duck_cursor

_BLANK = r"^[ \t\r]*$"
#: Spellings where orjson and DuckDB differ (see :meth:`JsonText.normalize`).
_DIFFERS = r"[0-9][.eE]|\\u00[01][a-f]"


def _path(name: str) -> str:
    """A JSONPath naming one key exactly, as a SQL string literal."""
    key = name.replace("\\", "\\\\").replace('"', '\\"')
    return "'" + ('$."' + key + '"').replace("'", "''") + "'"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class JsonText:
    """Extracts or normalises the JSON columns ``names`` of a table."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        # The last column says whether every record is an object (a top-level null or
        # scalar is bad data, which only the exact path reports).
        extracts = ", ".join(
            [f"json_extract(line, {_path(n)})::VARCHAR AS {_quote(n)}" for n in self.names]
            + ["json_type(line) = 'OBJECT' AS __is_object"]
        )
        self._from_lines = f"SELECT {extracts} FROM lines"
        self._from_array = (
            f"SELECT {extracts} FROM (SELECT unnest(json_extract(body, '$[*]')) AS line "
            "FROM array_body)"
        )

    def _run(self, query: str, name: str, table: pa.Table, *, objects: bool = True) -> list[Any]:
        import pyarrow.compute as pc

        cur = duck_cursor()
        try:
            cur.register(name, table)
            result = cur.sql(query).to_arrow_table()
        except duckdb.Error as e:
            raise ValueError(f"JSON column extraction failed: {e}") from e
        finally:
            cur.close()
        columns = [c.combine_chunks() for c in result.columns]
        if objects:
            is_object = columns.pop()
            if is_object.null_count or not pc.all(is_object).as_py():
                raise ValueError("a record is not a JSON object")
        return [c.cast(pa.string()) for c in columns]

    def from_records(self, records: Any) -> list[Any]:
        """One string array per JSON column; ``records`` holds one JSON object text each."""
        return self._run(self._from_lines, "lines", pa.table({"line": records}))

    def from_lines(self, data: bytes) -> tuple[int, list[Any]]:
        """For newline-delimited objects: (record count, one array per JSON column).

        Blank lines are skipped, as pyarrow's reader skips them.
        """
        import pyarrow.compute as pc

        lines: Any = pc.list_flatten(
            pc.split_pattern(pa.array([data], pa.binary()), b"\n")  # type: ignore[call-overload]
        )
        lines = lines.cast(pa.string())
        lines = lines.filter(pc.invert(pc.match_substring_regex(lines, _BLANK)))
        return len(lines), self.from_records(lines)

    def from_array(self, body: bytes) -> list[Any]:
        """One array per JSON column for a top-level array of objects, in element order."""
        table = pa.table({"body": pa.array([body.decode("utf-8")], pa.string())})
        return self._run(self._from_array, "array_body", table)

    def normalize(self, texts: Any) -> Any:
        """orjson's JSON texts spelled as DuckDB spells them (NULL stays NULL).

        The two differ in how they write floats (orjson ``1e-6`` and ``1e+100``, DuckDB
        ``0.000001`` and ``1e100``) and in the case of control-character escapes
        (``\u001f``, ``\u001F``); texts with neither are returned as they are, without a
        query.
        """
        import pyarrow.compute as pc

        if not pc.any(pc.match_substring_regex(texts, _DIFFERS)).as_py():
            return texts
        query = "SELECT json(line)::VARCHAR FROM lines"
        return self._run(query, "lines", pa.table({"line": texts}), objects=False)[0]
