"""Validated, frozen table configuration: what the SQL front end hands to everything downstream.

The front end (:mod:`arroyo_lite.sql`) turns a ``CREATE TABLE`` into a :class:`TableConfig`.
Decoders, source operators, the table store and the query engine read only these objects,
never a raw WITH-options dict. Every value here has already been checked and has its default
applied.
"""

from __future__ import annotations

import enum
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from arroyo_lite.errors import SourcePosition

if TYPE_CHECKING:
    import pyarrow as pa

    #: Arrow type of :data:`TIMESTAMP_COLUMN` (made on first use: see ``__getattr__``).
    TIMESTAMP_TYPE: pa.TimestampType

#: Name of the arrival-time (or event-time) column that ends every source batch.
TIMESTAMP_COLUMN = "_timestamp"
#: The SQL name of the per-source status table (an extension beyond Arroyo; its shape is
#: in :mod:`arroyo_lite.query.status_table`).
STATUS_TABLE = "arroyo_status"
# TIMESTAMP_TYPE, the Arrow type of TIMESTAMP_COLUMN (Arroyo: Timestamp(ns), no time zone,
# non-null), is made on first use by the module __getattr__ at the end: this module is
# imported by everything, and pyarrow (with numpy) is most of what a new Session would cost.
#: The changelog column: a batch that has it is a list of *changes* (Arroyo's updating
#: results), not of new rows. A row with ``true`` retracts an equal row emitted before, a row
#: with ``false`` adds one; an update is a retraction of the old row followed by the new one.
#: Order matters within and across batches. (:mod:`arroyo_lite.query.changelog` builds them.)
RETRACT_COLUMN = "_retract"
#: Schema-metadata key of a change batch that names its key columns (a JSON list): the
#: columns that identify a row, so a retraction and an addition of one key are an update.
CHANGELOG_KEY = b"arroyo_lite.changelog_key"


def changelog_key(schema: pa.Schema) -> tuple[str, ...]:
    """The key columns a change batch of ``schema`` names (empty: none, or not all there)."""
    raw = (schema.metadata or {}).get(CHANGELOG_KEY)
    if raw is None:
        return ()
    names = tuple(str(n) for n in json.loads(raw))
    return names if all(n in schema.names for n in names) else ()


#: Field metadata marking a Utf8 column as SQL ``JSON`` (Arroyo's extension name).
JSON_EXTENSION = {b"ARROW:extension:name": b"arroyo.json"}
#: Default of ``max_records_per_body`` (arroyo-lite): the most records one body may decode to.
DEFAULT_MAX_RECORDS_PER_BODY = 1_000_000


class TableKind(enum.StrEnum):
    SOURCE = "source"
    SINK = "sink"
    LOOKUP = "lookup"
    MEMORY = "memory"


class Format(enum.StrEnum):
    JSON = "json"
    DEBEZIUM_JSON = "debezium_json"
    RAW_STRING = "raw_string"
    RAW_BYTES = "raw_bytes"
    AVRO = "avro"
    PARQUET = "parquet"


class BadData(enum.StrEnum):
    FAIL = "fail"
    DROP = "drop"


@dataclass(frozen=True, slots=True)
class TypeField:
    """A field of a STRUCT type, or the ``item`` of a list type."""

    name: str
    type: ColumnType
    #: SQL ``JSON`` (Utf8 marked with :data:`JSON_EXTENSION`).
    is_json: bool = False


