"""What kind of query a text is, decided once when a continuous query is planned.

:func:`analyze` reads DuckDB SQL with sqlglot (views expanded) into a :class:`QueryShape`:
the tables it reads, how often it scans each, whether it aggregates or reads
``arroyo_status``. :func:`classify` then names the :class:`QueryKind`, which picks the plan
(:mod:`arroyo_lite.query.continuous`):

* ``APPEND``: no aggregate function, ``GROUP BY``, ``DISTINCT``, window function,
  ``HAVING``, ``LIMIT``/``OFFSET`` or set operation but ``UNION ALL``, through any views;
  each live source table scanned only once (a self-join, or a subquery over the same table,
  must match new rows with old ones), and one source table unless there is no join (a
  ``UNION ALL`` of sources). Each new source row yields its result rows once.
* ``WINDOWED``: an aggregate grouped by a time window (``tumble``/``hop``/``session``, as
  :mod:`arroyo_lite.sql.windows` translates them).
* ``UPDATING``: any other aggregate (its result rows change as rows arrive).
* ``REEVALUATED``: the rest (joins between sources, self-joins, ``arroyo_status``, and any
  query over an updating table such as a ``debezium_json`` source).
"""

from __future__ import annotations

import collections
import enum
from collections.abc import Container, Iterable
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

from arroyo_lite.query.status_table import STATUS_TABLE
from arroyo_lite.sql.aggregates import AGGREGATE_MACROS
from arroyo_lite.sql.transpile import HOP_INDEX, read_dialect
from arroyo_lite.sql.windows import WindowSpec, is_event_time, window_specs


class QueryKind(enum.StrEnum):
    APPEND = "append"
    WINDOWED = "windowed"
    UPDATING = "updating"
    REEVALUATED = "reevaluated"


@dataclass(frozen=True, slots=True)
class QueryShape:
    """What a query reads and whether it aggregates (through views)."""

    tables: frozenset[str]
    aggregating: bool
    reads_status: bool
    #: Tables scanned more than once (self-joins, a table in a subquery of its own query,
    #: a view or CTE used twice): such a query is not incremental, since new rows must
    #: meet old ones.
    rescanned: frozenset[str] = frozenset()
    #: How many times each table is scanned (views and CTEs expanded).
    scans: tuple[tuple[str, int], ...] = ()
    #: Whether it groups and computes a time window (``time_bucket``: what tumble and hop
    #: become).
    windowed: bool = False
    #: The widths of its windows (DuckDB interval text of each ``time_bucket`` over
    #: ``_timestamp``, views included), and whether one is a ``hop`` (several windows a row).
    widths: frozenset[str] = frozenset()
    hops: bool = False
    #: Whether it joins (views included): new rows of one source must then meet old rows of
    #: another, so only a one-source query (joined with memory tables) appends.
    joins: bool = False
    #: Its windows (tumble, hop, session; views included), which pick how a windowed plan
    #: closes them.
    windows: frozenset[WindowSpec] = frozenset()


@dataclass(frozen=True, slots=True)
class View:
    name: str
    shape: QueryShape


def analyze(
    sql: str,
    views: dict[str, View],
    all_tables: Iterable[str] = (),
    aggregates: Container[str] = frozenset(),
) -> QueryShape:
    """Tables read by DuckDB SQL ``sql`` (views expanded) and whether it aggregates.

    ``aggregates`` names DuckDB's aggregate functions (lower case), for those sqlglot does
    not know; it is asked only about the names of functions sqlglot does not know. Text
    sqlglot cannot parse counts as aggregating over every table in ``all_tables``: it is then
    simply re-evaluated whenever anything changes.
    """
    tree = _plain_tree(sql)
    if tree is None:
        try:
            tree = sqlglot.parse_one(sql, read="duckdb")
        except sqlglot.errors.SqlglotError:
            return QueryShape(frozenset(all_tables), True, STATUS_TABLE in sql.lower())
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    widths = {
        b.this.sql(dialect="duckdb")
        for b in tree.find_all(exp.DateBin)
        if is_event_time(b.expression)
    }
    hops = any(c.name == HOP_INDEX for c in tree.find_all(exp.Column))
    windows = window_specs(tree)
    joins = tree.find(exp.Join) is not None
    scans = _count_scans(tree, views)
    tables: set[str] = set()
    aggregating = _aggregates(tree, aggregates)
    reads_status = False
    windowed = False
    for table in tree.find_all(exp.Table):
        name = table.name.lower()
        if not name or name in ctes:
            continue
        view = views.get(name)
        if view is not None:
            tables |= view.shape.tables
            aggregating = aggregating or view.shape.aggregating
            windowed = windowed or view.shape.windowed
            widths |= view.shape.widths
            hops = hops or view.shape.hops
            windows |= view.shape.windows
            joins = joins or view.shape.joins
            reads_status = reads_status or view.shape.reads_status
        elif name == STATUS_TABLE:
            reads_status = True
        else:
            tables.add(name)
    # tumble()/hop() become DuckDB's time_bucket, which sqlglot reads as DATE_BIN; grouping
    # by it (directly or through its alias) makes a windowed aggregate.
    windowed = windowed or (tree.find(exp.Group) is not None and bool(widths or windows))
    return QueryShape(
        frozenset(tables),
        aggregating or reads_status,
        reads_status,
        rescanned=frozenset(t for t, n in scans.items() if n > 1),
        scans=tuple(sorted(scans.items())),
        windowed=windowed,
        widths=frozenset(widths),
        hops=hops,
        joins=joins,
        windows=frozenset(windows),
    )


