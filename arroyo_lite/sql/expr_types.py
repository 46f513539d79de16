"""Type and nullability of a table-level expression (a ``WATERMARK FOR ... AS`` expression).

Arroyo plans such an expression with DataFusion and asks for its type and nullability. The
front end plans nothing, so :func:`infer` follows DataFusion's rules for the shapes a
watermark expression takes (columns, literals, ``CAST``, ``+``/``-`` of an interval,
parentheses) and answers "unknown" (``None``) for anything else, so that an expression it
cannot judge is never rejected. Types are :class:`~arroyo_lite.config.ColumnType` values
(``debug_name`` prints one the way Arroyo's messages do).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlglot import exp

from arroyo_lite.config import ColumnSpec, ColumnType
from arroyo_lite.sql.types import TypeError_, convert

#: (type, nullable); ``None`` in either place means "cannot tell".
Inferred = tuple[ColumnType | None, bool | None]

_INTERVAL = ColumnType("month_day_nano_interval")
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)


def infer(node: exp.Expr, columns: Mapping[str, ColumnSpec]) -> Inferred:
    """The Arrow type and nullability of ``node`` over ``columns`` (by name)."""
    if isinstance(node, exp.Paren | exp.Neg):
        return infer(node.this, columns)
    if isinstance(node, exp.Column):
        column = None if node.table else columns.get(node.name)
        return (None, None) if column is None else (column.column_type, column.nullable)
    if isinstance(node, exp.Null):
        return ColumnType("null"), True
    if isinstance(node, exp.Boolean):
        return ColumnType("bool_"), False
    if isinstance(node, exp.Literal):
        return (ColumnType("string") if node.is_string else None), False
    if isinstance(node, exp.Interval):
        return _INTERVAL, False
    if isinstance(node, exp.TryCast):
        return _cast_type(node), True  # a failed TRY_CAST is NULL
    if isinstance(node, exp.Cast):
        return _cast_type(node), infer(node.this, columns)[1]
    if isinstance(node, _ARITHMETIC):
        left_type, left_null = infer(node.left, columns)
        right_type, right_null = infer(node.right, columns)
        return _arithmetic_type(node, left_type, right_type), _either(left_null, right_null)
    return None, None


def _cast_type(node: exp.Cast) -> ColumnType | None:
    target = node.args.get("to")
    if not isinstance(target, exp.DataType):
        return None
    try:
        return convert(target).type
    except TypeError_:
        return None


def _arithmetic_type(
    node: exp.Expr, left: ColumnType | None, right: ColumnType | None
) -> ColumnType | None:
    """TIMESTAMP +/- INTERVAL (and INTERVAL + TIMESTAMP) is a TIMESTAMP; other shapes are
    not needed to judge a watermark and stay unknown."""
    if isinstance(node, exp.Add | exp.Sub) and left is not None and left.is_timestamp:
        return left if right == _INTERVAL else None
    if isinstance(node, exp.Add) and left == _INTERVAL and right is not None:
        return right if right.is_timestamp else None
    return None


def _either(left: bool | None, right: bool | None) -> bool | None:
    """Nullability of an operator: NULL if either side can be (DataFusion's rule)."""
    if left or right:
        return True
    if left is False and right is False:
        return False
    return None
