"""Decoding formats: response body bytes -> ``pa.RecordBatch`` with a table's schema.

Public API: :func:`make_decoder` builds the :class:`Decoder` for a table (from the one table of
decodable formats, :data:`.decoders.DECODERS`); its
:meth:`Decoder.decode` returns a :class:`DecodeResult`. Modules: ``result`` (the contract),
``framing`` (body -> messages), ``raw`` (raw_string, raw_bytes, unstructured JSON),
``json_decoder`` (structured JSON: picks a path per body), ``json_fast`` (pyarrow's native
reader), ``json_slow`` and ``json_values`` (the exact rules, value by value), ``json_text``
(JSON column text via DuckDB), ``virtual`` (generated columns), ``output`` (virtual columns,
event time, ``_timestamp``), ``duck`` (the decoders' shared in-memory DuckDB).

Decoding rules, for users (Arroyo's, except where marked *arroyo-lite*):

* Framing: none = the whole body is one message; ``framing = 'newline'`` splits on ``\n``
  only (``\r`` kept), no message after a final ``\n``, empty lines in the middle are empty
  messages, ``framing.newline.max_length`` cuts each line (the rest is dropped). An empty
  body gives no row.
* ``raw_string`` and ``json`` + ``json.unstructured``: ``value`` is each message as lossy
  UTF-8 text, not validated; ``raw_bytes``: ``value BYTEA`` holds the bytes.
* Structured ``json``: an object is a row; *arroyo-lite*: a top-level array gives one row
  per element, several whitespace-separated values in one message give one row each, and a
  blank message gives no row. Extra keys are ignored, missing keys are NULL, names are
  case-sensitive. Integers take numbers (``1.7`` -> 1) or numeric strings; floats take
  numbers or numeric strings; TEXT only strings; BOOLEAN only ``true``/``false``;
  TIMESTAMP(p) an RFC 3339 / ISO 8601 string (``T`` or space, optional fraction, ``Z`` or
  offset, naive = UTC, date only allowed) or a number counted in the column's unit; DECIMAL
  a number or string (extra digits truncated); BYTEA a base64 string; LIST an array; STRUCT
  an object; JSON any value, stored as compact JSON text (``null`` for an explicit null).
* Bad records: ``bad_data = 'fail'`` stops the table with ``invalid JSON: ...`` or ``JSON
  does not match schema: field 'x': expected Int64, got string (length: 5)`` (sizes, never
  values); ``'drop'`` keeps the good rows, counts the bad ones and reports ``Some records
  could not be deserialized from JSON`` with the first details. A NOT NULL column that is
  missing or null, and a NULL event time, are bad records too.
* Any bytes: a body is rows or bad data, never an exception other than FatalSourceError
  (:class:`Decoder` turns an unforeseen one into bad data). *arroyo-lite*: a body with more
  than ``max_records_per_body`` records is bad data as a whole, refused before per-record work.
* Virtual columns are computed by DuckDB over each batch; a row whose expression fails is a
  bad record. ``_timestamp`` is the arrival time, or the WATERMARK FOR / event-time column.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from arroyo_lite.config import Format, TableConfig
from arroyo_lite.errors import ConnectorError
from arroyo_lite.formats.decoders import DECODERS

if TYPE_CHECKING:
    from arroyo_lite.formats.records import RecordPath
    from arroyo_lite.formats.result import Decoder, DecodeResult

__all__ = ["DecodeResult", "Decoder", "make_decoder", "split_messages"]


def make_decoder(config: TableConfig, *, records: RecordPath | None = None) -> Decoder:
    """The decoder for ``config`` (a validated source table with a ``format``).

    ``records`` selects the records inside each body (:mod:`.records`); it needs structured
    ``json`` without framing (a :class:`ConnectorError` otherwise: the connector checks this
    when validating, so the error is a safety net).

    Raises :class:`ConnectorError` for a format arroyo-lite cannot decode (avro, parquet,
    debezium_json), and :class:`arroyo_lite.errors.SqlError` when a virtual column's expression
    cannot be translated to DuckDB.
    """
    spec = config.format
    if spec is None:
        raise ConnectorError(f"table '{config.name}' has no format to decode")
    if records is not None:
        if spec.format is not Format.JSON or spec.unstructured or config.framing is not None:
            raise ConnectorError(
                f"table '{config.name}': a record path needs format = 'json' (structured, "
                "without framing)"
            )
        from arroyo_lite.formats.json_decoder import JsonDecoder

        return JsonDecoder(config, records=records)
    factory = DECODERS.get(spec.format)
    if factory is None:
        raise ConnectorError(f"format '{spec.format.value}' is not supported by arroyo-lite")
    return factory(config)


def __getattr__(name: str) -> Any:
    # Loaded on first use: framing needs pyarrow.compute, which validating SQL does not
    # (the front end imports .decoders, so this package, while checking formats); nor does
    # it need the decoders' contract (.result), which a run of tables that decode nothing
    # (impulse) never imports either.
    if name == "split_messages":
        from arroyo_lite.formats.framing import split_messages

        return split_messages
    if name in ("Decoder", "DecodeResult"):
        from arroyo_lite.formats import result

        return getattr(result, name)
    raise AttributeError(f"module 'arroyo_lite.formats' has no attribute '{name}'")
