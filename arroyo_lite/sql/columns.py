"""Column definitions of a ``CREATE TABLE`` -> :class:`~arroyo_lite.config.ColumnSpec`.

Handles types (via :mod:`arroyo_lite.sql.types`), ``NOT NULL``, column ``PRIMARY KEY``,
``GENERATED ALWAYS AS (expr) [STORED]``, ``METADATA FROM 'key'`` and the table constraints
(only one ``WATERMARK FOR``; anything else is Arroyo's ``Unsupported table constraint``).
Every problem is collected with its position.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlglot import exp

from arroyo_lite.config import ColumnSpec, WatermarkSpec
from arroyo_lite.errors import SourcePosition, SqlError
from arroyo_lite.sql.dialect import Arroyo, MetadataColumnConstraint
from arroyo_lite.sql.source import SourceText
from arroyo_lite.sql.types import SqlType, TypeError_, convert


@dataclass
class ColumnsResult:
    """Columns, the watermark, memory-only type info and the problems met."""

    columns: list[ColumnSpec] = field(default_factory=list)
    types: dict[str, SqlType] = field(default_factory=dict)
    #: Parsed expressions of virtual columns, by column name (to check their references).
    generated: dict[str, exp.Expr] = field(default_factory=dict)
    watermark: WatermarkSpec | None = None
    watermark_position: SourcePosition | None = None
    #: The parsed ``AS`` expression of the watermark (to check its column references).
    watermark_node: exp.Expr | None = None
    errors: list[SqlError] = field(default_factory=list)


def node_position(node: exp.Expr, source: SourceText) -> SourcePosition | None:
    """Position of the first node under ``node`` that sqlglot gave an offset."""
    for sub in node.walk():
        meta = sub.meta if sub._meta else None
        if meta and "start" in meta:
            start = int(meta["start"])
            end = int(meta.get("end", start))
            return source.position(start, source.text[start : end + 1])
    return None


def to_arroyo_sql(node: exp.Expr) -> str:
    """Arroyo SQL text of an expression (virtual columns, watermarks)."""
    # Keep function names as written (sqlglot upper-cases unknown ones by default).
    text: str = node.sql(dialect=Arroyo, normalize_functions=False)
    return text


def _keyword_before(source: SourceText, where: SourcePosition, word: str) -> SourcePosition:
    """The last ``word`` (case-insensitive) before ``where``: constraints keep no offsets."""
    end = source.offset(where)
    start = source.text.upper().rfind(word.upper(), 0, end)
    return source.position(start, source.text[start : start + len(word)]) if start >= 0 else where


def read_columns(schema: exp.Schema, source: SourceText, fallback: SourcePosition) -> ColumnsResult:
    """Convert the column list of ``CREATE TABLE t (...)``."""
    result = ColumnsResult()
    for item in schema.expressions:
        where = node_position(item, source) or fallback
        if isinstance(item, exp.ColumnDef):
            _read_column(item, source, where, result)
        elif isinstance(item, exp.WatermarkColumnConstraint):
            if result.watermark is not None:
                result.errors.append(
                    SqlError(
                        "Only one WATERMARK FOR constraint is allowed per table",
                        position=_keyword_before(source, where, "WATERMARK"),
                    )
                )
                continue
            expression = item.args.get("expression")
            if not isinstance(expression, exp.Expr):
                expression = None  # WATERMARK FOR col, without AS
            result.watermark = WatermarkSpec(
                column=item.this.name,
                expression=to_arroyo_sql(expression) if expression is not None else None,
            )
            result.watermark_position = node_position(item.this, source) or where
            result.watermark_node = expression
        else:
            shown = item.sql(dialect=Arroyo)
            result.errors.append(
                SqlError(
                    f"Unsupported table constraint `{shown}`",
                    position=_keyword_before(source, where, shown.split(" ")[0]),
                    hint="only WATERMARK FOR is allowed here; declare PRIMARY KEY on the "
                    "column itself (id TEXT PRIMARY KEY)",
                )
            )
    return result


def _read_column(
    item: exp.ColumnDef, source: SourceText, where: SourcePosition, result: ColumnsResult
) -> None:
    name = item.name
    kind = item.args.get("kind")
    if not isinstance(kind, exp.DataType):
        result.errors.append(
            SqlError(f"column '{name}' has no type", position=where, hint=f"write {name} TEXT")
        )
        return
    try:
        sql_type = convert(kind)
    except TypeError_ as e:
        at = kind.meta.get("written_at") if kind._meta else None
        if isinstance(at, int):  # point at the type itself, as Arroyo's diagnostic does
            where = source.position(at, str(kind.meta.get("written", "")).split("(")[0] or None)
        result.errors.append(SqlError(str(e), position=where, hint=e.hint or _type_hint(kind)))
        return
    nullable, primary_key = True, False
    generated: str | None = None
    metadata_key: str | None = None
    for constraint in item.args.get("constraints") or []:
        ckind = constraint.args.get("kind")
        if isinstance(ckind, exp.NotNullColumnConstraint):
            nullable = bool(ckind.args.get("allow_null"))
        elif isinstance(ckind, exp.PrimaryKeyColumnConstraint):
            primary_key = True
        elif isinstance(ckind, exp.ComputedColumnConstraint):
            generated = to_arroyo_sql(ckind.this)
            result.generated[name] = ckind.this
        elif isinstance(ckind, MetadataColumnConstraint):
            metadata_key = str(ckind.this.this)
        else:
            shown = constraint.sql(dialect=Arroyo)
            result.errors.append(
                SqlError(
                    f"Unsupported column constraint `{shown}` on column '{name}'",
                    position=node_position(constraint, source) or where,
                    hint="columns accept NOT NULL, PRIMARY KEY, GENERATED ALWAYS AS (expr) "
                    "[STORED] and METADATA FROM 'key'",
                )
            )
    result.types[name] = sql_type
    result.columns.append(
        ColumnSpec(
            name=name,
            column_type=sql_type.type,
            sql_type=sql_type.name,
            nullable=nullable,
            primary_key=primary_key,
            is_json=sql_type.is_json,
            generated=generated,
            metadata_key=metadata_key,
            position=where,
        )
    )


def _type_hint(kind: exp.DataType) -> str:
    """What to write instead of a type :func:`convert` rejects."""
    if kind.this in (exp.DataType.Type.TIMESTAMPTZ, exp.DataType.Type.TIMESTAMPLTZ):
        return "use TIMESTAMP (Arroyo's timestamps have no time zone)"
    if kind.this in (exp.DataType.Type.TIMESTAMP, exp.DataType.Type.DATETIME):
        return "use TIMESTAMP, TIMESTAMP(0), TIMESTAMP(3), TIMESTAMP(6) or TIMESTAMP(9)"
    return (
        "supported types: BOOLEAN, INT, BIGINT, [BIG]INT UNSIGNED, FLOAT, DOUBLE, "
        "DECIMAL(p, s), TEXT, JSON, BYTEA, TIMESTAMP[(p)], T[], STRUCT<...>"
    )
