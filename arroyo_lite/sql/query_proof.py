"""Prove, on the parsed query alone, that DuckDB would bind it: the check that needs no DuckDB.

:mod:`arroyo_lite.sql.query_check` binds every query with DuckDB over empty tables of the
declared schemas. Importing DuckDB and opening a connection is most of what ``validate``
of a small file would cost, while most queries of a small file are plain: one table, its
columns, operators, ``count``/``sum``/``avg``/``min``/``max``, ``GROUP BY`` columns.
:func:`binds` decides those on the sqlglot tree with the declared column types, and
answers only "certainly binds" or "cannot tell": it never reports an error. A query it
cannot vouch for (anything outside the shapes below) is bound by DuckDB exactly as before,
so every message and position comes from one place.

Vouched for: a single ``SELECT [DISTINCT]`` over one table of the program (an optional
alias), no join, subquery, CTE, set operation or window; projections of columns (``*``
outside ``GROUP BY``), literals, ``+ - * / %`` over numbers, ``||`` over text, comparisons,
``BETWEEN`` and ``IN (literals)`` between values of one kind (number, text, boolean,
timestamp), ``AND``/``OR``/``NOT``, ``IS [NOT] NULL``, ``LIKE``/``ILIKE`` on text, ``CAST``
of a number, text or boolean to a scalar type, and the aggregates above (``count(*)``,
``count(DISTINCT x)``; ``sum``/``avg`` of numbers). With an aggregate or ``GROUP BY``, every
column outside an aggregate must be a ``GROUP BY`` column (itself a plain column).
``WHERE`` and ``HAVING`` must be boolean, ``LIMIT`` an integer literal. DuckDB binds all of
these (its implicit casts cover numbers of different widths and NULL); the tests compare
the verdicts with DuckDB's on generated queries.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlglot import exp

from arroyo_lite.config import TIMESTAMP_COLUMN, ColumnType

#: The kinds values are compared and combined by; "other" values (JSON, structs, lists,
#: dates, bytes) may only be projected, grouped, counted or compared with NULL.
NUMBER, TEXT, BOOLEAN, TIMESTAMP, OTHER, NULL = (
    "number", "text", "boolean", "timestamp", "other", "null",
)  # fmt: skip
_NUMERIC = frozenset({
    "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float32",
    "float64", "decimal128",
})  # fmt: skip
_CAST_TARGETS = {
    **dict.fromkeys(
        [exp.DataType.Type.TINYINT, exp.DataType.Type.SMALLINT, exp.DataType.Type.INT,
         exp.DataType.Type.BIGINT, exp.DataType.Type.FLOAT, exp.DataType.Type.DOUBLE,
         exp.DataType.Type.DECIMAL], NUMBER),
    **dict.fromkeys(
        [exp.DataType.Type.TEXT, exp.DataType.Type.VARCHAR, exp.DataType.Type.CHAR], TEXT),
    exp.DataType.Type.BOOLEAN: BOOLEAN,
}  # fmt: skip
_ARITHMETIC = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)
_COMPARISONS = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)
_AGGREGATES = (exp.Count, exp.Sum, exp.Avg, exp.Min, exp.Max)
_SELECT_PARTS = frozenset({"expressions", "from_", "where", "group", "having", "order", "limit"})


def kind_of(column_type: ColumnType, is_json: bool) -> str:
    """The kind a column of ``column_type`` compares as."""
    if column_type.factory in _NUMERIC:
        return NUMBER
    if column_type.factory == "string" and not is_json:
        return TEXT
    if column_type.factory == "bool_":
        return BOOLEAN
    if column_type.factory == "timestamp":
        return TIMESTAMP
    return OTHER


def _set_args(node: exp.Expr) -> set[str]:
    """The argument names ``node`` has a value for."""
    return {k for k, v in node.args.items() if v is not None and v is not False and v != []}


class _Unproven(Exception):
    """The query is outside the shapes vouched for (DuckDB decides)."""


def binds(
    tree: exp.Expr,
    tables: Mapping[str, Sequence[tuple[str, str]]],
    *,
    insert_width: int | None = None,
) -> bool:
    """Whether ``tree`` certainly binds over ``tables`` (lower-case name -> the
    ``(column, kind)`` pairs DuckDB sees, ``_timestamp`` included). With ``insert_width``,
    also that it returns that many columns besides ``_timestamp`` (an INSERT's check)."""
    try:
        width = _Select(tree, tables).check()
    except _Unproven:
        return False
    return insert_width is None or width == insert_width


class _Select:
    def __init__(self, tree: exp.Expr, tables: Mapping[str, Sequence[tuple[str, str]]]):
        if not isinstance(tree, exp.Select):
            raise _Unproven
        self.select = tree
        if _set_args(tree) - _SELECT_PARTS - {"distinct"}:
            raise _Unproven
        distinct = tree.args.get("distinct")
        if distinct is not None and (distinct.args.get("on") or tree.args.get("order")):
            raise _Unproven  # (DISTINCT ON; DISTINCT with ORDER BY has rules of its own)
        source = tree.args.get("from_")
        table = source.this if isinstance(source, exp.From) else None
        if not isinstance(table, exp.Table) or table.args.get("db") or table.args.get("catalog"):
            raise _Unproven
        if not isinstance(table.this, exp.Identifier) or table.name.lower() not in tables:
            raise _Unproven
        alias = table.args.get("alias")
        if alias is not None and alias.args.get("columns"):
            raise _Unproven
        self.names = {table.name.lower(), table.alias_or_name.lower()}
        self.columns = tables[table.name.lower()]
        self.kinds = {name.lower(): kind for name, kind in self.columns}
        self.grouped: set[str] | None = None

    def check(self) -> int:
        """Check every clause; the number of columns returned besides ``_timestamp``."""
        tree = self.select
        group = tree.args.get("group")
        aggregated = isinstance(group, exp.Group) or any(
            part.find(*_AGGREGATES) for part in self._clauses("expressions", "having", "order")
        )
        if isinstance(group, exp.Group):
            if _set_args(group) - {"expressions"}:
                raise _Unproven  # (GROUPING SETS, CUBE, ROLLUP, ALL)
            if not all(isinstance(g, exp.Column) for g in group.expressions):
                raise _Unproven
            for column in group.expressions:
                self._kind(column, in_aggregate=True)
        where = tree.args.get("where")
        if isinstance(where, exp.Where):  # (before grouping: it reads any column)
            if where.this.find(*_AGGREGATES):
                raise _Unproven
            self._boolean(where.this)
        if aggregated:
            self.grouped = {g.name.lower() for g in group.expressions} if group else set()
        having = tree.args.get("having")
        if having is not None:
            if not aggregated:
                raise _Unproven
            self._boolean(having.this)
        order = tree.args.get("order")
        if order is not None:
            for item in order.expressions:
                if not isinstance(item, exp.Ordered) or self._is_alias(item.this):
                    raise _Unproven
                if isinstance(item.this, exp.Literal):
                    raise _Unproven  # (an ordinal: DuckDB checks its range)
                self._kind(item.this)
        limit = tree.args.get("limit")
        if limit is not None:
            count = limit.args.get("expression")
            if _set_args(limit) - {"expression"} or not (
                isinstance(count, exp.Literal) and not count.is_string and count.name.isdigit()
            ):
                raise _Unproven
        width = 0
        for projection in tree.expressions:
            if isinstance(projection, exp.Star):
                if aggregated:
                    raise _Unproven
                width += sum(1 for name, _ in self.columns if name != TIMESTAMP_COLUMN)
                continue
            node = projection.this if isinstance(projection, exp.Alias) else projection
            if projection.alias_or_name.lower() == TIMESTAMP_COLUMN:
                raise _Unproven  # (DuckDB leaves it out of the INSERT's width; not judged here)
            self._kind(node)
            width += 1
        return width

    def _clauses(self, *parts: str) -> list[exp.Expr]:
        found: list[exp.Expr] = []
        for part in parts:
            value = self.select.args.get(part)
            found += value if isinstance(value, list) else [value] if value is not None else []
        return found

    def _is_alias(self, node: exp.Expr) -> bool:
        aliases = {p.alias.lower() for p in self.select.expressions if isinstance(p, exp.Alias)}
        return isinstance(node, exp.Column) and node.name.lower() in aliases

    def _boolean(self, node: exp.Expr) -> None:
        if self._kind(node) not in (BOOLEAN, NULL):
            raise _Unproven

    def _kind(self, node: exp.Expr, *, in_aggregate: bool = False) -> str:
        """The kind of ``node``'s value; raises :class:`_Unproven` outside the known shapes."""
        if isinstance(node, exp.Paren):
            return self._kind(node.this, in_aggregate=in_aggregate)
        if isinstance(node, exp.Column):
            return self._column(node, in_aggregate)
        if isinstance(node, exp.Null):
            return NULL
        if isinstance(node, exp.Boolean):
            return BOOLEAN
        if isinstance(node, exp.Literal):
            return TEXT if node.is_string else NUMBER
        if isinstance(node, _AGGREGATES):
            return self._aggregate(node, in_aggregate)
        if isinstance(node, exp.Neg):
            return self._same(NUMBER, self._kind(node.this, in_aggregate=in_aggregate))
        if isinstance(node, exp.Not):
            return self._same(BOOLEAN, self._kind(node.this, in_aggregate=in_aggregate))
        if isinstance(node, exp.Is):
            if not isinstance(node.expression, exp.Null):
                raise _Unproven
            self._kind(node.this, in_aggregate=in_aggregate)
            return BOOLEAN
        if isinstance(node, exp.Cast) and not isinstance(node, exp.TryCast):
            target = node.args.get("to")
            if not isinstance(target, exp.DataType) or target.expressions:
                raise _Unproven
            kind = _CAST_TARGETS.get(target.this)
            if kind is None or target.args.get("nested"):
                raise _Unproven
            if self._kind(node.this, in_aggregate=in_aggregate) not in (
                NUMBER, TEXT, BOOLEAN, NULL,
            ):  # fmt: skip
                raise _Unproven
            return kind
        operands = self._operands(node)
        kinds = [self._kind(o, in_aggregate=in_aggregate) for o in operands]
        if isinstance(node, _ARITHMETIC):
            return self._same(NUMBER, *kinds)
        if isinstance(node, exp.DPipe):
            return self._same(TEXT, *kinds)
        if isinstance(node, exp.And | exp.Or):
            self._same(BOOLEAN, *kinds)
            return BOOLEAN
        if isinstance(node, exp.Like | exp.ILike):
            self._same(TEXT, *kinds)
            return BOOLEAN
        if isinstance(node, (*_COMPARISONS, exp.Between, exp.In)):
            known = {k for k in kinds if k != NULL}
            if len(known) > 1 or known & {OTHER}:
                raise _Unproven
            return BOOLEAN
        raise _Unproven

    def _operands(self, node: exp.Expr) -> list[exp.Expr]:
        if isinstance(node, exp.Between):
            return [node.this, node.args["low"], node.args["high"]]
        if isinstance(node, exp.In):
            if node.args.get("query") or node.args.get("unnest") or node.args.get("field"):
                raise _Unproven
            return [node.this, *node.expressions]
        if isinstance(node, exp.Like | exp.ILike) and node.args.get("escape"):
            raise _Unproven
        if isinstance(node, exp.Binary) and not _set_args(node) - {
            "this", "expression", "safe", "typed",
        }:  # fmt: skip
            return [node.left, node.right]
        raise _Unproven

    @staticmethod
    def _same(kind: str, *kinds: str) -> str:
        if any(k not in (kind, NULL) for k in kinds):
            raise _Unproven
        return kind

    def _column(self, node: exp.Column, in_aggregate: bool) -> str:
        if not isinstance(node.this, exp.Identifier) or node.args.get("db"):
            raise _Unproven
        if node.table and node.table.lower() not in self.names:
            raise _Unproven
        name = node.name.lower()
        if name not in self.kinds:
            raise _Unproven
        if self.grouped is not None and not in_aggregate and name not in self.grouped:
            raise _Unproven  # (DuckDB: "must appear in the GROUP BY clause")
        return self.kinds[name]

    def _aggregate(self, node: exp.Expr, in_aggregate: bool) -> str:
        if in_aggregate or _set_args(node) - {"this", "big_int"}:
            raise _Unproven  # (nested aggregates; FILTER, ORDER BY inside, ...)
        argument = node.this
        if isinstance(node, exp.Count):
            if isinstance(argument, exp.Star):
                return NUMBER
            if isinstance(argument, exp.Distinct):
                if len(argument.expressions) != 1 or argument.args.get("on"):
                    raise _Unproven
                if self._kind(argument.expressions[0], in_aggregate=True) == OTHER:
                    raise _Unproven
                return NUMBER
            self._kind(argument, in_aggregate=True)
            return NUMBER
        if not isinstance(argument, exp.Expr):
            raise _Unproven
        kind = self._kind(argument, in_aggregate=True)
        if isinstance(node, exp.Sum | exp.Avg):
            return self._same(NUMBER, kind)
        if kind in (OTHER, NULL):
            raise _Unproven
        return kind
