"""HTTP metadata columns of a ``polling_http`` table: ``name TYPE METADATA FROM 'key'``.

Arroyo's ``polling_http`` defines no metadata fields; these are arroyo-lite extensions, in
the shape of Arroyo's ``Connector::metadata_defs`` (a key and its type, checked when the
table is created with Arroyo's ``incorrect data type for metadata field`` wording). Each value
is per page: every row of a page gets the same one.

=================  =========  ==========================================================
key                type       value
=================  =========  ==========================================================
``status``         INT        the response's HTTP status
``url``            TEXT       the URL that answered (the page's, after redirects), masked
``headers``        JSON       every response header as a JSON object (repeated: joined)
``header.<name>``  TEXT       one response header (case-insensitive name), NULL if absent
``latency_ms``     DOUBLE     time from sending the request to the end of the body
``poll``           BIGINT     the poll's sequence number (1 for the first poll of a run)
``page``           INT        the page's number within its poll (1 for the first)
=================  =========  ==========================================================
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # (pyarrow is imported where used: validating reads only FIELDS)
    import pyarrow as pa

    from arroyo_lite.config import ColumnSpec, TableConfig
    from arroyo_lite.connectors.polling_http.http import HttpResponse
    from arroyo_lite.secrets import Secrets

#: Prefix of the per-header keys (``header.etag``).
HEADER_PREFIX = "header."
#: The keys and their SQL types: what ``metadata_fields`` reports. ``header.*`` is a family.
FIELDS: Mapping[str, str] = {
    "status": "INT",
    "url": "TEXT",
    "headers": "JSON",
    HEADER_PREFIX + "*": "TEXT",
    "latency_ms": "DOUBLE",
    "poll": "BIGINT",
    "page": "INT",
}


@dataclass(frozen=True, slots=True)
class PageInfo:
    """What one page's metadata values come from."""

    response: HttpResponse
    poll: int
    page: int


class MetadataColumns:
    """Fills a table's metadata columns in the batches its decoder made (NULL there)."""

    def __init__(self, config: TableConfig, secrets: Secrets) -> None:
        schema = config.output_schema()
        self._columns: list[tuple[int, pa.Field[Any], ColumnSpec]] = [
            (schema.get_field_index(c.name), schema.field(c.name), c)
            for c in config.metadata_columns
        ]
        self._secrets = secrets

    def __bool__(self) -> bool:
        return bool(self._columns)

    def fill(self, batch: pa.RecordBatch, info: PageInfo) -> pa.RecordBatch:
        """``batch`` with each metadata column set to the page's value."""
        import pyarrow as pa

        from arroyo_lite.formats.pandas_free import array_from_values

        n = batch.num_rows
        for index, field, column in self._columns:
            value = self._value(column.metadata_key or "", info)
            # The scalar built from buffers: pa.scalar would import pandas (see pandas_free).
            scalar = array_from_values([value], field.type)[0]
            batch = batch.set_column(index, field, pa.repeat(scalar, n))
        return batch

    def _value(self, key: str, info: PageInfo) -> Any:
        response = info.response
        if key == "status":
            return response.status
        if key == "url":
            return self._secrets.mask(response.url)
        if key == "headers":
            merged: dict[str, str] = {}
            for name, value in response.headers.items():
                merged[name] = f"{merged[name]}, {value}" if name in merged else value
            return self._secrets.mask(json.dumps(merged, separators=(",", ":")))
        if key.startswith(HEADER_PREFIX):
            values = response.headers.getall(key[len(HEADER_PREFIX) :], [])
            return self._secrets.mask(", ".join(values)) if values else None
        if key == "latency_ms":
            return response.latency_s * 1000.0
        if key == "poll":
            return info.poll
        if key == "page":
            return info.page
        raise AssertionError(f"unchecked metadata key {key!r}")  # validation rejects others


def field_type(key: str) -> str | None:
    """The SQL type of metadata ``key`` (``None`` if polling_http has no such field)."""
    if key.startswith(HEADER_PREFIX) and len(key) > len(HEADER_PREFIX):
        return FIELDS[HEADER_PREFIX + "*"]
    return FIELDS.get(key)
