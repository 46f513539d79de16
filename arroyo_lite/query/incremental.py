"""Incremental aggregation: an updating aggregate kept as per-group state.

Contract. :func:`compile_aggregate` accepts a query of the shape

    SELECT <keys and aggregates> FROM <one live table> [WHERE <row filter>]
        [GROUP BY <keys>] [HAVING <condition>]

(also ``SELECT DISTINCT <columns> FROM t [WHERE ...]``, and either of them wrapped in
``SELECT <projection> FROM (<it>) [WHERE <condition>]`` layers, as Arroyo's suite writes a filter
on an aggregate's output) whose aggregates are ``count(*)``, ``count``, ``sum``, ``min``,
``max`` and ``avg``, each optionally ``DISTINCT``, and whose other expressions use only the
grouping keys. It returns ``None`` for every other shape (joins, subqueries over tables,
``ORDER BY``/``LIMIT``, window functions, ``FILTER``, grouping sets, any other aggregate...):
those are re-evaluated whole (:class:`~arroyo_lite.query.continuous.UpdatingPlan`).

An :class:`AggregateState` holds, on a DuckDB connection of its own, one row per group (the
grouping keys, and a *partial* per aggregate: a count, a sum, a min or max; ``avg`` keeps a sum
and a count) and, per ``DISTINCT`` aggregate, the set of distinct (keys, value) pairs seen.
:meth:`AggregateState.apply` takes a batch of *new* rows of the table (rows only arrive):
DuckDB computes the batch's partials per group, merges them with the touched groups' state
(``UNION ALL`` + ``GROUP BY`` of the partials: a sum of sums, a min of mins...), replaces those
groups' rows, and returns the changes of the result: for the touched groups only, the old
result rows retracted and the new ones added, rows equal before and after left out
(:func:`arroyo_lite.query.changelog.diff`, the ``_retract`` convention of that module). The
work per batch grows with the batch and the number of groups, never with the rows already
absorbed (a ``DISTINCT`` aggregate: with its distinct values). No Python runs per row.

The result is the one re-evaluating the query over every row absorbed gives (same column
names and types: each result is cast to the query's own result schema, read by running the
query over no rows), with NULL keys grouped together as ``GROUP BY`` does. Floating-point sums
and averages are added in another order than one pass over the table would (as DuckDB's own
parallel aggregation does), so their last bits may differ; integer and decimal ones are exact.
Rows that leave the table (retention) cannot be taken back out of a min or a sum: the owner
rebuilds the state from the rows kept (:meth:`AggregateState.rebuild`).

Memory. DuckDB does not give back what a ``MERGE`` into an in-memory table allocated until
its database is closed (C++ objects in glibc's heap, which DuckDB's own accounting,
``duckdb_memory()`` and ``PRAGMA database_size``, does not count: both stay flat while glibc's
in-use memory grows; duckdb/duckdb#9263, #14087): a state updated on every batch would grow
without end. So the state counts what DuckDB keeps of its merges, :data:`KEPT_PER_APPLY` per
batch plus :data:`KEPT_PER_ROW` per row merged (upper values measured: the cost is mostly per
batch), and once that reaches :data:`RENEW_FACTOR` times the state's own size (its tables as
Arrow at the last move), at least :data:`RENEW_MIN_BYTES`, the state's tables move to a new
in-memory database and the old one is closed (:meth:`AggregateState.renew`). What DuckDB keeps
thus peaks at the same height whatever the batches' sizes and rate (a count of rows merged,
the rule before, let a run of small batches keep 2-3 times more between two moves than one
of large batches, and glibc's arena held the highest peak seen so far: it stepped up through
30-minute runs); the cost of a move, one copy of the state, is spread over merges that kept
at least its size (a 1,000-group state: a 27 ms move every ~82 batches of ~9 ms).

A state's database runs its queries on the calling thread alone (``threads = 1``; a batch's
work is small). With DuckDB's default, each new database started a worker thread and each
closed one ended it, so every renewal moved the state's C++ objects to whichever glibc
arena the next new thread was given: the holes left in the other arenas grew glibc's free
memory by ~3-4 MB/min in that benchmark (the same in-use bytes spread over more pages);
one thread keeps the state's allocations in one arena, where the next renewal reuses them.
It starts no async I/O thread either (``async_threads = 0``, as every database of the
query layer: :data:`~arroyo_lite.query.connection.DATABASE_CONFIG`): DuckDB 2.0 starts 8 per
database by default, so each renewal (every ~15 s in that benchmark then) started 8 threads and
ended 8, each new one handed a glibc arena (and its own
heap when fewer than 8 per core existed); what they allocated there held arenas the
state's thread later shared, and glibc's held memory kept creeping (~0.1-0.2 MB/min).
The state's arena then holds the sawtooth of those moves at about the same peak (~10.4 MB
in that benchmark, rising ~0.01 MB/min, less than glibc's creep in the control process;
``benchmarks/README.md``, "Memory flat, by bytes kept").
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from arroyo_lite.formats.pandas_free import empty_table
from arroyo_lite.query.builtins import Builtins
from arroyo_lite.query.changelog import changes, diff
from arroyo_lite.query.connection import configure, open_database
from arroyo_lite.query.duck import LiveRef, pin
from arroyo_lite.sql.aggregates import SUM, SUM_DISTINCT, builtin_sum

log = logging.getLogger(__name__)

#: What DuckDB keeps of the merges into a state until its database closes (see "Memory"),
#: bytes: about this much per batch merged ...
KEPT_PER_APPLY = 12_000
#: ... plus this much per row merged (upper values measured on DuckDB 2.0.1: 6.6-12 kB per
#: batch of 10-1,000 rows, 15 kB for 1,000 rows and 35 kB for 18,000 rows in 100,000
#: groups, 153 kB for 95,000 rows in 1,000,000 groups).
KEPT_PER_ROW = 2
#: The state moves to a new database once that reaches this many times the state's own
#: size (its tables as Arrow, measured at the last move) ...
RENEW_FACTOR = 1.0
#: ... or, for a small state, this many bytes.
RENEW_MIN_BYTES = 1_000_000

#: The aggregate functions kept as state, and how their partials merge. ``SUM`` is
#: DataFusion's sum (a macro of :mod:`arroyo_lite.sql.aggregates`): its partials have the
#: result's type, and wrapping each partial then their sum is wrapping the whole sum.
#: The sum macros are read as ``sum`` nodes marked ``meta[SUM]`` (``builtin_sum``), so the
#: query's shape is judged as any sum's.
_MERGE = {"count": "sum({})::BIGINT", "sum": "sum({})", "min": "min({})", "max": "max({})",
          SUM: f"{SUM}({{}})"}  # fmt: skip
_FUNCTIONS: dict[type[exp.Expr], str] = {
    exp.Count: "count",
    exp.Sum: "sum",
    exp.Min: "min",
    exp.Max: "max",
    exp.Avg: "avg",
}
#: Nodes that change what an aggregate means or need more than one row at a time.
_REFUSED = (exp.Filter, exp.Window, exp.WithinGroup, exp.Order, exp.Lambda, exp.Subquery,
            exp.Join, exp.Limit, exp.Offset, exp.Qualify, exp.CTE, exp.Union, exp.Except,
            exp.Intersect, exp.Star)  # fmt: skip


#: Functions whose value changes between evaluations (the time, random numbers): a state
#: applies each row once, so a filter on now() would never let a row go.
_VOLATILE_NODES = (exp.CurrentTimestamp, exp.CurrentDate, exp.CurrentTime, exp.Rand)
_VOLATILE_NAMES = frozenset(
    {"now", "random", "uuid", "gen_random_uuid", "get_current_timestamp", "today",
     "current_localtimestamp", "current_localtime", "transaction_timestamp", "setseed"}
)  # fmt: skip


class Unsupported(Exception):
    """The query is not of a shape kept as per-group state (the reason is the message)."""


@dataclass(frozen=True, slots=True)
class _Partial:
    """One state column: its SQL over a batch's rows, and how two of its values merge."""

    name: str
    partial: str
    merge: str


