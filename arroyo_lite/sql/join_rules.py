"""Arroyo's rules for which joins a streaming query may contain, checked on the parsed query.

Arroyo's ``JoinRewriter`` (``crates/arroyo-planner/src/plan/join.rs``) refuses, for each join
of the plan DataFusion optimised, in this order:

1. a non-inner join (LEFT, RIGHT, FULL) of two unwindowed inputs:
   ``This feature is not implemented: can't handle non-inner joins without windows``;
2. an input that is itself *updating* (a non-windowed aggregate or ``DISTINCT``, a view of
   one, or a ``debezium_json`` source): ``Error during planning: can't handle updating left
   side of join`` (or ``right``).

The join type checked is the one DataFusion's ``EliminateOuterJoin`` leaves: a ``WHERE``
conjunct that rejects NULLs of one side's columns (a comparison, ``IS NOT NULL``, ``IN``,
``BETWEEN``, ``LIKE``) makes that side's rows never padded, so a ``RIGHT JOIN ... WHERE
left_col < 3`` is an inner join, and a ``FULL JOIN ... WHERE left_col < 3`` a left one.
The messages are DataFusion's ``Display`` of those errors, as Arroyo prints them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sqlglot import exp

from arroyo_lite.errors import SourcePosition, SqlError

#: DataFusion's prefixes (``DataFusionError::NotImplemented`` / ``Plan`` displayed).
NOT_IMPLEMENTED = "This feature is not implemented: "
PLANNING = "Error during planning: "
NON_INNER = NOT_IMPLEMENTED + "can't handle non-inner joins without windows"
#: Arroyo's refusal of an updating query into an append-only sink (``extension/sink.rs``).
UPDATING_INTO_APPEND_ONLY = (
    "input is updating, but sink is not configured as an updating sink "
    "(hint: use `format = 'debezium_json'`)"
)
APPEND_ONLY_HINT = (
    "write the sink with format = 'debezium_json', or insert a query that only appends rows "
    "(no aggregate or DISTINCT without a window, no updating table)"
)

#: Predicates that are false or NULL whenever one of their columns is NULL.
_NULL_REJECTING = (
    exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.In, exp.Between, exp.Like,
    exp.ILike,
)  # fmt: skip
_WINDOWS = frozenset({"tumble", "hop", "session"})


@dataclass(frozen=True, slots=True)
class Catalog:
    """What the check knows of the tables and views a query may read (lower-case names):
    their columns, and which are windowed or updating."""

    columns: Mapping[str, list[str]]
    windowed: frozenset[str] = frozenset()
    updating: frozenset[str] = frozenset()


def check_join_rules(
    tree: exp.Expr,
    catalog: Catalog,
    position_of: Callable[[exp.Expr], SourcePosition | None],
    fallback: SourcePosition,
) -> list[SqlError]:
    """The first of Arroyo's join rules each join of ``tree`` breaks (see the module
    docstring), placed on the join's right input."""
    errors: list[SqlError] = []
    for select in tree.find_all(exp.Select):
        joins = select.args.get("joins") or []
        base = select.args.get("from_")
        if not joins or not isinstance(base, exp.From):
            continue
        where_clause = select.args.get("where")
        where = conjuncts(where_clause.this if isinstance(where_clause, exp.Where) else None)
        left: list[exp.Expr] = [base.this]
        for join in joins:
            right = join.this
            if not isinstance(right, exp.Table | exp.Subquery) or (
                isinstance(right, exp.Table) and not right.name
            ):
                continue  # unnest() and table functions are no stream
            error = _check_one(_JoinSite(join, list(left), right, where), catalog)
            if error is not None:
                hint = (
                    "window both inputs (GROUP BY tumble(...)), or use an inner join"
                    if error == NON_INNER
                    else "join the rows first, then aggregate the join's result"
                )
                errors.append(SqlError(error, position=position_of(right) or fallback, hint=hint))
                break
            left.append(right)
    return errors


@dataclass(frozen=True, slots=True)
class _JoinSite:
    """One join of a SELECT: its inputs so far on the left, its right input, and the
    SELECT's WHERE conjuncts."""

    join: exp.Join
    left: list[exp.Expr]
    right: exp.Expr
    where: list[exp.Expr]


