"""DataFusion's types of number literals, where they decide a result's type.

DataFusion's SQL planner (``parse_sql_number`` in ``sql/src/expr/value.rs``, Arroyo's
``ParserOptions`` keeping ``parse_float_as_decimal`` off) types ``1`` as Int64 (UInt64
past ``i64::MAX``, Float64 past ``u64::MAX``) and ``1.5`` or ``1e3`` as Float64; its type
coercion then widens the other operand: an INT column plus ``1`` is an Int64, times ``1.5``
a Float64. DuckDB types ``1`` as an integer literal that takes the other operand's type
(INT + 1 is an INTEGER) and ``1.5`` as a ``DECIMAL(2, 1)`` (INT * 1.5 is a DECIMAL).

:func:`type_literals` casts each number literal whose type reaches a result to DataFusion's
type: an operand of ``+ - * / %``, a CASE result, a result column. A literal anywhere else
(a function's argument such as ``round(x, 2)``, ``LIMIT 10``, ``GROUP BY 1``, a
comparison) keeps DuckDB's reading, where its type decides nothing or DuckDB needs it as
written.
"""

from __future__ import annotations

import re

from sqlglot import exp

__all__ = ["might_type", "type_literals"]

_I64_MAX = 2**63 - 1
_U64_MAX = 2**64 - 1

#: Nodes whose number-literal operands get DataFusion's type.
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)

#: Could the text hold a number literal that :func:`type_literals` casts? (A cheap check
#: for queries that need no other rewrite: a number beside an arithmetic operator, a CASE,
#: a result column that is a number.)
_MIGHT = re.compile(
    r"[-+*/%]\s*\(?\s*\.?\d|\d\.?\s*\)?\s*[-+*/%]|\bcase\b|\bselect\s+[-+]?\.?\d|,\s*[-+]?\.?\d",
    re.IGNORECASE,
)


def might_type(sql: str) -> bool:
    """Whether ``sql`` could hold a literal :func:`type_literals` would cast."""
    return _MIGHT.search(sql) is not None


def _datafusion_type(text: str, negative: bool) -> str:
    """DataFusion's type of the number literal ``text`` (``-text`` if ``negative``)."""
    if not text.isdigit():
        return "DOUBLE"
    value = -int(text) if negative else int(text)
    if -_I64_MAX - 1 <= value <= _I64_MAX:
        return "BIGINT"
    return "UBIGINT" if value <= _U64_MAX else "DOUBLE"


def _reaches_result(node: exp.Expr) -> bool:
    """Whether the type of ``node`` (a literal, or its negation) is a result's type."""
    parent = node.parent
    if isinstance(parent, exp.Paren):
        return _reaches_result(parent)
    if isinstance(parent, _ARITHMETIC):
        # Interval arithmetic (``INTERVAL '1' HOUR * 2``) stays DuckDB's: its result is an
        # interval either way.
        return not any(isinstance(side, exp.Interval) for side in (parent.left, parent.right))
    if isinstance(parent, exp.If):  # CASE WHEN c THEN <node>
        return node.arg_key == "true"
    if isinstance(parent, exp.Case):  # ELSE <node>
        return node.arg_key == "default"
    if isinstance(parent, exp.Alias):
        parent = parent.parent
    return isinstance(parent, exp.Select) and node.arg_key in ("expressions", "this")


def _select_item(node: exp.Expr) -> exp.Expr | None:
    """The unnamed result column ``node`` is part of, if any."""
    while node.parent is not None and not isinstance(node.parent, exp.Select | exp.Alias):
        node = node.parent
    if isinstance(node.parent, exp.Select) and node.arg_key == "expressions":
        return node
    return None


def _duckdb_name(item: exp.Expr) -> str | None:
    """The name DuckDB gives the unnamed result column ``item`` (each binary operation in
    parentheses: ``x + 1 + y`` is ``((x + 1) + y)``); ``None`` for a CASE, which DuckDB
    names in a layout of its own."""
    if item.find(exp.Case):
        return None

    holder = exp.Tuple(expressions=[item.copy()])  # a parent to replace the item in
    binaries = [
        n for n in holder.walk()
        if isinstance(n, exp.Binary) and not isinstance(n.parent, exp.Paren)
    ]  # fmt: skip
    for node in reversed(binaries):  # innermost first
        node.replace(exp.Paren(this=node.copy()))
    shown = holder.expressions[0]
    return str(shown.sql(dialect="duckdb", normalize_functions="lower"))


def type_literals(tree: exp.Expr) -> bool:
    """Cast, in ``tree``, each number literal whose type reaches a result to DataFusion's
    type (``CAST(1 AS BIGINT)``, ``CAST(1.5 AS DOUBLE)``); ``True`` if any was cast. An
    unnamed result column keeps the name DuckDB gives the text as written (one whose name
    cannot be told, a CASE, keeps its literals as they are)."""
    found: list[tuple[exp.Expr, str, int | None]] = []
    names: dict[int, tuple[exp.Expr, str | None]] = {}
    for node in tree.walk():
        if not isinstance(node, exp.Literal) or node.is_string:
            continue
        negated = isinstance(node.parent, exp.Neg)
        target: exp.Expr = node.parent if negated else node  # type: ignore[assignment]
        if not _reaches_result(target):
            continue
        item = _select_item(target)
        if item is not None:
            if id(item) not in names:
                names[id(item)] = (item, _duckdb_name(item))
            if names[id(item)][1] is None:
                continue
        key = id(item) if item is not None else None
        found.append((target, _datafusion_type(str(node.this), negated), key))
    for target, sql_type, key in found:
        cast = exp.cast(target.copy(), sql_type, dialect="duckdb")
        target.replace(cast)
        if key is not None and names[key][0] is target:  # the literal is the column
            names[key] = (cast, names[key][1])
    for item, name in names.values():
        if name is not None:
            item.replace(exp.alias_(item.copy(), name, quoted=True))
    return bool(found)
