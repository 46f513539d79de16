"""``CREATE TABLE`` -> :class:`~arroyo_lite.config.TableConfig`, in Arroyo's processing order.

The order follows Arroyo's ``Table::try_from_statement`` (reference §2.3): connector (memory
tables when absent), table constraints, connector lookup, format, framing, column types,
bad_data, schema shape, metadata columns, the connector's own options, event time and
watermark, idle time, our ``retention.*`` extension, then leftover keys. Unlike Arroyo, which
stops at the first problem, every problem is collected (see :class:`_TableBuilder`); only an
unknown connector (or a non-string ``connector``) ends the table's checks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any

from sqlglot import errors as sqlglot_errors
from sqlglot import exp

from arroyo_lite.config import (
    DEFAULT_MAX_RECORDS_PER_BODY,
    ColumnSpec,
    Format,
    FormatSpec,
    RetentionSpec,
    TableConfig,
    TableKind,
)
from arroyo_lite.connectors.base import Connector
from arroyo_lite.connectors.options import MissingOptionError, OptionReader, OptionValue
from arroyo_lite.errors import ConnectorError, SourcePosition, SqlError, did_you_mean
from arroyo_lite.formats.decoders import quoted
from arroyo_lite.formats.encodable import ENCODABLE
from arroyo_lite.sql.columns import ColumnsResult, node_position, read_columns
from arroyo_lite.sql.dialect import Arroyo
from arroyo_lite.sql.expr_types import infer
from arroyo_lite.sql.format_options import (
    DECODABLE,
    check_shape,
    read_bad_data,
    read_format,
    read_framing,
)
from arroyo_lite.sql.generic_options import GENERIC_KEYS
from arroyo_lite.sql.parse import ParsedStatement
from arroyo_lite.sql.source import SourceText
from arroyo_lite.sql.types import TypeError_, connection_type_error, convert

_AS = re.compile(r"\s+AS\s+", re.IGNORECASE)

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
        parsed.options or [],
        clause_position=parsed.with_position or name_position,
        env=env,
        collect=True,
    )
    builder = _TableBuilder(name, name_position, reader, source, lookup)
    cols = read_columns(schema, source, name_position) if schema is not None else ColumnsResult()
    try:
        table = builder.build(cols, temporary, has_columns=schema is not None)
    except SqlError as e:
        # A problem after which nothing more can be checked (e.g. an unknown connector).
        reader.report(e)
        table = None
    errors = [*cols.errors, *reader.errors]
    return (None, errors) if errors else (table, [])


class _TableBuilder:
    """Runs the checks of one table in Arroyo's order, recording every problem on the
    (collecting) reader. A check whose input was reported bad is skipped, so one mistake
    gives one error: a bad option value counts as absent, columns with type errors stop
    the column-shape checks, a connector that raised stops the unknown-key check for the
    keys it declares."""

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

    def report(self, error: SqlError) -> None:
        self.reader.report(error)

    def build(self, cols: ColumnsResult, temporary: bool, *, has_columns: bool) -> TableConfig:
        """The table config; problems are recorded on the reader (the result is then only
        a partial config to be discarded). Raises only when nothing more can be checked.

        Each line is one of Arroyo's planning steps, in Arroyo's order (module docstring).
        """
        connector = self._connector()
        if connector is None:
            return self._memory(cols, temporary)
        # Columns with type problems (reported by read_columns) are missing from
        # cols.columns: checks of the column set would only report their absence again.
        columns_ok = not cols.errors
        fmt, self.format_option = read_format(self.reader)
        framing = read_framing(self.reader)
        kind = self._kind(connector, temporary)
        self._check_debezium_virtual(fmt, cols)
        columns, columns_ok = self._columns(connector, kind, cols, columns_ok, has_columns)
        self._check_connection_types(columns, cols)
        bad_data = read_bad_data(self.reader)
        if columns_ok:
            self._check_shape(columns, fmt, cols)
        self._check_metadata(columns, connector)
        self._check_decodable(fmt, connector, kind)
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
        connector_options, keys_known = self._connector_options(connector, table)
        event_time = self._event_time_if_checkable(table, cols, columns_ok)
        idle_micros = self._idle_micros()
        retention = self._retention()
        max_records = self._max_records()
        if keys_known:
            self.reader.check_leftovers(GENERIC_KEYS)
        if columns_ok:
            self._check_debezium_key(kind, fmt, columns)
        return replace(
            table,
            connector_options=connector_options,
            watermark=cols.watermark,
            event_time_column=event_time,
            idle_micros=idle_micros,
            retention=retention,
            max_records_per_body=max_records,
        )

    # -- steps ---------------------------------------------------------------------------

    def _connector(self) -> Connector | None:
        """The table's connector, or ``None`` for a memory table (no ``connector``, or
        ``'memory'``). Raises when ``connector`` is invalid or names no known connector:
        nothing else can be checked then."""
        reader = self.reader
        connector_option = reader.get("connector")
        connector_name = reader.pull_opt_str("connector")
        if reader.is_invalid("connector"):
            raise reader.errors[-1]
        if connector_name is None or connector_name == "memory":
            return None
        profile = reader.pull_opt_str_with_option("connection_profile")
        if profile is not None:
            self.report(
                reader.error(
                    f"connection profile '{profile[0]}' not found",
                    profile[1],
                    hint="arroyo-lite has no connection profiles; put the options in the WITH "
                    "clause",
                )
            )
        try:
            return self.lookup(connector_name)
        except ConnectorError as e:
            raise reader.error(e.message, connector_option, hint=e.hint) from e

    def _check_debezium_virtual(self, fmt: FormatSpec | None, cols: ColumnsResult) -> None:
        if fmt is not None and fmt.format is Format.DEBEZIUM_JSON and cols.generated:
            self.report(
                SqlError("can't use virtual fields with debezium format", position=self.position)
            )

    def _check_debezium_key(
        self, kind: TableKind, fmt: FormatSpec | None, columns: list[ColumnSpec]
    ) -> None:
        """A ``debezium_json`` source needs a key to apply its changes by (Arroyo checks it
        last, after the unknown options: ``crates/arroyo-planner/src/tables.rs``)."""
        if kind is not TableKind.SOURCE or fmt is None or fmt.format is not Format.DEBEZIUM_JSON:
            return
        if any(c.primary_key for c in columns):
            return
        example = next((c.name for c in columns if not c.is_virtual), "id")
        self.report(
            self.reader.error(
                "Debezium source must have at least one PRIMARY KEY field",
                self.format_option,
                hint=f"add PRIMARY KEY to the column(s) that identify a row, e.g. "
                f"`{example} <type> PRIMARY KEY`",
            )
        )

    def _columns(
        self,
        connector: Connector,
        kind: TableKind,
        cols: ColumnsResult,
        columns_ok: bool,
        has_columns: bool,
    ) -> tuple[list[ColumnSpec], bool]:
        """The table's columns (the connector's default schema when none are declared) and
        whether the column set can still be checked."""
        columns = list(cols.columns)
        if not columns_ok or (has_columns and columns) or kind is TableKind.SINK:
            # (A sink without columns takes its schema from what is inserted, as in Arroyo.)
            return columns, columns_ok
        defaults = connector.default_columns()
        if defaults is not None:
            return list(defaults), columns_ok
        self.report(
            SqlError(
                f"table '{self.name}' declares no columns, and connector "
                f"'{connector.name}' has no default schema",
                position=self.position,
                hint="declare the columns to read, e.g. CREATE TABLE t (value TEXT) WITH (...)",
            )
        )
        return columns, False

    def _check_connection_types(self, columns: list[ColumnSpec], cols: ColumnsResult) -> None:
        """Stored columns of a connection table need a type a connector can carry."""
        for column in columns:
            sql_type = cols.types.get(column.name)
            if column.generated is None and sql_type is not None and sql_type.memory_only:
                self.report(
                    SqlError(
                        connection_type_error(column.name, sql_type),
                        position=column.position,
                        hint="use INT, BIGINT, DOUBLE, TEXT, TIMESTAMP or another connection type",
                    )
                )

    def _check_shape(
        self, columns: list[ColumnSpec], fmt: FormatSpec | None, cols: ColumnsResult
    ) -> None:
        """The schema shape the format needs, then the virtual columns' expressions."""
        for error in check_shape(columns, fmt, self.position):
            self.report(error)
        self._check_virtual(columns, cols)

    def _check_decodable(
        self, fmt: FormatSpec | None, connector: Connector, kind: TableKind
    ) -> None:
        """A source's format must have a decoder; a sink's an encoder, or be one the sink
        writes itself (the filesystem sink's parquet)."""
        if kind is TableKind.SINK:
            if fmt is None or fmt.format in connector.sink_formats:
                return
            if fmt.format not in ENCODABLE:
                known = ", ".join(f"'{f.value}'" for f in ENCODABLE)
                self.report(
                    self.reader.error(
                        f"format '{fmt.format.value}' cannot be written by arroyo-lite sinks",
                        self.format_option,
                        hint=f"arroyo-lite sinks write {known}",
                    )
                )
            return
        if fmt is not None and fmt.format not in DECODABLE:
            # Arroyo accepts these; arroyo-lite has no decoder for them. Checked after
            # Arroyo's own rules so that its messages come first.
            self.report(
                self.reader.error(
                    f"format '{fmt.format.value}' is not supported by arroyo-lite",
                    self.format_option,
                    hint=f"arroyo-lite decodes {quoted()}",
                )
            )

    def _connector_options(self, connector: Connector, table: TableConfig) -> tuple[Any, bool]:
        """The connector's typed options (``None`` if it raised), and whether the keys left
        over afterwards are known to be unknown (not so for a connector without an options
        schema that stopped early)."""
        reader = self.reader
        connector_keys = tuple(connector.options_schema().get("properties") or {})
        reader.know(*connector_keys)
        try:
            return connector.parse_options(reader, table), True
        except SqlError as e:
            # A raised problem is one more (the reader keeps one copy of what it recorded).
            # Keys the connector did not get to are not "unknown": drop the declared ones.
            self.report(e)
            for key in reader.remaining():
                if key in connector_keys:
                    reader.pull(key)
            return None, bool(connector_keys)

    def _event_time_if_checkable(
        self, table: TableConfig, cols: ColumnsResult, columns_ok: bool
    ) -> str | None:
        if columns_ok:
            return self._event_time(table, cols)
        self.reader.pull("event_time_field")  # (checked against columns, which are broken)
        self.reader.pull("watermark_field")
        return None

    def _idle_micros(self) -> int | None:
        idle = self.reader.pull_opt_i64("idle_micros")
        return DEFAULT_IDLE_MICROS if idle is None else (idle if idle > 0 else None)

    def _memory(self, cols: ColumnsResult, temporary: bool) -> TableConfig:
        reader = self.reader
        if len(reader):
            first = reader.get(reader.remaining()[0])
            self.report(
                SqlError(
                    "Memory tables do not allow with options; to create a connection table set "
                    "the 'connector' option",
                    position=first.key_position if first else reader.clause_position,
                    hint="add connector = 'polling_http' (or 'impulse') to the WITH clause",
                )
            )
        for column in cols.columns:
            if column.generated is not None or column.metadata_key is not None:
                self.report(
                    SqlError(
                        f"memory table column '{column.name}' cannot be virtual or metadata",
                        position=column.position,
                    )
                )
        if cols.watermark is not None:
            self.report(
                SqlError(
                    "memory tables do not support WATERMARK FOR",
                    position=cols.watermark_position,
                )
            )
        if temporary:
            self.report(
                SqlError(
                    "Cannot have a temporary table without a connector",
                    position=self.position,
                    hint="temporary tables are lookup tables and need a connector",
                )
            )
        return TableConfig(
            name=self.name,
            kind=TableKind.MEMORY,
            columns=tuple(cols.columns),
            idle_micros=None,
            position=self.position,
        )

    def _kind(self, connector: Connector, temporary: bool) -> TableKind:
        default = TableKind.SOURCE if connector.source else TableKind.SINK
        if temporary:
            # The table's kind is not one this connector has: checking its options for
            # another kind would only report noise. Stop here.
            raise SqlError(
                f"connector '{connector.name}' does not support lookup tables "
                "(CREATE TEMPORARY TABLE)",
                position=self.position,
                hint="use CREATE TABLE",
            )
        if connector.source and connector.sink:
            pulled = self.reader.pull_opt_str_with_option("type")
            if pulled is None:
                if not self.reader.is_invalid("type"):
                    self.report(
                        MissingOptionError(
                            "required option 'type' not set",
                            key="type",
                            position=self.reader.clause_position,
                            hint="add type = 'source' or type = 'sink'",
                        )
                    )
                return default
            if pulled[0] not in ("source", "sink"):
                self.reader.report(
                    self.reader.error(
                        f"invalid value for 'type': '{pulled[0]}'",
                        pulled[1],
                        hint="expected 'source' or 'sink'",
                    ),
                    "type",
                )
                return default
            return TableKind(pulled[0])
        return default

    def _check_virtual(self, columns: list[ColumnSpec], cols: ColumnsResult) -> None:
        """Arroyo plans each virtual column over the non-virtual ones only
        (``schema_from_columns`` in ``crates/arroyo-planner/src/tables.rs``): one virtual
        column cannot use another."""
        stored = [c.name for c in columns if not c.is_virtual]
        for column in columns:
            node = cols.generated.get(column.name)
            if node is not None:
                self._check_references(node, stored, column.position, "a virtual column")

    def _check_references(
        self, node: exp.Expr, known: list[str], fallback: SourcePosition | None, what: str
    ) -> bool:
        """Report every column ``node`` uses that is not in ``known``, with DataFusion's
        diagnostic (``column 'x' not found``, which is what Arroyo shows); ``True`` if all
        are known."""
        ok = True
        for ref in node.find_all(exp.Column):
            if ref.table or ref.name in known:
                continue
            ok = False
            self.report(
                SqlError(
                    f"column '{ref.name}' not found",
                    position=node_position(ref, self.source) or fallback,
                    hint=(did_you_mean(ref.name, known) or "columns: " + ", ".join(known))
                    + f" ({what} can use only the table's non-virtual columns)",
                )
            )
        return ok

    def _check_metadata(self, columns: list[ColumnSpec], connector: Connector) -> None:
        """Each ``METADATA FROM 'key'`` names a field of the connector, of the same type
        (compared as Arrow types, as Arroyo; a ``prefix.*`` field is a family of keys)."""
        fields = connector.metadata_fields()
        for column in columns:
            key = column.metadata_key
            if key is None:
                continue
            expected = fields.get(key)
            if expected is None:
                expected = next(
                    (
                        kind
                        for name, kind in fields.items()
                        if name.endswith(".*") and key.startswith(name[:-1])
                        and len(key) > len(name) - 1
                    ),
                    None,
                )
            if expected is None:
                self.report(
                    SqlError(
                        f"unknown metadata field '{key}' for {connector.name} "
                        f"connector '{self.name}'",
                        position=column.position,
                        hint="available: " + ", ".join(sorted(fields))
                        if fields
                        else f"connector '{connector.name}' supplies no metadata fields",
                    )
                )
            elif not _same_type(expected, column):
                self.report(
                    SqlError(
                        f"incorrect data type for metadata field '{key}'; expected "
                        f"{expected.upper()}, but found {column.sql_type}",
                        position=column.position,
                        hint=f"declare it as {column.name} {expected.upper()} METADATA FROM "
                        f"'{key}'",
                    )
                )

    def _event_time(self, table: TableConfig, cols: ColumnsResult) -> str | None:
        reader = self.reader
        field_option = reader.get("event_time_field")
        event_time_field = reader.pull_opt_field("event_time_field")
        watermark_option = reader.get("watermark_field")
        watermark_field = reader.pull_opt_field("watermark_field")
        by_name = {c.name: c for c in table.columns}
        if watermark_field is not None and watermark_field not in by_name:
            self._no_such_column(
                f"watermark_field '{watermark_field}' does not exist",
                reader.error("", watermark_option).position,
                by_name,
            )
        if cols.watermark is not None:
            column = by_name.get(cols.watermark.column)
            position = cols.watermark_position
            if column is None:
                self._no_such_column(
                    f"WATERMARK FOR field `{cols.watermark.column}` does not exist",
                    position,
                    by_name,
                )
            else:
                self._check_timestamp(column, position, "WATERMARK FOR field")
            # Planned over the physical schema (ConnectorTable::from_options builds it with
            # physical_schema(), which leaves the virtual columns out).
            stored = {c.name: c for c in table.columns if not c.is_virtual}
            node = cols.watermark_node
            if node is not None and self._check_references(
                node, list(stored), position, "the WATERMARK FOR expression"
            ):
                self._check_watermark_expression(node, stored, position)
            return None if column is None else column.name
        if event_time_field is not None:
            column = by_name.get(event_time_field)
            position = reader.error("", field_option).position
            if column is None:
                self._no_such_column(
                    f"event_time_field '{event_time_field}' does not exist", position, by_name
                )
                return None
            self._check_timestamp(column, position, "event_time_field")
            return column.name
        return None

    def _no_such_column(
        self, message: str, position: SourcePosition | None, columns: Iterable[str]
    ) -> None:
        """Report ``message`` about a column the table does not declare, with the columns it
        does as the hint."""
        self.report(SqlError(message, position=position, hint="columns: " + ", ".join(columns)))

    def _check_watermark_expression(
        self, node: exp.Expr, by_name: dict[str, ColumnSpec], where: SourcePosition | None
    ) -> None:
        """Arroyo's two rules for ``WATERMARK FOR c AS expr``: a TIMESTAMP, never NULL.
        Shapes :func:`infer` cannot judge (function calls, ...) pass, as the planner decides."""
        data_type, nullable = infer(node, by_name)
        position = self._after_as(where) or node_position(node, self.source) or where
        if data_type is not None and not data_type.is_timestamp:
            self.report(
                SqlError(
                    "the type of the WATERMARK FOR expression must be TIMESTAMP, but was "
                    + data_type.debug_name,
                    position=position,
                    hint="e.g. WATERMARK FOR ts AS ts - INTERVAL '5' SECOND",
                )
            )
        elif nullable:
            self.report(
                SqlError(
                    "the type of the WATERMARK FOR expression must be NOT NULL",
                    position=position,
                    hint="declare the columns it reads NOT NULL",
                )
            )

    def _after_as(self, where: SourcePosition | None) -> SourcePosition | None:
        """Where the expression after ``WATERMARK FOR col AS`` starts (sqlglot keeps no
        offset for a CAST or an operator, only for the columns and literals inside)."""
        if where is None or where.token is None:
            return None
        text = self.source.text
        start = self.source.offset(where) + len(where.token)
        match = _AS.match(text, start)
        if match is None:
            return None
        end = match.end()
        word = re.match(r"\(|\w+", text[end:])
        return self.source.position(end, word.group(0) if word else None)

    def _check_timestamp(
        self, column: ColumnSpec, position: SourcePosition | None, what: str
    ) -> None:
        if not column.column_type.is_timestamp:
            self.report(
                SqlError(
                    f'{what} `"{column.name}"` has type {column.sql_type}, but expected TIMESTAMP',
                    position=position,
                    hint="the event time column must be a TIMESTAMP",
                )
            )

    def _max_records(self) -> int:
        option = self.reader.get("max_records_per_body")
        value = self.reader.pull_opt_u64("max_records_per_body")
        if value is None:
            return DEFAULT_MAX_RECORDS_PER_BODY
        if value == 0:
            self.report(
                self.reader.error(
                    "invalid value for 'max_records_per_body': 0 (expected at least 1)", option
                )
            )
            return DEFAULT_MAX_RECORDS_PER_BODY
        return value

    def _retention(self) -> RetentionSpec:
        max_rows = self.reader.pull_opt_u64("retention.max_rows")
        max_age = self.reader.pull_opt_duration("retention.max_age")
        return RetentionSpec(max_rows=max_rows, max_age_seconds=max_age)


def _same_type(expected: str, column: ColumnSpec) -> bool:
    """Whether ``column`` has the SQL type named ``expected`` (``INT`` = ``INTEGER``)."""
    try:
        wanted = convert(exp.DataType.build(expected, dialect=Arroyo))
    except (TypeError_, ValueError, sqlglot_errors.ParseError):
        return expected.upper() == column.sql_type.upper()
    return wanted.type == column.column_type and wanted.is_json == column.is_json
