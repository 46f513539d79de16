"""DataFusion's result types of ``sum`` and ``avg``, as DuckDB macros: the one mapping.

Arroyo plans with DataFusion 48 (``Cargo.toml`` pins ``datafusion = "48.0.1"``, Arroyo's
fork); its rules, from ``functions-aggregate/src/sum.rs`` (``coerce_types``,
``return_type``), ``expr-common/src/type_coercion/aggregates.rs`` (``avg_return_type``) and
``functions-aggregate-common/src/utils.rs`` (``DecimalAverager``), by input type:

=================== ======================================= ===============================
input (DuckDB)      ``sum`` (and ``sum(...) OVER``)         ``avg``
=================== ======================================= ===============================
signed integer      BIGINT (Int64), wrapping on overflow    DOUBLE (Float64)
unsigned integer    UBIGINT (UInt64), wrapping              DOUBLE
FLOAT, DOUBLE       DOUBLE (Float64)                        DOUBLE
``DECIMAL(p, s)``   ``DECIMAL(min(38, p + 10), s)``         ``DECIMAL(min(38, p + 4),
                                                            min(38, s + 4))``, truncated
=================== ======================================= ===============================

:data:`ROWS` is that table; each macro picks its body by the type of its argument (typed
macro parameters), so one call site serves every input type. DuckDB's own ``sum`` of an
integer is a HUGEINT (the wrapped 64-bit value is taken from it, so the result is
DataFusion's at any size), of a decimal a ``DECIMAL(38, s)``; its ``avg`` of a decimal is a
DOUBLE. HUGEINT and UHUGEINT (DuckDB's own, no DataFusion type) keep DuckDB's aggregates.

**A decimal's type from its argument.** A DuckDB macro cannot write a type that depends on
its argument, and DuckDB's decimal arithmetic cannot produce ``p + 10`` or ``p + 4`` for
every ``p`` (its product of two decimals of at most 18 digits is capped at 18 digits).
:data:`TYPE_OF` names a typed NULL instead: ``json_transform('null', '"DECIMAL(P,S)"')``
with ``P`` and ``S`` computed from ``typeof(x)``, which DuckDB folds to a constant when it
binds the query (the plan reads ``CAST(sum(x) AS DECIMAL(26,2))``; nothing runs per row).
``cast_to_type(value, sample)`` then gives ``value`` that type. A value too wide for it is
an error, where DataFusion's sum keeps a value wider than its type (``add_wrapping`` on
``i128``, no precision check) - beyond ``10^(p + 10 - s)``, sums of ten billion rows.

**DataFusion's decimal average** (``DecimalAverager::avg``) is the sum's unscaled integer
times ``10^(target_scale - s)``, divided by the count in integer arithmetic (truncating
toward zero), checked against the target precision (an error otherwise, as DuckDB's cast
to the result type is). :data:`DECIMAL_AVG` computes exactly that on HUGEINTs: a decimal's
unscaled integer is its text without the point (DuckDB has no function for it), and the
quotient goes back through text to the result type. It runs once per group.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AVG", "AVG_DISTINCT", "AVG_OF", "DECIMAL_AVG", "MACROS", "NAMES", "ROWS",
           "SUM", "SUM_DISTINCT", "SUM_OVER", "TYPE_OF", "Row"]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Row:
    """DataFusion's ``sum`` and ``avg`` of the DuckDB types ``types``, as DuckDB SQL over
    ``{total}`` (DuckDB's sum), ``{mean}`` (DuckDB's avg), ``{count}`` (the count of
    non-NULL values) and ``{x}`` (a sample of the argument's type: DuckDB folds ``typeof``
    of it, so it is never evaluated for its value)."""

    types: tuple[str, ...]
    #: ``None``: no overload of the sum macros for these types (the untyped one's
    #: ``sum(x)`` then rejects them in DuckDB's words).
    sum: str | None
    avg: str


#: The macros (their names).
SUM, SUM_DISTINCT, SUM_OVER = "arroyo_sum", "arroyo_sum_distinct", "arroyo_sum_over"
AVG, AVG_DISTINCT, AVG_OF = "arroyo_avg", "arroyo_avg_distinct", "arroyo_avg_of"
TYPE_OF, DECIMAL_AVG = "arroyo_type_of", "arroyo_decimal_avg"

_TWO_64 = 18446744073709551616
_WRAP_SIGNED = (
    f"CAST((({{total}} + 9223372036854775808) % {_TWO_64} + {_TWO_64}) % {_TWO_64} "
    "- 9223372036854775808 AS BIGINT)"
)
_WRAP_UNSIGNED = f"CAST({{total}} % {_TWO_64} AS UBIGINT)"

#: DataFusion's sum and avg per input type. The untyped body (``types`` empty) takes every
#: type without an overload of its own: FLOAT and DOUBLE, which cannot have one (a typed
#: macro parameter takes whatever casts to its type implicitly, and a DECIMAL casts to
#: DOUBLE), decimals, and the types DuckDB's ``sum``/``avg`` reject (in their words).
ROWS: tuple[Row, ...] = (
    Row(("TINYINT", "SMALLINT", "INTEGER", "BIGINT"), _WRAP_SIGNED, "{mean}"),
    Row(("UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"), _WRAP_UNSIGNED, "{mean}"),
    Row(("HUGEINT", "UHUGEINT"), "{total}", "{mean}"),
    # DuckDB's avg of an INTERVAL is an INTERVAL, as DataFusion's of a Duration is a
    # Duration; neither sums one.
    Row(("INTERVAL",), None, "{mean}"),
    Row((), f"cast_to_type({{total}}, {TYPE_OF}({{x}}, 10, 0))",
        f"{DECIMAL_AVG}({{total}}, {{count}}, {{mean}}, {TYPE_OF}({{x}}, 4, 4))"),
)  # fmt: skip

#: ``arroyo_type_of(x, dp, ds)``: a NULL of DataFusion's type for the sum (``dp = 10, ds =
#: 0``) or average (``4, 4``) of ``x``, a FLOAT, DOUBLE or decimal: DOUBLE of a float,
#: ``DECIMAL(min(38, p + dp), min(38, s + ds))`` of a ``DECIMAL(p, s)``; for any other type
#: an error saying so.
_TYPE_OF = (
    f"CREATE OR REPLACE MACRO {TYPE_OF}(x, dp, ds) AS json_transform('null', "
    "CASE WHEN typeof(x) IN ('FLOAT', 'DOUBLE') THEN '\"DOUBLE\"' "
    "WHEN typeof(x) LIKE 'DECIMAL(%' THEN format('\"DECIMAL({},{})\"', "
    "least(38, CAST(regexp_extract(typeof(x), '\\((\\d+),', 1) AS INTEGER) + dp), "
    "least(38, CAST(regexp_extract(typeof(x), ',(\\d+)\\)', 1) AS INTEGER) + ds)) "
    # (``error()`` would keep DuckDB from folding the structure: an invalid type name
    # fails the bind with its text in DuckDB's message instead.)
    "ELSE '\"sum and avg take numbers, not ' || typeof(x) || '\"' END)"
)

#: The scale of a decimal (from its type's name, folded when DuckDB binds).
_SCALE = "CAST(regexp_extract(typeof({}), ',(\\d+)\\)', 1) AS INTEGER)"
#: ``arroyo_decimal_avg(total, n, mean, sample)``: DataFusion's average, in the type of
#: ``sample``, of ``n`` values summing to ``total`` (DuckDB's sum, exact for decimals) with
#: DuckDB's average ``mean``: ``mean`` itself for floats (``sample`` a DOUBLE). Both
#: branches have the sample's type, and the one not taken is never evaluated.
_DECIMAL_AVG = (
    f"CREATE OR REPLACE MACRO {DECIMAL_AVG}(total, n, mean, sample) AS "
    "CASE WHEN typeof(sample) = 'DOUBLE' THEN cast_to_type(mean, sample) "
    "WHEN n = 0 THEN NULL ELSE cast_to_type(arroyo_decimal_text("
    "CAST(replace(CAST(total AS VARCHAR), '.', '') AS HUGEINT) "
    f"* CAST('1' || repeat('0', {_SCALE.format('sample')} - {_SCALE.format('total')}) "
    f"AS HUGEINT) // n, {_SCALE.format('sample')}), sample) END"
)
#: ``arroyo_decimal_text(u, scale)``: the decimal text of unscaled integer ``u`` at
#: ``scale``: its digits, zero-padded to more than ``scale`` of them (DuckDB's ``lpad``
#: also cuts a longer text to the length), with the point ``scale`` digits from the end.
_DIGITS = (
    "lpad(CAST(abs(u) AS VARCHAR), "
    "CAST(greatest(length(CAST(abs(u) AS VARCHAR)), scale + 1) AS INTEGER), '0')"
)
_DECIMAL_TEXT = (
    "CREATE OR REPLACE MACRO arroyo_decimal_text(u, scale) AS CASE WHEN scale = 0 "
    "THEN CAST(u AS VARCHAR) ELSE (CASE WHEN u < 0 THEN '-' ELSE '' END) "
    f"|| left({_DIGITS}, length({_DIGITS}) - scale) || '.' || right({_DIGITS}, scale) END"
)


def _overloads(
    name: str,
    body: str,
    *,
    total: str,
    mean: str = "",
    count: str = "",
    lead: str = "",
    sample: str = "min(x)",
    skip: tuple[str, ...] = (),
    selector: bool = False,
) -> str:
    """``CREATE MACRO name`` with one overload per :data:`ROWS` type (the untyped one
    last): ``body`` names the :class:`Row` field, ``total``/``mean``/``count`` what
    ``{total}``, ``{mean}`` and ``{count}`` are, ``lead`` the parameters before ``x``,
    ``sample`` an expression of ``x``'s type valid where the macro is called (an aggregate
    where ``x`` is a row's value; DuckDB drops it once ``typeof`` of it is folded); no
    overload for the types ``skip``.

    ``selector``: the macro takes the argument twice, ``(t, x)``: the typed ``t`` picks
    the overload (and is not used), the untyped ``x`` is the value, in its own type. So
    floats get an overload of their own, ``(t DOUBLE, x)``, and decimals one typed
    ``DECIMAL(38, 0)`` (which every decimal prefers to ``DOUBLE``): a typed ``x`` would be
    cast to the overload's type, and with the floats in the untyped body, DuckDB bound
    the decimal branch of every average of a DOUBLE too (~10 ms a query)."""
    bodies = []

    def params(t: str) -> str:
        typed = f"{' ' + t if t else ''}"
        return f"({lead}t{typed}, x)" if selector else f"({lead}x{typed})"

    for row in ROWS:
        template = getattr(row, body)
        if template is None:
            continue
        sql = template.format(total=total, mean=mean, count=count, x=sample)
        if selector and not row.types:  # floats and decimals apart (see above)
            bodies.append(f"{params('DOUBLE')} AS {_FLOAT_AVG.format(mean=mean)}")
            bodies.append(f"{params('DECIMAL(38, 0)')} AS {sql}")
        for t in row.types or ("",):
            if t in skip:
                continue
            bodies.append(f"{params(t)} AS {sql}")
    return f"CREATE OR REPLACE MACRO {name} {', '.join(bodies)}"


#: The average of a FLOAT or DOUBLE: DuckDB's (a DOUBLE, as DataFusion's Float64).
_FLOAT_AVG = "{mean}"


#: Every statement defining the macros on a connection (idempotent), in dependency order.
MACROS: tuple[str, ...] = (
    _TYPE_OF,
    _DECIMAL_TEXT,
    _DECIMAL_AVG,
    _overloads(SUM, "sum", total="sum(x)"),
    _overloads(SUM_DISTINCT, "sum", total="sum(DISTINCT x)"),
    _overloads(AVG, "avg", total="sum(x)", mean="avg(x)", count="count(x)", selector=True),
    _overloads(AVG_DISTINCT, "avg", total="sum(DISTINCT x)", mean="avg(DISTINCT x)",
               count="count(DISTINCT x)", selector=True),
    # ``arroyo_sum_over(sum(x) OVER (...), x)``: the window's DuckDB sum given DataFusion's
    # type (a macro cannot take OVER).
    _overloads(SUM_OVER, "sum", total="total", lead="total, ", sample="x"),
    # ``arroyo_avg_of(total, n, sample)``: the average of ``n`` values summing to ``total``
    # (DuckDB's sum, so exact for decimals) of the type of ``sample`` (one of them): what a
    # state of partial sums and counts needs to end in DataFusion's average. (DuckDB has no
    # sum of an INTERVAL, so no such state of one.)
    _overloads(AVG_OF, "avg", total="total", count="n", lead="total, n, ", sample="x",
               mean="CASE WHEN n = 0 THEN NULL ELSE CAST(total AS DOUBLE) / n END",
               skip=("INTERVAL",)),
)

#: The names of the macros :data:`MACROS` defines.
NAMES = (TYPE_OF, "arroyo_decimal_text", DECIMAL_AVG, SUM, SUM_DISTINCT, AVG,
         AVG_DISTINCT, SUM_OVER, AVG_OF)  # fmt: skip
