"""The WITH options every connection table understands, described as a JSON Schema.

Used for did-you-mean hints on unknown keys and listed by ``arroyo-lite connectors``.
The rules themselves live in :mod:`arroyo_lite.sql.tables` (Arroyo's processing order).
Options marked ``x-extension`` are arroyo-lite additions an Arroyo cluster does not know.
"""

from __future__ import annotations

from typing import Any

from arroyo_lite.formats.decoders import DECODABLE_NAMES

GENERIC_OPTIONS_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Generic table options",
    "type": "object",
    "properties": {
        "connector": {
            "type": "string",
            "default": "memory",
            "description": "Connector name; absent or 'memory' makes a memory table.",
        },
        "format": {
            "type": "string",
            "enum": list(DECODABLE_NAMES),
            "description": "How a message is decoded; required by polling_http, sse and "
            "websocket. Arroyo's avro, debezium_json and protobuf are rejected by arroyo-lite; "
            "parquet is written by the filesystem sink only.",
        },
        "json.unstructured": {
            "type": "boolean",
            "default": False,
            "description": "format='json' only: keep each message as text in one "
            "'value JSON' column.",
        },
        "json.confluent_schema_registry": {
            "type": "boolean",
            "default": False,
            "description": "format='json' only: messages carry a 5-byte schema-registry prefix.",
        },
        "json.include_schema": {
            "type": "boolean",
            "default": False,
            "description": "format='json' only (serialization); exclusive with "
            "json.confluent_schema_registry.",
        },
        "json.timestamp_format": {
            "type": "string",
            "enum": ["RFC3339", "UnixMillis", "unix_millis"],
            "default": "RFC3339",
            "description": "format='json' only; serialization only (decoding ignores it).",
        },
        "json.decimal_encoding": {
            "type": "string",
            "enum": ["number", "string", "bytes"],
            "default": "number",
            "description": "format='json' only; serialization only.",
        },
        "framing": {
            "type": "string",
            "enum": ["newline"],
            "description": "Split a response body into one message per line (NDJSON, text).",
        },
        "framing.newline.max_length": {
            "type": "integer",
            "description": "framing='newline' only: cut longer lines to this many bytes.",
        },
        "bad_data": {
            "type": "string",
            "enum": ["fail", "drop"],
            "default": "fail",
            "description": "On undecodable data: stop the table, or drop the bad rows.",
        },
        "event_time_field": {
            "type": "string",
            "description": "Deprecated (use WATERMARK FOR): the TIMESTAMP column holding "
            "the event time.",
        },
        "watermark_field": {
            "type": "string",
            "description": "Deprecated (use WATERMARK FOR ... AS).",
        },
        "idle_micros": {
            "type": "integer",
            "default": 300000000,
            "description": "Mark the source idle after this long without data; <= 0 disables "
            "(write negative values quoted: '-1').",
        },
        "max_records_per_body": {
            "type": "integer",
            "default": 1000000,
            "description": "Most records one response body may decode to; a body with more "
            "is bad data (bad_data = 'drop' drops it whole, 'fail' stops the table).",
            "x-extension": True,
        },
        "retention.max_rows": {
            "type": "integer",
            "description": "Keep at most this many rows of the live table.",
            "x-extension": True,
        },
        "retention.max_age": {
            "type": "string",
            "description": "Drop rows older than this (interval '10' minute, or '10 minutes').",
            "x-extension": True,
        },
    },
}

#: Every generic key (for did-you-mean hints).
GENERIC_KEYS: tuple[str, ...] = tuple(GENERIC_OPTIONS_SCHEMA["properties"])
