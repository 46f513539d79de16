"""SQL column types -> Arrow types: Arroyo's ``convert_data_type`` as one table.

:func:`convert` maps a sqlglot ``DataType`` to an Arrow type (named by a
:class:`~arroyo_lite.config.ColumnType` value: checking SQL needs no pyarrow) and says
whether Arroyo lets the type appear in a connection (source/sink) table. Types that exist
only in memory tables (small integers, DATE, TIME, INTERVAL) convert fine but are rejected
by the table builder with :func:`connection_type_error`, using Arroyo's wording and the Arrow
type name Arroyo prints.

Arroyo's rules (``convert_data_type`` in ``crates/arroyo-planner/src/types.rs``, over the
types of Arroyo's sqlparser fork) that sqlglot alone would blur, decided from the text the
type was written as (``meta["written"]``, kept by :mod:`arroyo_lite.sql.dialect`):
``INTEGER UNSIGNED`` is not ``INT UNSIGNED`` (sqlparser's ``IntegerUnsigned`` has no arm
there), ``TIMESTAMP WITHOUT TIME ZONE`` is not ``TIMESTAMP`` (only ``TimezoneInfo::None``
is), an array element cannot be an array, and ``DECIMAL`` precision and scale are checked
by ``make_decimal_type``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlglot import exp
from sqlglot.expressions.datatypes import DType

from arroyo_lite.config import ColumnType, TypeField


class TypeError_(ValueError):
    """A type that cannot be converted; ``str()`` is Arroyo's message, ``hint`` a fix."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


@dataclass(frozen=True, slots=True)
class SqlType:
    """A converted column type."""

    type: ColumnType
    name: str
    is_json: bool = False
    #: Arroyo's Debug name of the Arrow type when it is not allowed in a connection table.
    memory_only: str | None = None


_STRING = ColumnType("string")

#: Simple types: sqlglot type -> (Arrow type, canonical SQL name).
_SIMPLE: dict[DType, tuple[ColumnType, str]] = {
    DType.BOOLEAN: (ColumnType("bool_"), "BOOLEAN"),
    DType.INT: (ColumnType("int32"), "INT"),
    DType.BIGINT: (ColumnType("int64"), "BIGINT"),
    DType.UINT: (ColumnType("uint32"), "INT UNSIGNED"),
    DType.UBIGINT: (ColumnType("uint64"), "BIGINT UNSIGNED"),
    DType.FLOAT: (ColumnType("float32"), "FLOAT"),
    DType.DOUBLE: (ColumnType("float64"), "DOUBLE"),
    DType.TEXT: (_STRING, "TEXT"),
    DType.VARCHAR: (_STRING, "VARCHAR"),
    DType.NVARCHAR: (_STRING, "VARCHAR"),
    DType.CHAR: (_STRING, "CHAR"),
    DType.NCHAR: (_STRING, "CHAR"),
    DType.VARBINARY: (ColumnType("binary"), "BYTEA"),
}

#: Types a memory table may use but a connection table may not: Arrow type, SQL name and
#: the Arrow type name as Arroyo's error prints it.
_MEMORY_ONLY: dict[DType, tuple[ColumnType, str, str]] = {
    DType.TINYINT: (ColumnType("int8"), "TINYINT", "Int8"),
    DType.SMALLINT: (ColumnType("int16"), "SMALLINT", "Int16"),
    DType.UTINYINT: (ColumnType("uint8"), "TINYINT UNSIGNED", "UInt8"),
    DType.USMALLINT: (ColumnType("uint16"), "SMALLINT UNSIGNED", "UInt16"),
    DType.DATE: (ColumnType("date32"), "DATE", "Date32"),
    DType.TIME: (ColumnType("time64", ("ns",)), "TIME", "Time64(Nanosecond)"),
    DType.INTERVAL: (
        ColumnType("month_day_nano_interval"), "INTERVAL", "Interval(MonthDayNano)"
    ),
}

_TIMESTAMP_UNITS: dict[int, Literal["s", "ms", "us", "ns"]] = {0: "s", 3: "ms", 6: "us", 9: "ns"}


def _int_params(dt: exp.DataType) -> list[int]:
    values = []
    for param in dt.expressions:
        node = param.this if isinstance(param, exp.DataTypeParam) else param
        try:
            values.append(int(node.name))
        except (TypeError, ValueError) as e:
            raise TypeError_(f"Unsupported SQL type '{dt.sql()}'") from e
    return values


def _written(dt: exp.DataType) -> str | None:
    """The type as the user wrote it, whitespace collapsed (``None`` if not recorded)."""
    text = dt.meta.get("written") if dt._meta else None
    return " ".join(str(text).split()) if text else None


def _unsupported(written: str, hint: str) -> TypeError_:
    return TypeError_(f"Unsupported SQL type '{written}'", hint=hint)