@dataclass(frozen=True, slots=True)
class _Distinct:
    """A ``f(DISTINCT x)``: the distinct (keys, x) pairs live in ``table``; the state column
    ``name`` holds ``f`` over them for each group."""

    name: str
    table: str
    value: str
    function: str


@dataclass(frozen=True, slots=True)
class AggregateQuery:
    """A query compiled into per-group state (:func:`compile_aggregate`)."""

    #: The query (DuckDB SQL), the table it reads as named there, and its FROM item.
    sql: str
    source: str
    source_from: str
    #: The row filter, and the grouping keys (SQL over the table's rows).
    where: str | None
    keys: tuple[str, ...]
    #: The state columns besides the keys (``__k0``...).
    partials: tuple[_Partial, ...]
    distincts: tuple[_Distinct, ...]
    #: The aggregating SELECT; its result expressions and HAVING over the state columns
    #: (aggregates replaced by their final values, keys by key columns); the outer layers
    #: (``None`` when the aggregate is the query).
    inner: exp.Select
    finals: tuple[exp.Expr, ...]
    having: exp.Expr | None
    outer: exp.Select | None


def compile_aggregate(sql: str, sources: frozenset[str]) -> AggregateQuery:
    """Compile DuckDB SQL ``sql`` over the live tables ``sources`` (lower-case names) into
    per-group state; :class:`Unsupported` (with the reason) for other shapes."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.SqlglotError as e:
        raise Unsupported(f"sqlglot cannot read it: {e}") from None
    tree = tree.transform(builtin_sum)
    if not isinstance(tree, exp.Select):
        raise Unsupported("not a SELECT")
    root = tree
    inner = tree
    # Outer layers: SELECT <projection> FROM (<inner>) [alias] [WHERE ...], nothing more.
    while isinstance((source := inner.args["from_"].this if inner.args.get("from_") else None),
                     exp.Subquery):  # fmt: skip
        _check_plain(inner, layer=True)
        if not isinstance(source.this, exp.Select):
            raise Unsupported("a subquery that is not a SELECT")
        inner = source.this
    table = inner.args["from_"].this if inner.args.get("from_") else None
    if not isinstance(table, exp.Table) or table.args.get("db") or table.args.get("catalog"):
        raise Unsupported("not one table in FROM")
    if table.name.lower() not in sources:
        raise Unsupported(f"FROM {table.name} is not a live source table")
    if sum(1 for _ in root.find_all(exp.Table)) != 1:
        raise Unsupported("reads more than one table")
    _check_plain(inner, layer=False)
    for node in root.find_all(exp.Func):
        if isinstance(node, _VOLATILE_NODES) or (
            isinstance(node, exp.Anonymous) and str(node.name).lower() in _VOLATILE_NAMES
        ):
            raise Unsupported(f"{node.sql(dialect='duckdb')} changes between evaluations")
    qualifiers = {table.name.lower(), table.alias_or_name.lower()}
    for column in list(inner.find_all(exp.Column)):
        if column.table and column.table.lower() in qualifiers and not column.args.get("db"):
            column.set("table", None)  # one table: a qualified column is the plain one
    items = [e.this if isinstance(e, exp.Alias) else e for e in inner.expressions]
    keys = _keys(inner, items)
    state = _Builder(keys)
    finals = tuple(state.lower(item) for item in items)
    having_node = inner.args.get("having")
    having = state.lower(having_node.this) if having_node is not None else None
    where = inner.args.get("where")
    outer = root if root is not inner else None
    source_from = table.sql(dialect="duckdb")
    return AggregateQuery(
        sql=sql,
        source=table.name,
        source_from=source_from,
        where=where.this.sql(dialect="duckdb") if where is not None else None,
        keys=tuple(k.sql(dialect="duckdb") for k in keys),
        partials=tuple(state.partials),
        distincts=tuple(state.distincts),
        inner=inner,
        finals=finals,
        having=having,
        outer=outer,
    )


def _call(function: str, value: str, *, distinct: bool = False) -> str:
    """DuckDB SQL calling aggregate ``function`` on ``value``."""
    if not distinct:
        return f"{function}({value})"
    if function == SUM:  # a macro cannot take DISTINCT: its DISTINCT twin
        return f"{SUM_DISTINCT}({value})"
    return f"{function}(DISTINCT {value})"


def _check_plain(select: exp.Select, *, layer: bool) -> None:
    """Refuse what the state cannot follow in ``select`` (its own clauses, not subqueries')."""
    for arg in ("with_", "order", "limit", "offset", "qualify", "joins", "laterals", "windows"):
        if select.args.get(arg):
            raise Unsupported(f"{arg.rstrip('_').upper()} in the query")
    if layer:
        if select.args.get("group") or select.args.get("having") or select.args.get("distinct"):
            raise Unsupported("an aggregate over an aggregate")
        own = [*select.expressions, *([select.args["where"]] if select.args.get("where") else [])]
        for node in own:
            if node.find(exp.AggFunc, exp.Window, exp.Subquery, exp.Select):
                raise Unsupported("an aggregate or subquery in an outer layer")
        return
    distinct = select.args.get("distinct")
    if distinct is not None and (distinct.args.get("on") or select.args.get("group")):
        raise Unsupported("DISTINCT ON, or DISTINCT with GROUP BY")
    where = select.args.get("where")
    if where is not None and where.find(exp.AggFunc, exp.Subquery, exp.Select, exp.Window):
        raise Unsupported("an aggregate or subquery in WHERE")
    for item in select.expressions:
        star = item.find(exp.Star)
        if star is not None and not isinstance(star.parent, exp.Count):
            raise Unsupported("SELECT * in an aggregate")


def _keys(select: exp.Select, items: list[exp.Expr]) -> list[exp.Expr]:
    """The grouping key expressions (``GROUP BY`` positions and aliases resolved; with
    ``SELECT DISTINCT``, every item)."""
    if select.args.get("distinct") is not None:
        if any(item.find(exp.AggFunc) for item in items):
            raise Unsupported("DISTINCT over aggregates")
        return [item.copy() for item in items]
    group = select.args.get("group")
    if group is None:
        return []
    if any(group.args.get(a) for a in ("all", "rollup", "cube", "grouping_sets", "totals")):
        raise Unsupported("GROUP BY ALL / ROLLUP / CUBE / GROUPING SETS")
    aliases = {e.alias.lower(): e.this for e in select.expressions if isinstance(e, exp.Alias)}
    columns = {c.name.lower() for item in items for c in item.find_all(exp.Column)}
    keys: list[exp.Expr] = []
    for g in group.expressions:
        if isinstance(g, exp.Literal) and not g.is_string:
            index = int(g.this) - 1
            if not 0 <= index < len(items):
                raise Unsupported("GROUP BY position out of range")
            keys.append(items[index].copy())
        elif (
            isinstance(g, exp.Column)
            and not g.table
            and g.name.lower() in aliases
            and g.name.lower() not in columns
        ):
            keys.append(aliases[g.name.lower()].copy())  # an alias, not a column of t
        else:
            keys.append(g.copy())
    for key in keys:
        if isinstance(key, (exp.Rollup, exp.Cube, exp.GroupingSets)):
            raise Unsupported("GROUP BY ROLLUP / CUBE / GROUPING SETS")
        if key.find(exp.AggFunc, exp.Window, exp.Subquery):
            raise Unsupported("an aggregate in GROUP BY")
    return keys


def group_key_positions(sql: str) -> tuple[int, ...]:
    """The positions of the result columns of DuckDB SQL ``sql`` that identify a result row:
    its outermost SELECT's ``GROUP BY`` keys, each a result expression (as Arroyo keys an
    updating aggregate's output by its group key). Empty when there is no ``GROUP BY``, a key
    is not in the result, or a result expression may give a group several rows (UNNEST)."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.SqlglotError:
        return ()
    if not isinstance(tree, exp.Select) or not tree.args.get("group"):
        return ()
    items = [e.this if isinstance(e, exp.Alias) else e for e in tree.expressions]
    if any(item.is_star or item.find(exp.Unnest, exp.Explode) for item in items):
        return ()
    try:
        keys = _keys(tree, items)
    except Unsupported:
        return ()
    shown = [_norm(item) for item in items]
    positions = []
    for key in keys:
        norm = _norm(key)
        if norm not in shown:
            return ()
        positions.append(shown.index(norm))
    return tuple(positions)


def _norm(node: exp.Expr) -> str:
    """A comparison key for expressions: identifiers case-folded (DuckDB's rule), quoting
    ignored."""

    def fold(n: exp.Expr) -> exp.Expr:
        if isinstance(n, exp.Identifier):
            return exp.Identifier(this=n.name.lower(), quoted=True)
        return n

    return node.transform(fold).sql(dialect="duckdb")


class _Builder:
    """Turns result expressions into expressions over state columns, collecting partials."""

    def __init__(self, keys: list[exp.Expr]) -> None:
        self.keys = {_norm(k): f"__k{i}" for i, k in enumerate(keys)}
        #: Every group counts its rows, so a group has a state row even when its only
        #: aggregates are DISTINCT ones (or none: SELECT DISTINCT).
        self.partials: list[_Partial] = [_Partial("__n", "count(*)", _MERGE["count"].format("__n"))]
        self.distincts: list[_Distinct] = []

    def lower(self, node: exp.Expr) -> exp.Expr:
        def swap(n: exp.Expr) -> exp.Expr:
            if isinstance(n, _REFUSED) and not (
                isinstance(n, exp.Star) and isinstance(n.parent, exp.Count)
            ):
                raise Unsupported(f"{type(n).__name__} in a result expression")
            key = self.keys.get(_norm(n)) if not isinstance(n, exp.Literal) else None
            if key is not None:
                return exp.column(key, quoted=True)
            if isinstance(n, exp.AggFunc):
                return self._aggregate(n)
            return n

        lowered = node.transform(swap)
        for column in lowered.find_all(exp.Column):
            if not column.name.startswith("__"):
                raise Unsupported(f"column {column.name} is neither a key nor aggregated")
        return lowered

    def _new(self, partial: str, merge: str) -> str:
        name = f"__p{len(self.partials)}"
        self.partials.append(_Partial(name, partial, merge.format(f'"{name}"')))
        return name

    def _aggregate(self, call: exp.AggFunc) -> exp.Expr:
        function = _FUNCTIONS.get(type(call))
        if function is None:
            raise Unsupported(f"aggregate {call.sql(dialect='duckdb')}")
        if call.meta.get(SUM):
            function = SUM
        arg = call.this
        if set(call.args) - {"this", "big_int"} and any(
            v for k, v in call.args.items() if k not in ("this", "big_int")
        ):
            raise Unsupported(f"arguments of {call.sql(dialect='duckdb')}")
        if isinstance(arg, exp.Distinct):
            if len(arg.expressions) != 1:
                raise Unsupported("DISTINCT over several columns")
            value = arg.expressions[0]
            if function in ("min", "max"):
                arg = value  # the same with or without DISTINCT
            else:
                return self._distinct(function, value)
        if arg is None or arg.find(exp.AggFunc, exp.Window, exp.Subquery):
            raise Unsupported(f"argument of {call.sql(dialect='duckdb')}")
        text = "*" if isinstance(arg, exp.Star) else arg.sql(dialect="duckdb")
        if function == "avg":
            total = self._new(f"sum({text})", _MERGE["sum"])
            count = self._new(f"count({text})", _MERGE["count"])
            return sqlglot.parse_one(
                f'CASE WHEN "{count}" = 0 THEN NULL ELSE "{total}"::DOUBLE / "{count}" END',
                read="duckdb",
            )
        if isinstance(arg, exp.Star) and function != "count":
            raise Unsupported("* outside count(*)")
        name = self._new(_call(function, text), _MERGE[function])
        return exp.column(name, quoted=True)

    def _distinct(self, function: str, value: exp.Expr) -> exp.Expr:
        if value.find(exp.AggFunc, exp.Window, exp.Subquery, exp.Star):
            raise Unsupported("argument of a DISTINCT aggregate")
        index = len(self.distincts)
        name = f"__d{index}"
        self.distincts.append(
            _Distinct(name, f"__distinct{index}", value.sql(dialect="duckdb"), function)
        )
        return exp.column(name, quoted=True)


def _database() -> duckdb.DuckDBPyConnection:
    """A new in-memory database for a state, run by the calling thread alone and starting no
    thread (see "Memory": a database's threads start anew at each renewal; no async I/O
    thread is :data:`~arroyo_lite.query.connection.DATABASE_CONFIG`'s)."""
    con = open_database(threads=1)
    configure(con)
    # Every function of arroyo-lite's at once: the state's statements are derived from the
    # query's, and one failing to bind would only make the query re-evaluated instead.
    Builtins(con).provide_all()
    return con


class AggregateState:
    """The per-group state of one :class:`AggregateQuery` over a table of ``schema`` (see
    the module docstring), on a DuckDB connection of its own. One thread at a time.

    Tables on that connection: ``__state`` (one row per group: ``__k*`` keys, then the
    partials, then the DISTINCT aggregates' values), ``__distinct<i>`` (the distinct (keys,
    value) pairs of each DISTINCT aggregate); per batch ``__batch`` (its partials per group),
    ``__old`` and ``__new`` (the touched groups' state rows before and after).
    """

    def __init__(self, query: AggregateQuery, schema: pa.Schema) -> None:
        self.query = query
        self._source_schema = schema
        self._con = _database()
        self._refs: dict[str, LiveRef] = {}
        #: How many groups the state holds (readable from any thread).
        self.groups = 0
        #: What DuckDB keeps of the merges since the state's database was made, bytes
        #: (estimated: :data:`KEPT_PER_APPLY`, :data:`KEPT_PER_ROW`), and the state's own
        #: size at its last move (0 before the first).
        self.kept = 0
        self.size = 0
        #: How many times the state moved to a new database (:meth:`renew`).
        self.renewals = 0
        self._pin(empty_table(schema))
        try:
            #: The query's own result schema (names and types), from running it on no rows.
            self.schema = self._con.sql(query.sql).to_arrow_table().schema
            self._prepare()
            self.apply(empty_table(schema))  # every statement binds and runs ...
            self.reset()  # ... and the state is left empty
        except duckdb.Error as e:
            self.close()
            raise Unsupported(f"DuckDB rejects the state queries: {e}") from None

    def _pin(self, rows: pa.Table) -> None:
        pin(self._con, self._refs, self.query.source, rows)

    def _prepare(self) -> None:
        """Create the state tables and the SQL run per batch."""
        q = self.query
        self._keys = [f'"__k{i}"' for i in range(len(q.keys))]
        keys = [f"{k} AS {name}" for k, name in zip(q.keys, self._keys, strict=True)]
        group = f"GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))}" if keys else ""
        where = f"WHERE {q.where}" if q.where else ""
        partials = [f"{p.partial} AS {p.name}" for p in q.partials]
        self._partial_sql = (
            f"SELECT {', '.join([*keys, *partials])} FROM {q.source_from} {where} {group}"
        )
        self._distinct_sql: list[str] = []
        for d in q.distincts:
            pairs = (
                f"SELECT DISTINCT {', '.join([*keys, f'{d.value} AS __v'])} FROM {q.source_from}"
            )
            self._con.execute(f"CREATE TABLE {d.table} AS {pairs} LIMIT 0")
            kept = (
                f"({q.where}) AND ({d.value}) IS NOT NULL"
                if q.where
                else f"({d.value}) IS NOT NULL"
            )
            self._distinct_sql.append(f"{pairs} WHERE {kept}")
        distincts = [
            f"{_call(d.function, d.value, distinct=True)} AS {d.name}" for d in q.distincts
        ]
        self._con.execute(
            f"CREATE TABLE __state AS SELECT {', '.join([*keys, *partials, *distincts])} "
            f"FROM {q.source_from} {group} LIMIT 0"
        )
        self._merge_sql = self._merged()
        self._finals = {t: self._final_sql(t) for t in ("__old", "__new", "__state")}
        # The touched groups' result rows before and after, compared whole as multisets
        # (what changelog.diff's EXCEPT ALL does, in one cheaper pass): each distinct row
        # weighs +1 per copy before and -1 per copy after; a row whose weights cancel (the
        # batch left it as it was) is no change; the others come out |weight| times.
        old, new = self._finals["__old"], self._finals["__new"]
        weighed = f"SELECT *, 1 AS __w FROM ({old}) UNION ALL SELECT *, -1 FROM ({new})"
        net = (
            f"SELECT * EXCLUDE (__w), sum(__w)::BIGINT AS __w FROM ({weighed}) "
            "GROUP BY ALL HAVING sum(__w) <> 0"
        )
        self._changes_sql = (
            f"SELECT g.* EXCLUDE (__w), g.__w > 0 AS __gone FROM ({net}) g, range(abs(g.__w))"
        )

    def _on(self, a: str, b: str) -> str:
        """Rows ``a`` and ``b`` are of the same group (NULL keys equal, as in GROUP BY)."""
        same = [f"{a}.{k} IS NOT DISTINCT FROM {b}.{k}" for k in self._keys]
        return " AND ".join(same) or "true"

    def _merged(self) -> str:
        """The touched groups' new state rows: old state and batch partials merged, then
        each DISTINCT aggregate over its pairs of those groups."""
        q = self.query
        keys = ", ".join(self._keys)
        group = f"GROUP BY {keys}" if keys else ""
        columns = ", ".join([*self._keys, *(p.name for p in q.partials)])
        merges = ", ".join([*self._keys, *(f"{p.merge} AS {p.name}" for p in q.partials)])
        picks = [f"m.{c}" for c in [*self._keys, *(p.name for p in q.partials)]]
        joins: list[str] = []
        for i, d in enumerate(q.distincts):
            touched = (
                f"SELECT {keys + ', ' if keys else ''}{d.function}(__v) AS __v "
                f"FROM {d.table} x SEMI JOIN __batch b ON {self._on('x', 'b')} {group}"
            )
            joins.append(f"LEFT JOIN ({touched}) d{i} ON {self._on('m', f'd{i}')}")
            value = f"coalesce(d{i}.__v, 0)" if d.function == "count" else f"d{i}.__v"
            picks.append(f"{value} AS {d.name}")
        both = f"SELECT {columns} FROM __old UNION ALL SELECT {columns} FROM __batch"
        return (
            f"SELECT {', '.join(picks)} FROM (SELECT {merges} FROM ({both}) {group}) m "
            + " ".join(joins)
        )

    def _final_sql(self, table: str) -> str:
        """The query's result over a state-shaped ``table``."""
        q = self.query
        names = self._con.sql(q.inner.sql(dialect="duckdb")).columns
        select = exp.select(
            *(exp.alias_(f.copy(), n, quoted=True) for f, n in zip(q.finals, names, strict=True))
        ).from_(table)
        if q.having is not None:
            select = select.where(q.having.copy())
        if q.outer is None:
            return select.sql(dialect="duckdb")
        outer = q.outer.copy()
        # The layers form a chain (each reads only the one below): the innermost subquery
        # is the aggregate, replaced by its result over the state.
        subqueries = outer.find_all(exp.Subquery)
        (innermost,) = (s for s in subqueries if s.this.find(exp.Subquery) is None)
        innermost.set("this", select)
        return outer.sql(dialect="duckdb")

    def reset(self) -> None:
        """Forget every group."""
        self.groups = 0
        self._con.execute("DELETE FROM __state")
        for d in self.query.distincts:
            self._con.execute(f"DELETE FROM {d.table}")

    def apply(self, rows: pa.Table) -> pa.Table:
        """Absorb new ``rows`` of the table; return the changes of the result (a change
        batch, :mod:`arroyo_lite.query.changelog`; possibly empty)."""
        if not self._absorb(rows):
            empty = empty_table(self.schema)
            return changes(empty, empty)
        both = self._con.sql(self._changes_sql).to_arrow_table()
        if self.renew_due():
            self.renew()
        gone = both.column("__gone")
        both = both.drop_columns(["__gone"])
        import pyarrow.compute as pc

        return changes(
            self._conform(both.filter(gone)), self._conform(both.filter(pc.invert(gone)))
        )

    def _absorb(self, rows: pa.Table) -> bool:
        """Absorb ``rows`` (``__old``/``__new`` then hold the touched groups' state before
        and after); ``False`` when no row passed WHERE, so no group was touched."""
        con = self._con
        self._pin(rows)
        (count,) = con.execute(
            f"CREATE OR REPLACE TEMP TABLE __batch AS {self._partial_sql}"
        ).fetchall()
        if not count[0]:
            return False
        for d, pairs in zip(self.query.distincts, self._distinct_sql, strict=True):
            con.execute(
                f"INSERT INTO {d.table} SELECT n.* FROM ({pairs}) n ANTI JOIN {d.table} o "
                f"ON {self._on('n', 'o')} AND n.__v = o.__v"
            )
        (old,) = con.execute(
            "CREATE OR REPLACE TEMP TABLE __old AS SELECT s.* FROM __state s "
            f"SEMI JOIN __batch b ON {self._on('s', 'b')}"
        ).fetchall()
        (new,) = con.execute(f"CREATE OR REPLACE TEMP TABLE __new AS {self._merge_sql}").fetchall()
        self.groups += int(new[0]) - int(old[0])
        con.execute(
            f"MERGE INTO __state s USING __new n ON {self._on('s', 'n')} "
            "WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"
        )
        self.kept += KEPT_PER_APPLY + KEPT_PER_ROW * int(new[0])
        return True

    def renew_due(self) -> bool:
        """Whether what DuckDB kept of past merges calls for :meth:`renew` (see "Memory")."""
        return self.kept >= max(RENEW_MIN_BYTES, RENEW_FACTOR * self.size)

    def renew(self) -> None:
        """Move the state to a new in-memory DuckDB database and close the old one, which
        frees what DuckDB kept of past merges. The state's rows do not change."""
        names = ["__state", *(d.table for d in self.query.distincts)]
        rows = {name: self._con.sql(f"FROM {name}").to_arrow_table() for name in names}
        old = self._con
        self._con = _database()
        self._refs = {}
        self._pin(empty_table(self._source_schema))
        try:
            self._prepare()
            for name, table in rows.items():
                self._con.register("__restore", table)
                try:
                    self._con.execute(f"INSERT INTO {name} FROM __restore")
                finally:
                    self._con.unregister("__restore")
        except BaseException:
            self._con.close()
            self._con = old  # (the old database still holds the state)
            raise
        old.close()
        self.kept = 0
        self.size = sum(table.nbytes for table in rows.values())
        self.renewals += 1

    def _conform(self, rows: pa.Table) -> pa.Table:
        """``rows`` with the query's own column names and types."""
        return rows.rename_columns(self.schema.names).cast(self.schema)

    def result(self) -> pa.Table:
        """The query's whole current result."""
        return self._conform(self._con.sql(self._finals["__state"]).to_arrow_table())

    def rebuild(self, rows: pa.Table) -> pa.Table:
        """Start over from ``rows`` (every row the table holds now); return the changes from
        the previous result to the new one."""
        before = self.result()
        self.reset()
        self._absorb(rows)
        return diff(self._con, before, self.result())

    def close(self) -> None:
        self._con.close()


def aggregate_state(
    sql: str, sources: frozenset[str], schemas: Mapping[str, pa.Schema]
) -> AggregateState | None:
    """The per-group state for DuckDB SQL ``sql``, or ``None`` when its shape is not one
    (the query is then re-evaluated; the reason is logged at debug level)."""
    try:
        query = compile_aggregate(sql, sources)
        schema = schemas.get(query.source.lower())
        if schema is None:  # not a table (yet): binding the query reports it
            raise Unsupported(f"no table {query.source}")
        return AggregateState(query, schema)
    except Unsupported as e:
        log.debug("updating query re-evaluated, not incremental: %s", e)
        return None