@dataclass(frozen=True, slots=True)
class ColumnType:
    """A column's type as a value: the Arrow type *named*, built only when :attr:`arrow` is
    asked for.

    The SQL front end describes every declared type this way, so checking a file
    (``arroyo-lite validate``) never loads pyarrow; the decoders, the store and the engine
    ask for :attr:`arrow` (built once per distinct type). ``factory`` is the name of the
    pyarrow function that makes the type and ``args`` its arguments (``int64``;
    ``timestamp`` with ``("ns",)``; ``decimal128`` with ``(10, 2)``); ``list_`` and
    ``struct`` take their :attr:`fields` instead. :meth:`of_arrow` wraps a ready Arrow type
    (``factory`` ``"arrow"``, the type in ``args``), for code that has one at hand.
    """

    factory: str
    args: tuple[Any, ...] = ()
    fields: tuple[TypeField, ...] = ()
    #: The Arrow type once built (not part of the value: equality and hash ignore it).
    _built: Any = field(default=None, compare=False, hash=False, repr=False)

    @staticmethod
    def of_arrow(data_type: pa.DataType) -> ColumnType:
        """A ready Arrow type as a value (equal to the named form of the same type)."""
        named = _named_form(data_type)
        object.__setattr__(named, "_built", data_type)
        return named

    @property
    def arrow(self) -> pa.DataType:
        """The Arrow type (pyarrow is imported here, on first use; then kept)."""
        built: pa.DataType | None = self._built
        if built is None:
            built = _build_arrow(self)
            object.__setattr__(self, "_built", built)
        return built

    @property
    def is_timestamp(self) -> bool:
        """A timestamp without a time zone (the only kind SQL declares)."""
        if self.factory == "arrow":
            import pyarrow as pa

            return bool(pa.types.is_timestamp(self.args[0]) and self.args[0].tz is None)
        return self.factory == "timestamp"

    @property
    def debug_name(self) -> str:
        """``Utf8``, ``Int64``, ``Decimal128(10, 2)``, ...: the type as Arroyo's messages print
        it (Rust's ``Debug`` of an Arrow ``DataType``); other types as pyarrow prints them."""
        if self.factory in _DEBUG_NAMES:
            return _DEBUG_NAMES[self.factory]
        if self.factory == "decimal128":
            return f"Decimal128({self.args[0]}, {self.args[1]})"
        if self.factory == "list_":
            return f"List({self.fields[0].type.debug_name})"
        if self.factory == "struct":
            return "Struct(" + ", ".join(f.name for f in self.fields) + ")"
        if self.factory in ("timestamp", "time64"):
            return f"{self.factory}[{self.args[0]}]"
        return str(self.arrow)


#: Arroyo's Debug names of the types whose factory takes no arguments.
_DEBUG_NAMES = {
    "bool_": "Boolean", "int8": "Int8", "int16": "Int16", "int32": "Int32",
    "int64": "Int64", "uint8": "UInt8", "uint16": "UInt16", "uint32": "UInt32",
    "uint64": "UInt64", "float32": "Float32", "float64": "Float64", "string": "Utf8",
    "binary": "Binary", "date32": "Date32", "null": "Null",
    "month_day_nano_interval": "Interval(MonthDayNano)",
}  # fmt: skip


@functools.cache
def _build_arrow(column_type: ColumnType) -> pa.DataType:
    import pyarrow as pa

    factory, args, fields = column_type.factory, column_type.args, column_type.fields
    if factory == "arrow":
        given: pa.DataType = args[0]
        return given
    arrow_fields = [
        pa.field(f.name, f.type.arrow, metadata=JSON_EXTENSION if f.is_json else None)
        for f in fields
    ]
    if factory == "list_":
        return pa.list_(arrow_fields[0])
    if factory == "struct":
        return pa.struct(arrow_fields)
    made: pa.DataType = getattr(pa, factory)(*args)
    return made