def _check_one(site: _JoinSite, catalog: Catalog) -> str | None:
    left, right = site.left, site.right
    left_windowed = all(_windowed(side, catalog) for side in left)
    right_windowed = _windowed(right, catalog)
    kind = _effective_side(site, catalog)
    if not left_windowed and not right_windowed and kind != "INNER":
        return NON_INNER
    if left_windowed != right_windowed:
        return None  # mixed windowing: the windowed-join rules' business
    if any(_updating(side, catalog) for side in left):
        return PLANNING + "can't handle updating left side of join"
    if _updating(right, catalog):
        return PLANNING + "can't handle updating right side of join"
    return None


def _effective_side(site: _JoinSite, catalog: Catalog) -> str:
    """``INNER``, ``LEFT``, ``RIGHT`` or ``FULL``, after ``EliminateOuterJoin``."""
    join, left, right, where = site.join, site.left, site.right, site.where
    side = (join.side or "").upper()
    if (join.kind or "").upper() == "CROSS" or side not in ("LEFT", "RIGHT", "FULL"):
        return "INNER"
    left_strict = right_strict = False
    for conjunct in where:
        if not _rejects_nulls(conjunct):
            continue
        for column in conjunct.find_all(exp.Column):
            if any(_owns(s, column, catalog) for s in left):
                left_strict = True
            elif _owns(right, column, catalog):
                right_strict = True
    if side == "LEFT":
        return "INNER" if right_strict else "LEFT"
    if side == "RIGHT":
        return "INNER" if left_strict else "RIGHT"
    if left_strict and right_strict:
        return "INNER"
    return "LEFT" if left_strict else "RIGHT" if right_strict else "FULL"


def _rejects_nulls(node: exp.Expr) -> bool:
    if isinstance(node, exp.Not):
        return isinstance(node.this, exp.Is) and isinstance(node.this.expression, exp.Null)
    return isinstance(node, _NULL_REJECTING)


def _owns(side: exp.Expr, column: exp.Column, catalog: Catalog) -> bool:
    """Whether ``column`` (as written in the WHERE) is one of ``side``'s output columns."""
    qualifier = column.table.lower()
    if qualifier:
        return qualifier == side.alias_or_name.lower()
    return column.name.lower() in (c.lower() for c in _columns(side, catalog))


def _columns(side: exp.Expr, catalog: Catalog) -> list[str]:
    if isinstance(side, exp.Table):
        return catalog.columns.get(side.name.lower(), [])
    inner = side.this if isinstance(side, exp.Subquery) else None
    if isinstance(inner, exp.Select):
        return [e.alias_or_name for e in inner.expressions if e.alias_or_name]
    return []


def _windowed(side: exp.Expr, catalog: Catalog) -> bool:
    if isinstance(side, exp.Table):
        return side.name.lower() in catalog.windowed
    return any(str(f.name).lower() in _WINDOWS for f in side.find_all(exp.Anonymous))


def _updating(side: exp.Expr, catalog: Catalog) -> bool:
    if isinstance(side, exp.Table):
        return side.name.lower() in catalog.updating
    return updates(side, catalog.updating, catalog.windowed)


def updates(
    query: exp.Expr, updating: set[str] | frozenset[str], windowed: frozenset[str] = frozenset()
) -> bool:
    """Whether ``query`` (a query or subquery) has an updating result: it aggregates or
    removes duplicates without a window, or reads one of the ``updating`` tables."""
    if any(str(f.name).lower() in _WINDOWS for f in query.find_all(exp.Anonymous)) or any(
        t.name.lower() in windowed for t in query.find_all(exp.Table)
    ):
        return False
    if any(True for _ in query.find_all(exp.AggFunc, exp.Group, exp.Distinct)):
        return True
    return any(t.name.lower() in updating for t in query.find_all(exp.Table))


def conjuncts(node: exp.Expr | None) -> list[exp.Expr]:
    """The ``AND``-ed terms of a condition (none for ``None``)."""
    if node is None:
        return []
    if isinstance(node, exp.And):
        return conjuncts(node.left) + conjuncts(node.right)
    if isinstance(node, exp.Paren):
        return conjuncts(node.this)
    return [node]
