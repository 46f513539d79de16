"""Decoding formats: response body bytes -> ``pa.RecordBatch`` with a table's schema.

Public API: :func:`make_decoder` builds the :class:`Decoder` for a table; its
:meth:`Decoder.decode` returns a :class:`DecodeResult`. Modules: ``result`` (the contract),
``framing`` (body -> messages), ``raw`` (raw_string, raw_bytes, unstructured JSON),
``json_decoder`` (structured JSON: picks a path per body), ``json_fast`` (pyarrow's native
reader), ``json_slow`` and ``json_values`` (the exact rules, value by value), ``json_text``
(JSON column text via DuckDB), ``virtual`` (generated columns), ``output`` (virtual columns,
event time, ``_timestamp``), ``duck`` (the decoders' shared in-memory DuckDB).
"""

from __future__ import annotations

from arroyo_lite.config import Format, TableConfig
from arroyo_lite.errors import ConnectorError
from arroyo_lite.formats.framing import split_messages
from arroyo_lite.formats.result import Decoder, DecodeResult

__all__ = ["DecodeResult", "Decoder", "make_decoder", "split_messages"]


def make_decoder(config: TableConfig) -> Decoder:
    """The decoder for ``config`` (a validated source table with a ``format``).

    Raises :class:`ConnectorError` for a format arroyo-lite cannot decode (avro, parquet,
    debezium_json), and :class:`arroyo_lite.errors.SqlError` when a virtual column's expression
    cannot be translated to DuckDB.
    """
    from arroyo_lite.formats.raw import RawDecoder

    spec = config.format
    if spec is None:
        raise ConnectorError(f"table '{config.name}' has no format to decode")
    if spec.format is Format.RAW_STRING:
        return RawDecoder(config, text=True)
    if spec.format is Format.RAW_BYTES:
        return RawDecoder(config, text=False)
    if spec.format is Format.JSON and spec.unstructured:
        return RawDecoder(config, text=True)
    if spec.format is Format.JSON:
        from arroyo_lite.formats.json_decoder import JsonDecoder

        return JsonDecoder(config)
    raise ConnectorError(f"format '{spec.format.value}' is not supported by arroyo-lite")