def _named_form(data_type: pa.DataType) -> ColumnType:
    """The :class:`ColumnType` naming ``data_type`` (types without a name here are wrapped)."""
    import pyarrow as pa

    for factory in _DEBUG_NAMES:
        if data_type == getattr(pa, factory)():
            return ColumnType(factory)
    if pa.types.is_timestamp(data_type) and data_type.tz is None:
        return ColumnType("timestamp", (data_type.unit,))
    if pa.types.is_time64(data_type):
        return ColumnType("time64", (data_type.unit,))
    if pa.types.is_decimal128(data_type):
        return ColumnType("decimal128", (data_type.precision, data_type.scale))
    children = [data_type.value_field] if pa.types.is_list(data_type) else []
    if pa.types.is_struct(data_type):
        children = [data_type.field(i) for i in range(data_type.num_fields)]
    plain = all(
        f.nullable and (f.metadata is None or f.metadata == JSON_EXTENSION) for f in children
    )
    if children and plain:
        fields = tuple(
            TypeField(f.name, _named_form(f.type), is_json=f.metadata == JSON_EXTENSION)
            for f in children
        )
        return ColumnType("list_" if pa.types.is_list(data_type) else "struct", fields=fields)
    return ColumnType("arrow", (data_type,))


@dataclass(frozen=True, slots=True, init=False)
class ColumnSpec:
    """One declared column.

    ``column_type`` is the type as a value (:class:`ColumnType`: no pyarrow needed to read
    it) and ``data_type`` the Arrow type derived from it on first use (see
    ``arroyo_lite.sql.types``); either may be given as the second argument. ``is_json``
    marks SQL ``JSON`` columns (Utf8 holding compact JSON text). ``generated`` is the
    expression of a ``GENERATED ALWAYS AS (expr)`` column as Arroyo SQL text (translate it
    with ``arroyo_lite.sql.transpile.to_duckdb``); it is computed per batch from the physical
    columns. ``metadata_key`` is the key of ``METADATA FROM 'key'``.
    """

    name: str
    column_type: ColumnType
    sql_type: str
    nullable: bool
    primary_key: bool
    is_json: bool
    generated: str | None
    metadata_key: str | None
    position: SourcePosition | None

    def __init__(
        self,
        name: str,
        data_type: ColumnType | pa.DataType | None = None,
        sql_type: str = "",
        nullable: bool = True,
        primary_key: bool = False,
        is_json: bool = False,
        generated: str | None = None,
        metadata_key: str | None = None,
        position: SourcePosition | None = None,
        *,
        column_type: ColumnType | None = None,
    ) -> None:
        given = column_type if column_type is not None else data_type
        if given is None:
            raise TypeError("ColumnSpec needs a type (data_type or column_type)")
        if not isinstance(given, ColumnType):
            given = ColumnType.of_arrow(given)
        values = {
            "name": name, "column_type": given, "sql_type": sql_type, "nullable": nullable,
            "primary_key": primary_key, "is_json": is_json, "generated": generated,
            "metadata_key": metadata_key, "position": position,
        }  # fmt: skip
        for key, value in values.items():
            object.__setattr__(self, key, value)

    @property
    def data_type(self) -> pa.DataType:
        """The Arrow type (imports pyarrow on first use)."""
        return self.column_type.arrow

    @property
    def is_virtual(self) -> bool:
        return self.generated is not None

    @property
    def is_physical(self) -> bool:
        """Decoded from the message body (not virtual, not connector metadata)."""
        return self.generated is None and self.metadata_key is None

    def arrow_field(self) -> pa.Field[pa.DataType]:
        import pyarrow as pa

        return pa.field(
            self.name,
            self.data_type,
            nullable=self.nullable,
            metadata=JSON_EXTENSION if self.is_json else None,
        )


@dataclass(frozen=True, slots=True)
class FormatSpec:
    """The ``format`` option and its ``json.*`` sub-options, as Arroyo's ``Format``."""

    format: Format
    unstructured: bool = False
    confluent_schema_registry: bool = False
    include_schema: bool = False
    timestamp_format: str = "rfc3339"
    decimal_encoding: str = "number"


@dataclass(frozen=True, slots=True)
class FramingSpec:
    """``framing = 'newline'``; ``max_line_length`` from ``framing.newline.max_length``."""

    method: str = "newline"
    max_line_length: int | None = None


