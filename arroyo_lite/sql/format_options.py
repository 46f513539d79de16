"""Generic format options of a connection table: ``format`` (+ ``json.*``, ``avro.*``,
``parquet.*``), ``framing``, ``bad_data``, and the column shapes some formats require.

Arroyo's ``Format::from_opts``, ``Framing::from_opts`` and ``BadData::from_opts`` rules and
wording; a sub-option is consumed only when its parent is set, so a stray one is reported as
an unknown option by the caller. Problems go through :meth:`OptionReader.report` (raised or
collected); a bad value falls back to "absent"/the default, and the sub-options of a bad
parent are dropped unchecked, so one mistake is reported once.
"""

from __future__ import annotations

from arroyo_lite.config import BadData, ColumnSpec, ColumnType, Format, FormatSpec, FramingSpec
from arroyo_lite.connectors.options import OptionReader, OptionValue
from arroyo_lite.errors import SourcePosition, SqlError, did_you_mean
from arroyo_lite.formats.decoders import DECODABLE

__all__ = ["DECODABLE", "check_shape", "read_bad_data", "read_format", "read_framing"]
_FORMATS = {f.value: f for f in Format}
_TIMESTAMP_FORMATS = ("RFC3339", "UnixMillis", "unix_millis")
_SUB_OPTION_PREFIXES = ("json.", "avro.", "parquet.", "protobuf.")


#: Sub-options arroyo-lite accepts (and ignores) for formats it cannot decode, by format: the
#: keys Arroyo's ``Format::from_opts`` reads for them, so they are not "unknown".
_IGNORED_SUB_OPTIONS: dict[Format, tuple[tuple[str, str], ...]] = {
    Format.AVRO: (
        ("avro.confluent_schema_registry", "pull_opt_bool"),
        ("avro.raw_datums", "pull_opt_bool"),
        ("avro.into_unstructured_json", "pull_opt_bool"),
    ),
    # (Format.PARQUET: its parquet.* keys are the filesystem sink's options, the one writer.)
}


def read_format(reader: OptionReader) -> tuple[FormatSpec | None, OptionValue | None]:
    """``format`` and its sub-options (Arroyo's ``Format::from_opts``); with its option."""
    pulled = reader.pull_opt_str_with_option("format")
    if pulled is None:
        return None, None
    text, option = pulled
    if text == "protobuf" or text not in _FORMATS:
        _report_bad_format(reader, text, option)
        return None, option
    fmt = _FORMATS[text]
    for key, puller in _IGNORED_SUB_OPTIONS.get(fmt, ()):
        getattr(reader, puller)(key)
    if fmt not in (Format.JSON, Format.DEBEZIUM_JSON):
        return FormatSpec(fmt), option
    return _read_json(reader, fmt), option


def _report_bad_format(reader: OptionReader, text: str, option: OptionValue) -> None:
    """An unknown (or unsupported) format; its sub-options are dropped, not called unknown:
    which of them would be valid is unknown."""
    if text == "protobuf":
        error = reader.error("Protobuf is not yet supported in CREATE TABLE statements", option)
    else:
        hint = did_you_mean(text, _FORMATS)
        error = reader.error(
            f"invalid format: 'unknown format '{text}''",
            option,
            hint=(f"{hint} " if hint else "")
            + "expected one of "
            + ", ".join(f"'{f}'" for f in _FORMATS),
        )
    reader.report(error, "format")
    for key in reader.remaining():
        if key.startswith(_SUB_OPTION_PREFIXES):
            reader.pull(key)


def _read_json(reader: OptionReader, fmt: Format) -> FormatSpec:
    """The ``json.*`` sub-options of ``json`` and ``debezium_json``."""
    csr = reader.pull_opt_bool("json.confluent_schema_registry") or False
    include_schema_option = reader.get("json.include_schema")
    include_schema = reader.pull_opt_bool("json.include_schema") or False
    if csr and include_schema:
        reader.report(
            reader.error(
                "invalid format: 'at most one of `json.confluent_schema_registry` and "
                "`json.include_schema` may be set'",
                include_schema_option,
            ),
            "json.include_schema",
        )
    unstructured = reader.pull_opt_bool("json.unstructured") or False
    ts = _pull_choice(
        reader, "json.timestamp_format", _TIMESTAMP_FORMATS,
        "invalid format: 'invalid value for `json.timestamp_format`'",
    )  # fmt: skip
    dec = _pull_choice(
        reader, "json.decimal_encoding", ("number", "string", "bytes"),
        "invalid format: 'invalid value for `json.decimal_encoding`: {value}'",
    )  # fmt: skip
    comp = reader.pull_opt_str_with_option("json.compression")
    if comp is not None and comp[0] != "uncompressed":
        reader.report(
            reader.error(
                "'json.compression' is only supported for the filesystem connector", comp[1]
            ),
            "json.compression",
        )
    return FormatSpec(
        fmt,
        unstructured=unstructured,
        confluent_schema_registry=csr,
        include_schema=include_schema,
        # Arroyo's default: RFC 3339 text, but Unix milliseconds for debezium_json.
        timestamp_format=(
            ("unix_millis" if fmt is Format.DEBEZIUM_JSON else "rfc3339")
            if ts is None
            else "rfc3339" if ts == "RFC3339" else "unix_millis"
        ),
        decimal_encoding="number" if dec is None else dec,
    )


