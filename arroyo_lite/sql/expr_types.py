"""Type and nullability of a table-level expression (a ``WATERMARK FOR ... AS`` expression).

Arroyo plans such an expression with DataFusion and asks for its type and nullability. The
front end plans nothing, so :func:`infer` follows DataFusion's rules for the shapes a
watermark expression takes (columns, literals, ``CAST``, ``+``/``-`` of an interval,
parentheses) and answers "unknown" (``None``) for anything else, so that an expression it
cannot judge is never rejected. :func:`arrow_debug_name` prints an Arrow type the way
Arroyo's messages do (Rust's ``Debug`` of an Arrow ``DataType``).
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
from sqlglot import exp

from arroyo_lite.config import ColumnSpec
from arroyo_lite.sql.types import TypeError_, convert

#: (type, nullable); ``None`` in either place means "cannot tell".
Inferred = tuple[pa.DataType | None, bool | None]

_INTERVAL = pa.month_day_nano_interval()
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)


def infer(node: exp.Expr, columns: Mapping[str, ColumnSpec]) -> Inferred:
    """The Arrow type and nullability of ``node`` over ``columns`` (by name)."""
    if isinstance(node, exp.Paren | exp.Neg):
        return infer(node.this, columns)
    if isinstance(node, exp.Column):
        column = None if node.table else columns.get(node.name)
        return (None, None) if column is None else (column.data_type, column.nullable)
    if isinstance(node, exp.Null):
        return pa.null(), True
    if isinstance(node, exp.Boolean):
        return pa.bool_(), False
    if isinstance(node, exp.Literal):
        return (pa.string() if node.is_string else None), False
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


def _cast_type(node: exp.Cast) -> pa.DataType | None:
    target = node.args.get("to")
    if not isinstance(target, exp.DataType):
        return None
    try:
        return convert(target).arrow
    except TypeError_:
        return None


def _arithmetic_type(
    node: exp.Expr, left: pa.DataType | None, right: pa.DataType | None
) -> pa.DataType | None:
    """TIMESTAMP +/- INTERVAL (and INTERVAL + TIMESTAMP) is a TIMESTAMP; other shapes are
    not needed to judge a watermark and stay unknown."""
    if isinstance(node, exp.Add | exp.Sub) and left is not None and pa.types.is_timestamp(left):
        return left if right == _INTERVAL else None
    if isinstance(node, exp.Add) and left == _INTERVAL and right is not None:
        return right if pa.types.is_timestamp(right) else None
    return None


def _either(left: bool | None, right: bool | None) -> bool | None:
    """Nullability of an operator: NULL if either side can be (DataFusion's rule)."""
    if left or right:
        return True
    if left is False and right is False:
        return False
    return None


_DEBUG_NAMES = {
    pa.bool_(): "Boolean", pa.int8(): "Int8", pa.int16(): "Int16", pa.int32(): "Int32",
    pa.int64(): "Int64", pa.uint8(): "UInt8", pa.uint16(): "UInt16", pa.uint32(): "UInt32",
    pa.uint64(): "UInt64", pa.float32(): "Float32", pa.float64(): "Float64",
    pa.string(): "Utf8", pa.binary(): "Binary", pa.date32(): "Date32", pa.null(): "Null",
    _INTERVAL: "Interval(MonthDayNano)",
}  # fmt: skip


def arrow_debug_name(data_type: pa.DataType) -> str:
    """``Utf8``, ``Int64``, ``Decimal128(10, 2)``, ...: the Arrow type as Arroyo prints it."""
    if data_type in _DEBUG_NAMES:
        return _DEBUG_NAMES[data_type]
    if pa.types.is_decimal(data_type):
        return f"Decimal128({data_type.precision}, {data_type.scale})"
    if pa.types.is_list(data_type):
        return f"List({arrow_debug_name(data_type.value_type)})"
    if pa.types.is_struct(data_type):
        return "Struct(" + ", ".join(f.name for f in data_type) + ")"
    return str(data_type)
