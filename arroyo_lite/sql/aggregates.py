"""DataFusion's functions whose DuckDB namesake computes something else, and their DuckDB
translation: the one table of them (:data:`FUNCTIONS`).

Arroyo evaluates SQL with DataFusion, so a function means what DataFusion computes, down to
its result type: ``sum`` of integers is a 64-bit integer (DuckDB's is 128-bit), ``avg`` of a
decimal a decimal (DuckDB's a DOUBLE), ``round`` of
an integer is a float, ``median`` of integers an integer, ``approx_distinct`` an unsigned count,
the ``approx_percentile_cont`` family a t-digest estimate of the input's type. Each
:class:`Translation` states the DataFusion facts that matter and builds a DuckDB expression
with the same result.

One fact is Arroyo's rather than DataFusion's: an **updating** aggregate (a ``GROUP BY``
without a window, or no ``GROUP BY``) keeps, for an aggregate whose DataFusion accumulator
cannot retract (``retract_batch``), the *distinct* argument tuples it has seen, and computes
each result with a fresh accumulator over them (``incremental_aggregator.rs``,
``IncrementalState::Batch``). So in an updating query ``median(x)`` is the median of the
distinct values of ``x`` (and ``approx_percentile_cont_with_weight`` sees each distinct
``(x, weight)`` once), while in a windowed one every row counts. ``retracts`` records which
is which; the translation adds ``DISTINCT`` where the query is updating.

DuckDB has no t-digest: the ``approx_percentile_cont`` family runs DataFusion's own algorithm
(:mod:`arroyo_lite.sql.tdigest`) as the DuckDB function ``arroyo_tdigest`` over the group's
inputs collected into a list; :func:`install` defines it (and the macros giving a result
DataFusion's type) on a connection.

``sum``, ``avg`` and ``sum(...) OVER (...)`` get DataFusion's result types from the macros of
:mod:`arroyo_lite.sql.result_types` (its table is the one mapping: ``sum`` of integers a
wrapping Int64/UInt64, of a ``DECIMAL(p, s)`` a ``DECIMAL(min(38, p + 10), s)``; ``avg`` of
a decimal DataFusion's truncated ``DECIMAL(p + 4, s + 4)``). The other aggregates already
have DataFusion's types in DuckDB: ``count`` is BIGINT (Int64), ``min``/``max`` the input's
type.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from arroyo_lite.sql import result_types
from arroyo_lite.sql.division import DIV, DIV_MACRO
from arroyo_lite.sql.division import INTEGER_TYPES as _INTEGER_TYPES
from arroyo_lite.sql.result_types import AVG, AVG_DISTINCT, SUM, SUM_DISTINCT, SUM_OVER

if TYPE_CHECKING:
    import duckdb

__all__ = ["AGGREGATE_MACROS", "AVG", "AVG_DISTINCT", "DIV", "FUNCTIONS", "INSTALLED",
           "IN_ARRIVAL_ORDER", "SUM", "SUM_DISTINCT", "Translation", "builtin_sum",
           "in_arrival_order", "install", "translate", "unmasked_error"]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Translation:
    """How one DataFusion function becomes DuckDB.

    ``build(args, distinct)`` gets the call's arguments in DataFusion's order (for an
    ordered-set aggregate, ``WITHIN GROUP (ORDER BY x)`` first: ``approx_percentile_cont(x,
    p)``), and ``distinct`` when the aggregate must see each distinct argument tuple once.
    """

    build: Callable[[list[exp.Expr], bool], exp.Expr]
    #: An aggregate (a scalar function otherwise).
    aggregate: bool = True
    #: DataFusion's accumulator supports ``retract_batch``, so Arroyo's updating aggregate
    #: feeds it every row; without it the aggregate sees each distinct argument tuple once.
    retracts: bool = True


# (The DuckDB types an integer input has: DataFusion's t-digest and median of those return
# the same integer type, truncated (Rust's ``as``) rather than rounded.)

#: ``arroyo_as_type_of(value, sample)``: ``value`` (a DOUBLE) as the type of ``sample``,
#: truncated toward zero for an integer type.
_AS_TYPE_OF = (
    "CREATE OR REPLACE MACRO arroyo_as_type_of(value, sample) AS cast_to_type("
    f"CASE WHEN typeof(sample) IN ({', '.join(repr(t) for t in _INTEGER_TYPES)}) "
    "THEN trunc(value) ELSE value END, sample)"
)


#: ``arroyo_median(sorted values, NULLs last; how many are not NULL)``: DataFusion's median.
_MEDIAN = (
    "CREATE OR REPLACE MACRO arroyo_median(v, n) AS CASE WHEN n = 0 THEN NULL "
    "WHEN n % 2 = 1 THEN v[n // 2 + 1] ELSE (v[n // 2] + v[n // 2 + 1]) // 2 END"
)


#: The macros for DataFusion's ``sum``, ``avg`` (each with a ``DISTINCT`` twin: a macro
#: cannot take ``DISTINCT``) and ``sum(...) OVER (...)``: :mod:`arroyo_lite.sql.result_types`.
_CALLS = {SUM: exp.Sum, SUM_DISTINCT: exp.Sum, AVG: exp.Avg, AVG_DISTINCT: exp.Avg}
_DISTINCT = frozenset({SUM_DISTINCT, AVG_DISTINCT})


def builtin_sum(node: exp.Expr) -> exp.Expr:
    """For ``tree.transform`` over DuckDB SQL: a call of :data:`SUM` / :data:`SUM_DISTINCT`
    (:data:`AVG` / :data:`AVG_DISTINCT`) as DuckDB's ``sum(x)`` / ``sum(DISTINCT x)``
    (``avg``), marked ``meta[SUM]`` (``meta[AVG]``), so that what reads a query's shape
    sees an aggregate; any other node as it is."""
    if not isinstance(node, exp.Anonymous):
        return node
    name = str(node.name).lower()
    call = _CALLS.get(name)
    # (the average macros take their argument twice: :func:`_avg`)
    if call is None or len(node.expressions) != (2 if call is exp.Avg else 1):
        return node
    arg = node.expressions[-1]
    built = call(this=exp.Distinct(expressions=[arg]) if name in _DISTINCT else arg)
    built.meta[SUM if call is exp.Sum else AVG] = True
    return built


def unmasked_error(con: Any, sql: str, e: duckdb.Error) -> duckdb.Error:
    """The error to report for DuckDB SQL ``sql`` that failed to bind on ``con`` with ``e``.
    A call of :data:`SUM` (or :data:`AVG`) hides its argument's own error (an unknown column
    has no type, so every typed overload matches): then ``sql`` is bound again with
    DuckDB's ``sum`` (``avg``), whose error names the column. Any other error is ``e`` itself."""
    import duckdb
    import sqlglot

    if "multiple overloads" not in str(e):
        return e
    try:
        con.sql(sqlglot.parse_one(sql, read="duckdb").transform(builtin_sum).sql("duckdb"))
    except sqlglot.errors.SqlglotError:
        return e
    except duckdb.Error as plain:
        return plain
    return e