@dataclass(frozen=True, slots=True)
class WatermarkSpec:
    """``WATERMARK FOR column [AS expression]``; ``expression`` is Arroyo SQL text or None."""

    column: str
    expression: str | None = None


@dataclass(frozen=True, slots=True)
class RetentionSpec:
    """Extension beyond Arroyo: bound what the table store keeps (``retention.*`` options)."""

    max_rows: int | None = None
    max_age_seconds: float | None = None


@dataclass(frozen=True, slots=True)
class TableConfig:
    """A fully validated table.

    ``connector_options`` is the connector's own frozen dataclass (for example
    ``PollingHttpOptions``); ``None`` for memory tables. ``event_time_column`` is the column
    that becomes ``_timestamp`` (from ``WATERMARK FOR`` or the deprecated
    ``event_time_field``); ``None`` means arrival time.
    """

    name: str
    kind: TableKind
    columns: tuple[ColumnSpec, ...]
    connector: str | None = None
    format: FormatSpec | None = None
    framing: FramingSpec | None = None
    bad_data: BadData = BadData.FAIL
    connector_options: Any = None
    watermark: WatermarkSpec | None = None
    event_time_column: str | None = None
    idle_micros: int | None = 300_000_000
    retention: RetentionSpec = field(default_factory=RetentionSpec)
    #: A body that decodes to more records than this is bad data (``bad_data`` decides).
    max_records_per_body: int = DEFAULT_MAX_RECORDS_PER_BODY
    position: SourcePosition | None = None
    #: Option keys as the user wrote them, mapped to their positions (for messages only).
    option_positions: Mapping[str, SourcePosition] = field(default_factory=dict)

    @property
    def physical_columns(self) -> tuple[ColumnSpec, ...]:
        return tuple(c for c in self.columns if c.is_physical)

    @property
    def virtual_columns(self) -> tuple[ColumnSpec, ...]:
        return tuple(c for c in self.columns if c.is_virtual)

    def decode_schema(self) -> pa.Schema:
        """Schema a decoder produces from a message body: the physical columns only."""
        import pyarrow as pa

        return pa.schema([c.arrow_field() for c in self.physical_columns])

    @property
    def metadata_columns(self) -> tuple[ColumnSpec, ...]:
        """Columns whose values the connector supplies (``METADATA FROM 'key'``)."""
        return tuple(c for c in self.columns if c.metadata_key is not None)

    @property
    def primary_key(self) -> tuple[str, ...]:
        """The ``PRIMARY KEY`` column names, in declaration order (empty: no key)."""
        return tuple(c.name for c in self.columns if c.primary_key)

    @property
    def updating(self) -> bool:
        """Whether the table's rows are *changes* (a ``debezium_json`` source: Arroyo's
        updating table), not only new rows."""
        return (
            self.kind is TableKind.SOURCE
            and self.format is not None
            and self.format.format is Format.DEBEZIUM_JSON
        )

    @property
    def writes_changes(self) -> bool:
        """Whether a sink table is an *updating* sink (Arroyo: ``format = 'debezium_json'``),
        which takes a changelog, rather than an append-only one."""
        return self.format is not None and self.format.format is Format.DEBEZIUM_JSON

    def output_schema(self) -> pa.Schema:
        """Schema of every batch a source emits: declared columns in order, then
        :data:`RETRACT_COLUMN` for an :attr:`updating` table, then ``_timestamp``.

        Metadata columns are included: decoders leave them NULL and the connector fills them.
        """
        fields = [c.arrow_field() for c in self.columns]
        import pyarrow as pa

        if self.updating:
            fields.append(pa.field(RETRACT_COLUMN, pa.bool_(), nullable=False))
        fields.append(pa.field(TIMESTAMP_COLUMN, pa.timestamp("ns"), nullable=False))
        return pa.schema(fields)


def __getattr__(name: str) -> Any:
    if name == "TIMESTAMP_TYPE":
        import pyarrow as pa

        return pa.timestamp("ns")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