#: The node types of a plain one-table query (columns, literals, aliases, operators, a
#: ``WHERE``), which the Arroyo dialect and DuckDB's read into the same tree. No function,
#: type, subquery, join, set operation or clause that shapes rows across each other; no
#: ``/`` either (each dialect marks its division with its own typing rules).
_PLAIN_NODES = frozenset({
    exp.Select, exp.From, exp.Table, exp.TableAlias, exp.Identifier, exp.Column, exp.Star,
    exp.Alias, exp.Where, exp.Literal, exp.Boolean, exp.Null, exp.Paren, exp.Neg, exp.Not,
    exp.And, exp.Or, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Is, exp.Add,
    exp.Sub, exp.Mul, exp.Mod, exp.DPipe,
})  # fmt: skip


def _plain_tree(sql: str) -> exp.Expr | None:
    """``sql`` read with the Arroyo dialect when it is a plain one-table query (every node
    in :data:`_PLAIN_NODES`), else ``None`` (read it with DuckDB's dialect).

    Why: the Arroyo dialect is loaded already (the compiler read the file with it), while
    importing sqlglot's DuckDB dialect costs ~25 ms of CPU (it parses SQL while its classes
    are built), a tenth of what ``run`` spends above its floor before the first row of
    ``SELECT a FROM t``. Both dialects tokenize such a query alike, except in strings: a
    text with a backslash or a ``$`` (escapes, dollar quoting) is left to DuckDB's.
    ``tests/test_shape_plain.py`` compares the shapes with those DuckDB's dialect gives.
    """
    if "\\" in sql or "$" in sql:
        return None
    if sql.lstrip()[:6].lower() != "select":
        return None
    try:
        tree = sqlglot.parse_one(sql, read=read_dialect())
    except sqlglot.errors.SqlglotError:
        return None
    if not all(type(node) in _PLAIN_NODES for node in tree.walk()):
        return None
    return tree


def _aggregates(tree: exp.Expr, aggregates: Container[str]) -> bool:
    """Whether the query's result depends on more than each row alone (aggregates, DISTINCT,
    window functions, LIMIT, set operations other than UNION ALL): not counting views."""
    return (
        any(
            True
            for _ in tree.find_all(exp.AggFunc, exp.Group, exp.Distinct, exp.Window, exp.Having)
        )
        or any(
            str(f.name).lower() in aggregates or str(f.name).lower() in AGGREGATE_MACROS
            for f in tree.find_all(exp.Anonymous)
        )
        # LIMIT/OFFSET/FETCH pick rows out of the whole result ("the 10 largest so far"):
        # over new rows only they would pick per batch.
        or any(True for _ in tree.find_all(exp.Limit, exp.Offset, exp.Fetch))
        # Set operations other than UNION ALL compare rows with each other (UNION removes
        # duplicates, EXCEPT/INTERSECT match rows up): over new rows only they would be
        # applied per batch, so a row could come out twice.
        or any(
            not isinstance(op, exp.Union) or bool(op.args.get("distinct"))
            for op in tree.find_all(exp.Union, exp.Except, exp.Intersect)
        )
    )


def _count_scans(tree: exp.Expr, views: dict[str, View]) -> collections.Counter[str]:
    """How many times the query scans each table: a reference to a view or a CTE counts
    the scans of its body (CTEs in definition order, so later ones may use earlier ones)."""
    cte_scans: dict[str, collections.Counter[str]] = {}

    def count(node: exp.Expr, owner: exp.Expr | None) -> collections.Counter[str]:
        out: collections.Counter[str] = collections.Counter()
        for table in node.find_all(exp.Table):
            if table.find_ancestor(exp.CTE) is not owner:
                continue  # inside a CTE body: counted where the CTE is referenced
            name = table.name.lower()
            if not name:
                continue
            if name in cte_scans:
                out.update(cte_scans[name])
            elif name in views:
                out.update(dict(views[name].shape.scans))
            else:
                out[name] += 1
        return out

    for cte in tree.find_all(exp.CTE):
        cte_scans[cte.alias_or_name.lower()] = count(cte.this, cte)
    return count(tree, None)


def sources_of(shape: QueryShape, memory: Iterable[str]) -> frozenset[str]:
    """The live tables ``shape`` reads: all but the ``memory`` tables (which never change)."""
    fixed = frozenset(memory)
    return frozenset(t for t in shape.tables if t not in fixed)


def classify(
    shape: QueryShape, sources: frozenset[str], updating: frozenset[str] = frozenset()
) -> QueryKind:
    """The kind of a query of ``shape`` reading the live tables ``sources``, of which
    ``updating`` are updating tables (their rows are changes: a query over one sees the rows
    they leave, re-evaluated)."""
    if sources & updating:
        return QueryKind.REEVALUATED
    one_at_a_time = len(sources) == 1 or not shape.joins  # new rows need no old ones
    if sources and not shape.aggregating and not shape.rescanned & sources and one_at_a_time:
        return QueryKind.APPEND
    if shape.aggregating and not shape.reads_status:
        return QueryKind.WINDOWED if shape.windowed else QueryKind.UPDATING
    return QueryKind.REEVALUATED