#: The macros the translations call that aggregate (lower case): DuckDB's catalog lists
#: them as macros and sqlglot reads their calls as plain functions, so whatever asks
#: whether a query aggregates asks this too.
AGGREGATE_MACROS = frozenset(_CALLS)

#: The DuckDB functions :func:`install` defines (the translations call them): what
#: :mod:`arroyo_lite.query.builtins` defines lazily, when a statement calls one by name.
INSTALLED = ("arroyo_tdigest", "arroyo_as_type_of", "arroyo_median", *result_types.NAMES, DIV)


def install(con: Any) -> None:
    """Define the DuckDB functions the translations call (``arroyo_tdigest``,
    ``arroyo_as_type_of``, ``arroyo_median``, :data:`result_types.MACROS`...) on ``con``;
    a cursor sharing its parent's catalog already has them (nothing is done twice)."""
    import duckdb

    from arroyo_lite.sql.tdigest import percentile_arrow

    points = duckdb.list_type(
        duckdb.struct_type({"v": duckdb.sqltype("DOUBLE"), "w": duckdb.sqltype("DOUBLE")})
    )
    try:
        con.create_function(
            "arroyo_tdigest",
            percentile_arrow,
            [points, duckdb.sqltype("DOUBLE"), duckdb.sqltype("BIGINT"),
             duckdb.sqltype("BOOLEAN")],  # fmt: skip
            duckdb.sqltype("DOUBLE"),
            type="arrow",
            null_handling="special",  # an empty group (NULL list) gives NULL
            side_effects=False,
        )
    except duckdb.CatalogException:
        return  # a cursor: its connection defined them all
    con.execute(_AS_TYPE_OF)
    con.execute(_MEDIAN)
    for macro in (*result_types.MACROS, DIV_MACRO):
        con.execute(macro)


# --- the translations ----------------------------------------------------------------------