def _decimal(dt: exp.DataType) -> SqlType:
    """Arroyo's ``make_decimal_type``: precision and scale are stored as ``u8``/``i8`` (so
    they wrap as there), then ``0 < precision <= 38`` and ``|scale| <= precision``."""
    params = _int_params(dt)
    if not params:
        precision, scale = 38, 10  # DECIMAL alone: Arrow's maximum precision, default scale
    else:
        precision = params[0] % 256
        scale = (params[1] if len(params) > 1 else 0) % 256
        scale = scale - 256 if scale > 127 else scale
    if precision == 0 or precision > 38 or abs(scale) > precision:
        raise TypeError_(
            f"Decimal(precision = {precision}, scale = {scale}) should satisfy "
            "`0 < precision <= 38`, and `scale <= precision`.",
            hint="DECIMAL(p, s) needs 1 <= p <= 38 and s <= p",
        )
    return SqlType(ColumnType("decimal128", (precision, scale)), f"DECIMAL({precision}, {scale})")


def convert(dt: exp.DataType) -> SqlType:
    """Convert one sqlglot type (recursively for arrays and structs).

    Raises :class:`TypeError_` with Arroyo's message for types Arroyo does not support at all.
    """
    kind = dt.this
    written = _written(dt)
    if kind == DType.UINT and written is not None and written.upper().startswith("INTEGER"):
        raise _unsupported(written.upper(), "write INT UNSIGNED (Arroyo's parser reads "
                           "INTEGER UNSIGNED as a type its planner has no rule for)")
    if kind in _SIMPLE:
        arrow, name = _SIMPLE[kind]
        return SqlType(arrow, name)
    if kind in (DType.JSON, DType.JSONB):
        return SqlType(_STRING, "JSON", is_json=True)
    if kind in _MEMORY_ONLY:
        arrow, name, debug = _MEMORY_ONLY[kind]
        return SqlType(arrow, name, memory_only=debug)
    if kind == DType.DECIMAL:
        return _decimal(dt)  # DECIMAL alone is (38, 10); DECIMAL(p) is (p, 0), as in Arroyo.
    if kind in (DType.TIMESTAMP, DType.DATETIME):
        if written is not None and "WITHOUT TIME ZONE" in written.upper():
            precision_text = "".join(f"({p})" for p in _int_params(dt))
            raise _unsupported(
                f"TIMESTAMP{precision_text} WITHOUT TIME ZONE",
                "write TIMESTAMP: Arroyo's TIMESTAMP already has no time zone",
            )
        params = _int_params(dt)
        precision = params[0] if params else 9
        if precision not in _TIMESTAMP_UNITS:
            raise TypeError_(
                f"unsupported precision {precision} -- supported precisions are 0 (seconds), "
                "3 (milliseconds), 6 (microseconds), and 9 (nanoseconds)"
            )
        name = f"TIMESTAMP({precision})" if params else "TIMESTAMP"
        return SqlType(ColumnType("timestamp", (_TIMESTAMP_UNITS[precision],)), name)
    if kind == DType.ARRAY and dt.expressions:
        element = dt.expressions[0]
        if isinstance(element, exp.DataType) and element.this == DType.ARRAY:
            # Arroyo converts an array's element as a simple type, which an array is not.
            shown = _written(element)
            if shown is None and written is not None and written.endswith("[]"):
                shown = written[:-2].rstrip()
            raise _unsupported(
                shown or _display(element),
                "arrays cannot be nested; use an array of STRUCTs, or a JSON column",
            )
        inner = convert(element)
        return SqlType(
            ColumnType("list_", fields=(TypeField("item", inner.type),)),
            f"{inner.name}[]",
            memory_only=f"List({inner.memory_only})" if inner.memory_only else None,
        )
    if kind == DType.STRUCT:
        fields, names, memory_only = [], [], None
        names_seen: set[str] = set()
        for child in dt.expressions:
            if not isinstance(child, exp.ColumnDef) or not isinstance(
                child.args.get("kind"), exp.DataType
            ):
                raise TypeError_(f"Unsupported SQL type '{dt.sql()}'")
            if child.name in names_seen:
                # Arrow would allow it, but a JSON object cannot fill two fields of one name.
                raise TypeError_(
                    f"duplicate field name '{child.name}' in {_display(dt)}",
                    hint="give each STRUCT field its own name",
                )
            names_seen.add(child.name)
            sub = convert(child.args["kind"])
            fields.append(TypeField(child.name, sub.type, sub.is_json))
            names.append(f"{child.name} {sub.name}")
            memory_only = memory_only or sub.memory_only
        return SqlType(
            ColumnType("struct", fields=tuple(fields)),
            f"STRUCT<{', '.join(names)}>",
            memory_only=memory_only,
        )
    raise TypeError_(f"Unsupported SQL type '{_display(dt)}'")


def _display(dt: exp.DataType) -> str:
    text: str = dt.sql(dialect="postgres")
    return {"TIMESTAMPTZ": "TIMESTAMP WITH TIME ZONE"}.get(text, text)


def connection_type_error(column: str, sql_type: SqlType) -> str:
    """Arroyo's message for a memory-only type in a connection table."""
    return (
        f"field '{column}' has a type '{sql_type.memory_only}' that cannot be used in a "
        "connection table"
    )
