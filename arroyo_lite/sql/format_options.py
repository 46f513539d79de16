"""Generic format options of a connection table: ``format`` (+ ``json.*``, ``avro.*``,
``parquet.*``), ``framing``, ``bad_data``, and the column shapes some formats require.

Arroyo's ``Format::from_opts``, ``Framing::from_opts`` and ``BadData::from_opts`` rules and
wording; a sub-option is consumed only when its parent is set, so a stray one is reported as
an unknown option by the caller.
"""

from __future__ import annotations

import difflib

import pyarrow as pa

from arroyo_lite.config import BadData, ColumnSpec, Format, FormatSpec, FramingSpec
from arroyo_lite.errors import SourcePosition, SqlError
from arroyo_lite.sql.options import OptionReader, OptionValue

#: Formats arroyo-lite can decode (Arroyo also has avro, parquet, debezium_json, protobuf).
DECODABLE = (Format.JSON, Format.RAW_STRING, Format.RAW_BYTES)
_FORMATS = {f.value: f for f in Format}
_TIMESTAMP_FORMATS = ("RFC3339", "UnixMillis", "unix_millis")


def read_format(reader: OptionReader) -> tuple[FormatSpec | None, OptionValue | None]:
    """``format`` and its sub-options (Arroyo's ``Format::from_opts``); with its option."""
    pulled = reader.pull_opt_str_with_option("format")
    if pulled is None:
        return None, None
    text, option = pulled
    if text == "protobuf":
        raise reader.error("Protobuf is not yet supported in CREATE TABLE statements", option)
    if text not in _FORMATS:
        close = difflib.get_close_matches(text, list(_FORMATS), n=1)
        raise reader.error(
            f"invalid format: 'unknown format '{text}''",
            option,
            hint=(f"did you mean '{close[0]}'? " if close else "")
            + "expected one of "
            + ", ".join(f"'{f}'" for f in _FORMATS),
        )
    fmt = _FORMATS[text]
    if fmt is Format.AVRO:
        for key in ("avro.confluent_schema_registry", "avro.raw_datums",
                    "avro.into_unstructured_json"):  # fmt: skip
            reader.pull_opt_bool(key)
        return FormatSpec(fmt), option
    if fmt is Format.PARQUET:
        reader.pull_opt_str("parquet.compression")
        reader.pull_opt_str("parquet.row_group_size")
        return FormatSpec(fmt), option
    if fmt not in (Format.JSON, Format.DEBEZIUM_JSON):
        return FormatSpec(fmt), option
    csr = reader.pull_opt_bool("json.confluent_schema_registry") or False
    include_schema_option = reader.get("json.include_schema")
    include_schema = reader.pull_opt_bool("json.include_schema") or False
    if csr and include_schema:
        raise reader.error(
            "invalid format: 'at most one of `json.confluent_schema_registry` and "
            "`json.include_schema` may be set'",
            include_schema_option,
        )
    unstructured = reader.pull_opt_bool("json.unstructured") or False
    ts = reader.pull_opt_str_with_option("json.timestamp_format")
    if ts is not None and ts[0] not in _TIMESTAMP_FORMATS:
        raise reader.error(
            "invalid format: 'invalid value for `json.timestamp_format`'",
            ts[1],
            hint="expected 'RFC3339', 'UnixMillis' or 'unix_millis' (case-sensitive)",
        )
    dec = reader.pull_opt_str_with_option("json.decimal_encoding")
    if dec is not None and dec[0] not in ("number", "string", "bytes"):
        raise reader.error(
            f"invalid format: 'invalid value for `json.decimal_encoding`: {dec[0]}'",
            dec[1],
            hint="expected 'number', 'string' or 'bytes'",
        )
    comp = reader.pull_opt_str_with_option("json.compression")
    if comp is not None and comp[0] != "uncompressed":
        raise reader.error(
            "'json.compression' is only supported for the filesystem connector", comp[1]
        )
    spec = FormatSpec(
        fmt,
        unstructured=unstructured,
        confluent_schema_registry=csr,
        include_schema=include_schema,
        timestamp_format="rfc3339" if ts is None or ts[0] == "RFC3339" else "unix_millis",
        decimal_encoding="number" if dec is None else dec[0],
    )
    return spec, option

def read_framing(reader: OptionReader) -> FramingSpec | None:
    """``framing`` and ``framing.newline.max_length`` (Arroyo's ``Framing::from_opts``)."""
    pulled = reader.pull_opt_str_with_option("framing")
    if pulled is None:
        return None
    method, option = pulled
    if method != "newline":
        raise reader.error(
            f"invalid framing: 'Unknown framing method '{method}''",
            option,
            hint="the only framing method is 'newline'",
        )
    return FramingSpec("newline", reader.pull_opt_u64("framing.newline.max_length"))

def read_bad_data(reader: OptionReader) -> BadData:
    """``bad_data``: ``fail`` (default) or ``drop``."""
    pulled = reader.pull_opt_str_with_option("bad_data")
    if pulled is None:
        return BadData.FAIL
    if pulled[0] not in ("drop", "fail"):
        raise reader.error(
            f"Invalid bad_data: 'invalid value for 'bad_data': `{pulled[0]}`; expected one "
            "of 'drop' or 'fail''",
            pulled[1],
            hint="bad_data is 'drop' or 'fail' (lower case)",
        )
    return BadData(pulled[0])

def check_shape(
    columns: list[ColumnSpec], fmt: FormatSpec | None, position: SourcePosition
) -> None:
    """Unique names; the single-column shapes of raw_string, unstructured JSON, raw_bytes."""
    physical = [c for c in columns if c.is_physical]
    seen: set[str] = set()
    # Arroyo checks the physical columns here and DataFusion the rest when planning.
    for column in columns:
        if column.name in seen:
            raise SqlError(
                "could not create connection schema: invalid field names in schema: Schema "
                f"error: Schema contains duplicate unqualified field name {column.name}",
                position=column.position,
            )
        seen.add(column.name)
    if fmt is None:
        return
    only = physical[0] if len(physical) == 1 and physical[0].name == "value" else None
    if fmt.format is Format.RAW_STRING and (
        only is None or only.data_type != pa.string() or only.is_json
    ):
        raise SqlError(
            "could not create connection schema: raw_string format requires a schema with "
            "a single field called `value` of type TEXT",
            position=position,
            hint="declare exactly one physical column: value TEXT",
        )
    if fmt.format is Format.JSON and fmt.unstructured and (only is None or not only.is_json):
        raise SqlError(
            "could not create connection schema: json format with unstructured flag enabled "
            "requires a schema with a single field called `value` of type JSON",
            position=position,
            hint="declare exactly one physical column: value JSON",
        )
    if fmt.format is Format.RAW_BYTES and (only is None or only.data_type != pa.binary()):
        # Arroyo only fails at run time; arroyo-lite checks at validation.
        raise SqlError(
            "could not create connection schema: raw_bytes format requires a schema with a "
            "single field called `value` of type BYTEA",
            position=position,
            hint="declare exactly one physical column: value BYTEA",
        )