def _fn(name: str, *args: exp.Expr, distinct: bool = False) -> exp.Expr:
    if distinct:
        return exp.Anonymous(this=name, expressions=[exp.Distinct(expressions=list(args))])
    return exp.Anonymous(this=name, expressions=list(args))


def _renamed(duckdb_name: str) -> Callable[[list[exp.Expr], bool], exp.Expr]:
    """The same aggregate under DuckDB's name."""

    def build(args: list[exp.Expr], distinct: bool) -> exp.Expr:
        return _fn(duckdb_name, *args, distinct=distinct)

    return build


def _first(duckdb_name: str) -> Callable[[list[exp.Expr], bool], exp.Expr]:
    # The first of the distinct values in Arroyo's hash order is no better defined than the
    # first row: ``distinct`` changes nothing here.
    def build(args: list[exp.Expr], distinct: bool) -> exp.Expr:
        return _fn(duckdb_name, *args)

    return build


def _median(args: list[exp.Expr], distinct: bool) -> exp.Expr:
    # DataFusion: the middle value, or (low + high) / 2 in the input's type: an integer
    # division for integers, which DuckDB's ``//`` is too (a true division for floats).
    # DuckDB's own median is a DOUBLE interpolation.
    value = args[0]
    ordered = _fn(
        "list_sort",
        _fn("list", value, distinct=distinct),
        exp.Literal.string("ASC"),
        exp.Literal.string("NULLS LAST"),
    )
    return _fn("arroyo_median", ordered, _fn("count", value.copy(), distinct=distinct))


def _approx_distinct(args: list[exp.Expr], distinct: bool) -> exp.Expr:
    # DataFusion's HyperLogLog (16384 registers, Ertl's estimator, ahash with fixed seeds)
    # returns the exact count while the distinct values occupy distinct registers (below
    # ~128 values the estimator's collision correction rounds away); past that it is within
    # its ~0.8% standard error of the exact count, which is what runs here. Its registers
    # depend on ahash's output, which even differs between CPUs (AES or not).
    unsigned = exp.DataType.build("UBIGINT", dialect="duckdb")
    return exp.cast(_fn("count", args[0], distinct=True), unsigned)


def _tdigest(
    args: list[exp.Expr], distinct: bool, *, weighted: bool
) -> exp.Expr:
    value = args[0]
    weight = args[1] if weighted else exp.Literal.number(1)
    rest = args[2:] if weighted else args[1:]
    fraction = rest[0] if rest else exp.Literal.number(0.5)
    size = rest[1] if len(rest) > 1 else exp.Literal.number(100)
    point = exp.Struct(
        expressions=[
            exp.PropertyEQ(this=exp.to_identifier("v"), expression=exp.cast(value, "DOUBLE")),
            exp.PropertyEQ(this=exp.to_identifier("w"), expression=exp.cast(weight, "DOUBLE")),
        ]
    )
    digest = _fn(
        "arroyo_tdigest",
        _fn("list", point, distinct=distinct),
        exp.cast(fraction, "DOUBLE"),
        exp.cast(size, "BIGINT"),
        exp.Boolean(this=weighted),
    )
    return _fn("arroyo_as_type_of", digest, _fn("min", value.copy()))


def _approx_median(args: list[exp.Expr], distinct: bool) -> exp.Expr:
    return _tdigest([args[0], exp.Literal.number(0.5)], distinct, weighted=False)


def _sum(args: list[exp.Expr], distinct: bool) -> exp.Expr:
    # result_types' macros: DataFusion's result type, overflow wrapping as DataFusion's.
    return _fn(SUM_DISTINCT if distinct else SUM, args[0])


def _avg(args: list[exp.Expr], distinct: bool) -> exp.Expr:
    # result_types' macros: DataFusion's average of a decimal is a truncated decimal. The
    # argument twice: the first picks the macro's overload by its type, the second is the
    # value (result_types._overloads, ``selector``).
    return _fn(AVG_DISTINCT if distinct else AVG, args[0], args[0].copy())


def _round(args: list[exp.Expr], distinct: bool) -> exp.Expr:
    # DataFusion's round takes Float64 (or Float32) and coerces integers and decimals to
    # Float64: round(7, 2) is 7.0. DuckDB's keeps an integer an integer.
    value = exp.cast(args[0], "DOUBLE")
    if len(args) > 1:
        return exp.Round(this=value, decimals=args[1])
    return exp.Round(this=value)


