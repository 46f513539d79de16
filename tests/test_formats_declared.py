"""The decodable formats are declared once (formats/decoders.py); the rest derives from it."""

from __future__ import annotations

import pytest

from arroyo_lite.config import Format
from arroyo_lite.errors import ValidationErrors
from arroyo_lite.formats import make_decoder, split_messages
from arroyo_lite.formats.decoders import DECODABLE_NAMES, DECODERS
from arroyo_lite.sql import compile_sql
from arroyo_lite.sql.format_options import DECODABLE
from arroyo_lite.sql.generic_options import GENERIC_OPTIONS_SCHEMA

COLUMNS = {
    "json": "id INT",
    "debezium_json": "id INT PRIMARY KEY",
    "raw_string": "value TEXT",
    "raw_bytes": "value BYTEA",
}


def _table(fmt: str, columns: str) -> str:
    return (
        f"CREATE TABLE t ({columns}) WITH (connector = 'polling_http', "
        f"endpoint = 'http://127.0.0.1:1/', format = '{fmt}');"
    )


def test_everything_derives_from_the_decoders_table() -> None:
    assert DECODABLE == tuple(DECODERS) == (
        Format.JSON,
        Format.DEBEZIUM_JSON,
        Format.RAW_STRING,
        Format.RAW_BYTES,
    )
    assert GENERIC_OPTIONS_SCHEMA["properties"]["format"]["enum"] == list(DECODABLE_NAMES)
    assert set(COLUMNS) == set(DECODABLE_NAMES)
    for name in DECODABLE_NAMES:
        [table] = compile_sql(_table(name, COLUMNS[name])).tables
        decoder = make_decoder(table)
        assert decoder.decode(b"", 0).rows == 0, name


def test_a_format_arroyo_has_but_we_cannot_decode_names_the_ones_we_can() -> None:
    with pytest.raises(ValidationErrors) as info:
        compile_sql(_table("avro", "id INT"))
    assert any(
        e.hint == "arroyo-lite decodes 'json', 'debezium_json', 'raw_string' and 'raw_bytes'"
        for e in info.value
    )
    with pytest.raises(ValidationErrors) as info:
        compile_sql(
            "CREATE TABLE t (id INT) WITH (connector = 'polling_http', "
            "endpoint = 'http://127.0.0.1:1/');"
        )
    hints = [e.hint for e in info.value]
    assert (
        "add format = 'json' (or 'debezium_json', 'raw_string', 'raw_bytes') to the WITH clause"
        in hints
    )


def test_split_messages_is_still_public() -> None:
    assert callable(split_messages)