def _pull_choice(
    reader: OptionReader, key: str, accepted: tuple[str, ...], message: str
) -> str | None:
    """A string option that must be one of ``accepted`` (case-sensitive); a bad one is
    reported with ``message`` (``{value}``: the value given) and counts as absent. The hint
    lists ``accepted``, noting case where it has capitals."""
    pulled = reader.pull_opt_str_with_option(key)
    if pulled is None:
        return None
    value, option = pulled
    if value in accepted:
        return value
    shown = [f"'{a}'" for a in accepted]
    reader.report(
        reader.error(
            message.format(value=value),
            option,
            hint=f"expected {', '.join(shown[:-1])} or {shown[-1]}"
            + (" (case-sensitive)" if any(not a.islower() for a in accepted) else ""),
        ),
        key,
    )
    return None


def read_framing(reader: OptionReader) -> FramingSpec | None:
    """``framing`` and ``framing.newline.max_length`` (Arroyo's ``Framing::from_opts``)."""
    pulled = reader.pull_opt_str_with_option("framing")
    if pulled is None:
        return None
    method, option = pulled
    if method != "newline":
        reader.report(
            reader.error(
                f"invalid framing: 'Unknown framing method '{method}''",
                option,
                hint="the only framing method is 'newline'",
            ),
            "framing",
        )
        reader.pull("framing.newline.max_length")  # belongs to the bad framing: not unknown
        return None
    return FramingSpec("newline", reader.pull_opt_u64("framing.newline.max_length"))


def read_bad_data(reader: OptionReader) -> BadData:
    """``bad_data``: ``fail`` (default) or ``drop``."""
    pulled = reader.pull_opt_str_with_option("bad_data")
    if pulled is None:
        return BadData.FAIL
    if pulled[0] not in ("drop", "fail"):
        reader.report(
            reader.error(
                f"Invalid bad_data: 'invalid value for 'bad_data': `{pulled[0]}`; expected one "
                "of 'drop' or 'fail''",
                pulled[1],
                hint="bad_data is 'drop' or 'fail' (lower case)",
            ),
            "bad_data",
        )
        return BadData.FAIL
    return BadData(pulled[0])


def check_shape(
    columns: list[ColumnSpec], fmt: FormatSpec | None, position: SourcePosition
) -> list[SqlError]:
    """Unique names; the single-column shapes of raw_string, unstructured JSON, raw_bytes.

    Returns every problem (each repeated name, then the shape of the format).
    """
    errors = []
    physical = [c for c in columns if c.is_physical]
    seen: set[str] = set()
    # Arroyo checks the physical columns here and DataFusion the rest when planning.
    for column in columns:
        if column.name in seen:
            errors.append(
                SqlError(
                    "could not create connection schema: invalid field names in schema: Schema "
                    f"error: Schema contains duplicate unqualified field name {column.name}",
                    position=column.position,
                )
            )
        seen.add(column.name)
    if fmt is None or errors:
        return errors  # (a repeated name also breaks the single-column shapes: said once)
    only = physical[0] if len(physical) == 1 and physical[0].name == "value" else None
    if fmt.format is Format.RAW_STRING and (
        only is None or only.column_type != ColumnType("string") or only.is_json
    ):
        errors.append(
            SqlError(
                "could not create connection schema: raw_string format requires a schema with "
                "a single field called `value` of type TEXT",
                position=position,
                hint="declare exactly one physical column: value TEXT",
            )
        )
    if fmt.format is Format.JSON and fmt.unstructured and (only is None or not only.is_json):
        errors.append(
            SqlError(
                "could not create connection schema: json format with unstructured flag enabled "
                "requires a schema with a single field called `value` of type JSON",
                position=position,
                hint="declare exactly one physical column: value JSON",
            )
        )
    binary = ColumnType("binary")
    if fmt.format is Format.RAW_BYTES and (only is None or only.column_type != binary):
        # Arroyo only fails at run time; arroyo-lite checks at validation.
        errors.append(
            SqlError(
                "could not create connection schema: raw_bytes format requires a schema with a "
                "single field called `value` of type BYTEA",
                position=position,
                hint="declare exactly one physical column: value BYTEA",
            )
        )
    return errors