#: Each DataFusion function (lower case) whose DuckDB namesake differs -> its translation.
FUNCTIONS: dict[str, Translation] = {
    # DataFusion's first-value *aggregate* (Arroyo's corpus, planner/bitcoin_stats.sql);
    # DuckDB knows first_value only as a window function (``OVER (...)`` keeps it so).
    "first_value": Translation(_first("first"), retracts=False),
    "last_value": Translation(_first("last"), retracts=False),
    "var": Translation(_renamed("var_samp")),  # the sample variance
    # Retracts (SlidingSumAccumulator): DISTINCT only when the query asks for it.
    "sum": Translation(_sum),
    "avg": Translation(_avg),  # retracts (AvgAccumulator::retract_batch)
    "median": Translation(_median, retracts=False),
    "approx_distinct": Translation(_approx_distinct, retracts=False),
    "approx_median": Translation(_approx_median, retracts=False),
    "approx_percentile_cont": Translation(
        functools.partial(_tdigest, weighted=False), retracts=False
    ),
    "approx_percentile_cont_with_weight": Translation(
        functools.partial(_tdigest, weighted=True), retracts=False
    ),
    "round": Translation(_round, aggregate=False),
}


#: Aggregates DataFusion computes by folding rows in one at a time in floating point
#: (Welford's update), as DuckDB's namesakes do (DuckDB names): the same rows in the same
#: order give the same bits in both, so these run in arrival order
#: (:func:`arroyo_lite.query.duck.run_sql`).
IN_ARRIVAL_ORDER = frozenset(
    {"var_samp", "var_pop", "variance", "stddev", "stddev_samp", "stddev_pop", "corr",
     "covar_pop", "covar_samp", "regr_slope", "regr_intercept", "regr_r2", "regr_sxx",
     "regr_syy", "regr_sxy", "regr_avgx", "regr_avgy"}
)  # fmt: skip
_IN_ARRIVAL_ORDER_RE = re.compile(
    r"\b(" + "|".join(sorted(IN_ARRIVAL_ORDER)) + r")\s*\(", re.IGNORECASE
)


def in_arrival_order(sql: str) -> bool:
    """Whether DuckDB SQL ``sql`` calls one of :data:`IN_ARRIVAL_ORDER`."""
    return _IN_ARRIVAL_ORDER_RE.search(sql) is not None


# --- finding the calls ---------------------------------------------------------------------

#: sqlglot's own nodes for some of the names (the rest parse as ``Anonymous``).
_NODES: dict[type[exp.Expr], str] = {
    exp.FirstValue: "first_value",
    exp.LastValue: "last_value",
    exp.Median: "median",
    exp.ApproxDistinct: "approx_distinct",
    exp.Sum: "sum",
    exp.Avg: "avg",
    exp.Round: "round",
}


def _call(node: exp.Expr) -> tuple[str, list[exp.Expr], exp.Expr] | None:
    """``(name, DataFusion-ordered arguments, node to replace)`` for a call of
    :data:`FUNCTIONS`, else ``None``."""
    if isinstance(node, exp.WithinGroup):
        call, order = node.this, node.expression
        if not (
            isinstance(call, exp.Anonymous)
            and str(call.name).lower() in FUNCTIONS
            and isinstance(order, exp.Order)
            and len(order.expressions) == 1
        ):
            return None
        ordered = order.expressions[0]
        args = [a.copy() for a in call.expressions]
        if ordered.args.get("desc") and args:
            # DESC ranks from the top: the p-th percentile of DESC is the (1 - p)-th.
            args[-1] = exp.Sub(this=exp.Literal.number(1), expression=exp.paren(args[-1]))
        return str(call.name).lower(), [ordered.this.copy(), *args], node
    if isinstance(node, exp.Anonymous):
        name = str(node.name).lower()
        if name not in FUNCTIONS or isinstance(node.parent, exp.WithinGroup):
            return None
        return name, [a.copy() for a in node.expressions], node
    known = _NODES.get(type(node))
    if known is None or isinstance(node.parent, exp.Window):
        return None  # first_value(x) OVER (...) is the window function DuckDB has
    name = known
    if isinstance(node, exp.Round):
        args = [node.this.copy()]
        if node.args.get("decimals") is not None:
            args.append(node.args["decimals"].copy())
        return name, args, node
    return name, [node.this.copy()], node


_WINDOW_FUNCTIONS = frozenset({"tumble", "hop", "session"})


