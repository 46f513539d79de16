"""``CREATE TABLE`` -> :class:`~arroyo_lite.config.TableConfig`, in Arroyo's processing order.

The order follows Arroyo's ``Table::try_from_statement`` (reference §2.3): connector (memory
tables when absent), table constraints, connector lookup, format, framing, column types,
bad_data, schema shape, metadata columns, the connector's own options, event time and
watermark, idle time, our ``retention.*`` extension, then leftover keys. A problem stops the
table at that step (as in Arroyo), except column problems, which are all collected first.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import replace

import pyarrow as pa
from sqlglot import exp

from arroyo_lite.config import (
    BadData,
    ColumnSpec,
    Format,
    FormatSpec,
    FramingSpec,
    RetentionSpec,
    TableConfig,
    TableKind,
)
from arroyo_lite.connectors.base import Connector
from arroyo_lite.errors import ConnectorError, SourcePosition, SqlError
from arroyo_lite.sql.columns import ColumnsResult, node_position, read_columns
from arroyo_lite.sql.generic_options import GENERIC_KEYS
from arroyo_lite.sql.options import OptionReader, OptionValue
from arroyo_lite.sql.parse import ParsedStatement
from arroyo_lite.sql.source import SourceText
from arroyo_lite.sql.types import connection_type_error

#: Formats arroyo-lite can decode (Arroyo also has avro, parquet, debezium_json, protobuf).
DECODABLE = (Format.JSON, Format.RAW_STRING, Format.RAW_BYTES)
_FORMATS = {f.value: f for f in Format}
_TIMESTAMP_FORMATS = ("RFC3339", "UnixMillis", "unix_millis")
DEFAULT_IDLE_MICROS = 300_000_000

#: ``name -> Connector``, raising :class:`ConnectorError` for unknown names (the registry).
ConnectorLookup = Callable[[str], Connector]


def build_table(
    parsed: ParsedStatement,
    source: SourceText,
    env: Mapping[str, str],
    lookup: ConnectorLookup,
) -> tuple[TableConfig | None, list[SqlError]]:
    """Build one table; returns the config (``None`` if invalid) and every problem found."""
    create = parsed.expression
    assert isinstance(create, exp.Create)
    schema = create.this if isinstance(create.this, exp.Schema) else None
    table_node = schema.this if schema is not None else create.this
    name = table_node.name
    name_position = node_position(table_node, source) or parsed.position
    temporary = any(
        isinstance(p, exp.TemporaryProperty)
        for p in (create.args.get("properties") or exp.Properties()).expressions
    )
    reader = OptionReader(
        parsed.options or [], clause_position=parsed.with_position or name_position, env=env
    )
    builder = _TableBuilder(name, name_position, reader, source, lookup)
    cols = read_columns(schema, source, name_position) if schema is not None else ColumnsResult()
    try:
        table = builder.build(cols, temporary, has_columns=schema is not None)
    except SqlError as e:
        return None, [*cols.errors, e]
    if cols.errors:
        return None, cols.errors
    return table, []


class _TableBuilder:
    def __init__(
        self,
        name: str,
        position: SourcePosition,
        reader: OptionReader,
        source: SourceText,
        lookup: ConnectorLookup,
    ) -> None:
        self.name = name
        self.position = position
        self.reader = reader
        self.source = source
        self.lookup = lookup
        self.format_option: OptionValue | None = None
        self.option_positions = {
            k: p
            for k in reader.remaining()
            if (o := reader.get(k)) is not None and (p := o.key_position) is not None
        }

    def build(self, cols: ColumnsResult, temporary: bool, *, has_columns: bool) -> TableConfig:
        reader = self.reader
        connector_option = reader.get("connector")
        connector_name = reader.pull_opt_str("connector")
        if connector_name is None or connector_name == "memory":
            return self._memory(cols, temporary)
        profile = reader.pull_opt_str_with_option("connection_profile")
        if profile is not None:
            raise reader.error(
                f"connection profile '{profile[0]}' not found",
                profile[1],
                hint="arroyo-lite has no connection profiles; put the options in the WITH clause",
            )
        try:
            connector = self.lookup(connector_name)
        except ConnectorError as e:
            raise reader.error(e.message, connector_option, hint=e.hint) from e
        if cols.errors:
            # Types are broken: options checks would only add noise.
            raise cols.errors.pop(0)
        fmt = self._format()
        framing = self._framing()
        kind = self._kind(connector, temporary)
        if fmt is not None and fmt.format is Format.DEBEZIUM_JSON and cols.generated:
            raise SqlError("can't use virtual fields with debezium format", position=self.position)
        columns = list(cols.columns)
        if (not has_columns or not columns) and kind is not TableKind.SINK:
            # (A sink without columns takes its schema from what is inserted, as in Arroyo.)
            defaults = connector.default_columns()
            if defaults is None:
                raise SqlError(
                    f"table '{self.name}' declares no columns, and connector "
                    f"'{connector.name}' has no default schema",
                    position=self.position,
                    hint="declare the columns to read, e.g. CREATE TABLE t (value TEXT) WITH (...)",
                )
            columns = list(defaults)
        for column in columns:
            sql_type = cols.types.get(column.name)
            if column.generated is None and sql_type is not None and sql_type.memory_only:
                raise SqlError(
                    connection_type_error(column.name, sql_type),
                    position=column.position,
                    hint="use INT, BIGINT, DOUBLE, TEXT, TIMESTAMP or another connection type",
                )
        bad_data = self._bad_data()
        self._check_shape(columns, fmt)
        self._check_virtual(columns, cols)
        self._check_metadata(columns, connector)
        if fmt is not None and fmt.format not in DECODABLE:
            # Arroyo accepts these; arroyo-lite has no decoder for them. Checked after
            # Arroyo's own rules so that its messages come first.
            raise reader.error(
                f"format '{fmt.format.value}' is not supported by arroyo-lite",
                self.format_option,
                hint="arroyo-lite decodes 'json', 'raw_string' and 'raw_bytes'",
            )
        table = TableConfig(
            name=self.name,
            kind=kind,
            columns=tuple(columns),
            connector=connector.name,
            format=fmt,
            framing=framing,
            bad_data=bad_data,
            position=self.position,
            option_positions=self.option_positions,
        )
        connector_options = connector.parse_options(reader, table)
        reader.know(*(connector.options_schema().get("properties") or {}))
        event_time = self._event_time(table, cols)
        idle = reader.pull_opt_i64("idle_micros")
        idle_micros = DEFAULT_IDLE_MICROS if idle is None else (idle if idle > 0 else None)
        retention = self._retention()
        reader.check_leftovers(GENERIC_KEYS)
        return replace(
            table,
            connector_options=connector_options,
            watermark=cols.watermark,
            event_time_column=event_time,
            idle_micros=idle_micros,
            retention=retention,
        )

    # -- steps ---------------------------------------------------------------------------

    def _memory(self, cols: ColumnsResult, temporary: bool) -> TableConfig:
        reader = self.reader
        if len(reader):
            first = reader.get(reader.remaining()[0])
            raise SqlError(
                "Memory tables do not allow with options; to create a connection table set "
                "the 'connector' option",
                position=first.key_position if first else reader.clause_position,
                hint="add connector = 'polling_http' (or 'impulse') to the WITH clause",
            )
        if cols.errors:
            raise cols.errors.pop(0)
        for column in cols.columns:
            if column.generated is not None or column.metadata_key is not None:
                raise SqlError(
                    f"memory table column '{column.name}' cannot be virtual or metadata",
                    position=column.position,
                )
        if cols.watermark is not None:
            raise SqlError(
                "memory tables do not support WATERMARK FOR", position=cols.watermark_position
            )
        if temporary:
            raise SqlError(
                "Cannot have a temporary table without a connector",
                position=self.position,
                hint="temporary tables are lookup tables and need a connector",
            )
        return TableConfig(
            name=self.name,
            kind=TableKind.MEMORY,
            columns=tuple(cols.columns),
            idle_micros=None,
            position=self.position,
        )

    def _format(self) -> FormatSpec | None:
        reader = self.reader
        pulled = reader.pull_opt_str_with_option("format")
        if pulled is None:
            return None
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
        self.format_option = option
        if fmt is Format.AVRO:
            for key in ("avro.confluent_schema_registry", "avro.raw_datums",
                        "avro.into_unstructured_json"):  # fmt: skip
                reader.pull_opt_bool(key)
            return FormatSpec(fmt)
        if fmt is Format.PARQUET:
            reader.pull_opt_str("parquet.compression")
            reader.pull_opt_str("parquet.row_group_size")
            return FormatSpec(fmt)
        if fmt not in (Format.JSON, Format.DEBEZIUM_JSON):
            return FormatSpec(fmt)
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
        return FormatSpec(
            fmt,
            unstructured=unstructured,
            confluent_schema_registry=csr,
            include_schema=include_schema,
            timestamp_format="rfc3339" if ts is None or ts[0] == "RFC3339" else "unix_millis",
            decimal_encoding="number" if dec is None else dec[0],
        )

    def _framing(self) -> FramingSpec | None:
        reader = self.reader
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

    def _kind(self, connector: Connector, temporary: bool) -> TableKind:
        if temporary:
            raise SqlError(
                f"connector '{connector.name}' does not support lookup tables "
                "(CREATE TEMPORARY TABLE)",
                position=self.position,
                hint="use CREATE TABLE",
            )
        if connector.source and connector.sink:
            pulled = self.reader.pull_opt_str_with_option("type")
            if pulled is None:
                raise SqlError(
                    "required option 'type' not set",
                    position=self.reader.clause_position,
                    hint="add type = 'source' or type = 'sink'",
                )
            if pulled[0] not in ("source", "sink"):
                raise self.reader.error(
                    f"invalid value for 'type': '{pulled[0]}'",
                    pulled[1],
                    hint="expected 'source' or 'sink'",
                )
            return TableKind(pulled[0])
        return TableKind.SOURCE if connector.source else TableKind.SINK

    def _bad_data(self) -> BadData:
        pulled = self.reader.pull_opt_str_with_option("bad_data")
        if pulled is None:
            return BadData.FAIL
        if pulled[0] not in ("drop", "fail"):
            raise self.reader.error(
                f"Invalid bad_data: 'invalid value for 'bad_data': `{pulled[0]}`; expected one "
                "of 'drop' or 'fail''",
                pulled[1],
                hint="bad_data is 'drop' or 'fail' (lower case)",
            )
        return BadData(pulled[0])

    def _check_shape(self, columns: list[ColumnSpec], fmt: FormatSpec | None) -> None:
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
                position=self.position,
                hint="declare exactly one physical column: value TEXT",
            )
        if fmt.format is Format.JSON and fmt.unstructured and (only is None or not only.is_json):
            raise SqlError(
                "could not create connection schema: json format with unstructured flag enabled "
                "requires a schema with a single field called `value` of type JSON",
                position=self.position,
                hint="declare exactly one physical column: value JSON",
            )
        if fmt.format is Format.RAW_BYTES and (only is None or only.data_type != pa.binary()):
            # Arroyo only fails at run time; arroyo-lite checks at validation.
            raise SqlError(
                "could not create connection schema: raw_bytes format requires a schema with a "
                "single field called `value` of type BYTEA",
                position=self.position,
                hint="declare exactly one physical column: value BYTEA",
            )

    def _check_virtual(self, columns: list[ColumnSpec], cols: ColumnsResult) -> None:
        physical = {c.name for c in columns if c.is_physical}
        for column in columns:
            node = cols.generated.get(column.name)
            if node is None:
                continue
            for ref in node.find_all(exp.Column):
                if ref.table or ref.name in physical:
                    continue
                raise SqlError(
                    f"'{ref.name}' not found",
                    position=node_position(ref, self.source) or column.position,
                    hint="virtual columns can use the table's physical columns: "
                    + ", ".join(sorted(physical)),
                )

    def _check_metadata(self, columns: list[ColumnSpec], connector: Connector) -> None:
        fields = connector.metadata_fields()
        for column in columns:
            if column.metadata_key is None:
                continue
            expected = fields.get(column.metadata_key)
            if expected is None:
                raise SqlError(
                    f"unknown metadata field '{column.metadata_key}' for {connector.name} "
                    f"connector '{self.name}'",
                    position=column.position,
                    hint="available: " + ", ".join(sorted(fields))
                    if fields
                    else f"connector '{connector.name}' supplies no metadata fields",
                )
            if expected.upper() != column.sql_type.upper():
                raise SqlError(
                    f"incorrect data type for metadata field '{column.metadata_key}'; expected "
                    f"{expected.upper()}, but found {column.sql_type}",
                    position=column.position,
                )

    def _event_time(self, table: TableConfig, cols: ColumnsResult) -> str | None:
        reader = self.reader
        field_option = reader.get("event_time_field")
        event_time_field = reader.pull_opt_field("event_time_field")
        watermark_field = reader.pull_opt_field("watermark_field")
        by_name = {c.name: c for c in table.columns}
        _ = watermark_field  # deprecated; the watermark follows the event time column
        if cols.watermark is not None:
            column = by_name.get(cols.watermark.column)
            position = cols.watermark_position
            if column is None:
                raise SqlError(
                    f"WATERMARK FOR field `{cols.watermark.column}` does not exist",
                    position=position,
                    hint="columns: " + ", ".join(by_name),
                )
            self._check_timestamp(column, position, "WATERMARK FOR field")
            return column.name
        if event_time_field is not None:
            column = by_name.get(event_time_field)
            position = reader.error("", field_option).position
            if column is None:
                raise SqlError(
                    f"event_time_field '{event_time_field}' does not exist",
                    position=position,
                    hint="columns: " + ", ".join(by_name),
                )
            self._check_timestamp(column, position, "event_time_field")
            return column.name
        return None

    @staticmethod
    def _check_timestamp(
        column: ColumnSpec, position: SourcePosition | None, what: str
    ) -> None:
        if not pa.types.is_timestamp(column.data_type) or column.data_type.tz is not None:
            raise SqlError(
                f'{what} `"{column.name}"` has type {column.sql_type}, but expected TIMESTAMP',
                position=position,
                hint="the event time column must be a TIMESTAMP",
            )

    def _retention(self) -> RetentionSpec:
        max_rows = self.reader.pull_opt_u64("retention.max_rows")
        max_age = self.reader.pull_opt_duration("retention.max_age")
        return RetentionSpec(max_rows=max_rows, max_age_seconds=max_age)
