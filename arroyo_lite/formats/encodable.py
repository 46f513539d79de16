"""The formats arroyo-lite sinks write, by name: what the SQL front end checks a sink table's
``format`` against without loading the encoders (they need DuckDB and pyarrow).

:data:`arroyo_lite.formats.encode.ENCODERS` holds an encoder for each of these, in this
order; that module refuses to load if the two differ.
"""

from __future__ import annotations

from arroyo_lite.config import Format

#: The formats a sink can write (a format missing here is refused by name).
ENCODABLE: tuple[Format, ...] = (Format.JSON, Format.DEBEZIUM_JSON, Format.RAW_STRING)