def _windowed(select: exp.Select | None) -> bool:
    """Whether ``select`` aggregates per window (grouped by a ``tumble``/``hop``/``session``,
    directly, by alias or position, or by a ``window`` column of a windowed input)."""
    if select is None:
        return False
    group = select.args.get("group")
    if not isinstance(group, exp.Group):
        return False
    aliases = {
        str(item.alias).lower(): item.this
        for item in select.expressions
        if isinstance(item, exp.Alias)
    }
    for key in group.expressions:
        target: exp.Expr = key
        if isinstance(key, exp.Literal) and not key.is_string:
            index = int(str(key.this)) - 1
            if 0 <= index < len(select.expressions):
                target = select.expressions[index]
        elif isinstance(key, exp.Column) and not key.table:
            if key.name.lower() in aliases:
                target = aliases[key.name.lower()]
            elif key.name.lower() == "window":
                return True
        if any(str(f.name).lower() in _WINDOW_FUNCTIONS for f in target.find_all(exp.Anonymous)):
            return True
    return False


def _divisions(tree: exp.Expr) -> bool:
    """Replace every ``a / b`` in ``tree`` by ``arroyo_div(a, b)`` (:data:`DIV`), except
    where an operand is an interval or a string (DuckDB has no ``//`` of those, and no
    integer division happens there); ``True`` if anything was replaced."""
    nodes = [
        n for n in tree.walk()
        if isinstance(n, exp.Div)
        and not any(isinstance(side, exp.Interval) or (isinstance(side, exp.Literal)
                                                     and side.is_string)
                    for side in (n.left, n.right))
    ]  # fmt: skip
    for node in reversed(nodes):  # innermost first
        named = isinstance(node.parent, exp.Select) and node.arg_key == "expressions"
        name = f"({node.sql(normalize_functions='lower')})"  # DuckDB's name of a / b
        built: exp.Expr = _fn(DIV, node.left, node.right)
        if named:
            built = exp.alias_(built, name)
        node.replace(built)
    return bool(nodes)


def _aggregates(node: exp.Expr) -> bool:
    """Whether ``node`` calls an aggregate (DuckDB's, or one :data:`FUNCTIONS` translates)."""
    return any(
        isinstance(n, exp.AggFunc)
        or (isinstance(n, exp.Anonymous) and str(n.name).lower() in FUNCTIONS)
        for n in node.walk()
    )


def _window_sums(tree: exp.Expr) -> bool:
    """Replace every ``sum(x) OVER (...)`` in ``tree`` by ``arroyo_sum_over(sum(x) OVER
    (...), x)`` (:data:`SUM_OVER`: DataFusion's type of the sum; a macro cannot take
    ``OVER``); ``True`` if anything was replaced. Not where ``x`` aggregates (``sum(count(*))
    OVER ()``): DuckDB cannot pick a macro's overload by the type of an aggregate, so that
    sum keeps DuckDB's type (a HUGEINT of integers)."""
    nodes = [
        n for n in tree.walk()
        if isinstance(n, exp.Window) and isinstance(n.this, exp.Sum)
        and not isinstance(n.this.this, exp.Distinct) and not _aggregates(n.this.this)
    ]  # fmt: skip
    for node in reversed(nodes):  # innermost first
        named = isinstance(node.parent, exp.Select) and node.arg_key == "expressions"
        name = node.sql(normalize_functions="lower")
        built: exp.Expr = _fn(SUM_OVER, node.copy(), node.this.this.copy())
        if named:
            built = exp.alias_(built, name)
        node.replace(built)
    return bool(nodes)


def translate(tree: exp.Expr) -> bool:
    """Replace, in ``tree``, every call of :data:`FUNCTIONS` by its DuckDB translation, every
    ``sum(x) OVER (...)`` by DataFusion's (:data:`SUM_OVER`) and every ``/`` by
    DataFusion's division (:data:`DIV`); ``True`` if anything was replaced."""
    divided = _divisions(tree)
    windowed = _window_sums(tree)
    nodes = [n for n in tree.walk() if _call(n) is not None]
    # Innermost first (walk is depth-first, parents before children): a call's arguments
    # are read when it is replaced, after the calls inside them were.
    for node in reversed(nodes):
        call = _call(node)
        assert call is not None
        name, args, _ = call
        translation = FUNCTIONS[name]
        asked = bool(args) and isinstance(args[0], exp.Distinct)  # median(DISTINCT x)
        if asked:
            args = [*(a.copy() for a in args[0].expressions), *args[1:]]
        distinct = asked or (
            translation.aggregate
            and not translation.retracts
            and not _windowed(node.parent_select)
        )
        built = translation.build(args, distinct)
        if isinstance(node.parent, exp.Select) and node.arg_key == "expressions":
            # An unnamed result column keeps the name the user's text gives it.
            built = exp.alias_(built, node.sql(normalize_functions="lower"))
        node.replace(built)
    return divided or windowed or bool(nodes)
