"""The formats arroyo-lite decodes, each with its decoder: declared once, here.

:data:`DECODERS` maps each decodable :class:`~arroyo_lite.config.Format` to the factory of
its decoder. Everything else derives from it: :func:`arroyo_lite.formats.make_decoder`, the
front end's "format not supported" check and hint, the ``format`` enum of the generic
options schema (and so ``arroyo-lite connectors``), and polling_http's "format must be set"
hint. Adding a format is one entry here (plus its decoder module and its README line).

Cheap to import (the decoder modules load when a decoder is first made): the SQL front end
reads this table while validating.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from arroyo_lite.config import Format, TableConfig

if TYPE_CHECKING:
    # (Not at run time: the front end reads this table while validating, and a run of
    # tables that decode nothing, such as impulse, never needs the decoders' contract.)
    from arroyo_lite.formats.result import Decoder

#: Builds the decoder of a validated table whose ``format`` is the key.
DecoderFactory = Callable[[TableConfig], "Decoder"]


def _json(config: TableConfig) -> Decoder:
    if config.format is not None and config.format.unstructured:
        return _raw_string(config)  # one 'value JSON' column: the text, as raw_string keeps it
    from arroyo_lite.formats.json_decoder import JsonDecoder

    return JsonDecoder(config)


def _debezium_json(config: TableConfig) -> Decoder:
    from arroyo_lite.formats.debezium import DebeziumDecoder

    return DebeziumDecoder(config)


def _raw_string(config: TableConfig) -> Decoder:
    from arroyo_lite.formats.raw import RawDecoder

    return RawDecoder(config, text=True)


def _raw_bytes(config: TableConfig) -> Decoder:
    from arroyo_lite.formats.raw import RawDecoder

    return RawDecoder(config, text=False)


#: The decodable formats, in the order they are listed (Arroyo also has avro, parquet and
#: protobuf; arroyo-lite rejects them). A debezium_json source is an updating table.
DECODERS: Mapping[Format, DecoderFactory] = {
    Format.JSON: _json,
    Format.DEBEZIUM_JSON: _debezium_json,
    Format.RAW_STRING: _raw_string,
    Format.RAW_BYTES: _raw_bytes,
}
DECODABLE: tuple[Format, ...] = tuple(DECODERS)
#: Their names, as written in ``format = '...'``.
DECODABLE_NAMES: tuple[str, ...] = tuple(f.value for f in DECODABLE)


def quoted() -> str:
    """``'json', 'debezium_json', 'raw_string' and 'raw_bytes'`` (for hints)."""
    shown = [f"'{n}'" for n in DECODABLE_NAMES]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
