"""DuckDB over the live tables: snapshot queries, views, and continuous queries.

One DuckDB connection belongs to the engine and is guarded by a lock. Each table is
registered on it once, as a small object speaking the Arrow PyCapsule stream protocol
(:class:`LiveRef`); before each statement the engine takes one consistent snapshot of all
tables from the store and pins it on those objects, and DuckDB pulls the pinned batches
(zero-copy) when it scans. So a query sees one moment across every table, and moving to new
data costs an attribute assignment rather than a re-registration. ``CREATE VIEW`` / CTAS
become DuckDB catalog views over those names. ``query`` and ``stream`` accept one read-only
statement only (DDL goes through the session). Python replacement scans and the progress
bar are off.

Continuous queries (:meth:`Engine.stream`) live in :mod:`arroyo_lite.query.continuous`.

DuckDB errors become :class:`~arroyo_lite.errors.QueryError` with DuckDB's message and, when
the text DuckDB saw is the user's own, the line and column it points at.
"""

from __future__ import annotations

import collections
import contextlib
import re
import threading
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from arroyo_lite.errors import QueryError, SourcePosition
from arroyo_lite.query.status_table import STATUS_SCHEMA, STATUS_TABLE
from arroyo_lite.runtime.store import Store, TableSnapshot
from arroyo_lite.sql.transpile import to_duckdb

if TYPE_CHECKING:
    from arroyo_lite.query.continuous import ContinuousQuery

_LINE_RE = re.compile(r"\n*LINE (\d+): (.*)\n( *)\^", re.DOTALL)


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


@dataclass(frozen=True, slots=True)
class _View:
    name: str
    shape: QueryShape


def query_error(
    e: duckdb.Error,
    *,
    executed: str,
    original: str,
    position: SourcePosition | None,
    line_offset: int = 0,
) -> QueryError:
    """Turn a DuckDB error into a :class:`QueryError`.

    DuckDB appends ``LINE n: <text>`` and a caret line; those become the error's position
    (shifted to ``position``, where the user's text starts in its file) if ``executed`` ends
    with the user's own text ``original`` starting ``line_offset`` lines down, and are
    dropped from the message.
    """
    text = str(e)
    match = _LINE_RE.search(text)
    where: SourcePosition | None = None
    message = text
    mappable = executed == original or (
        line_offset > 0 and executed.endswith("\n" + original)
    )
    if match and int(match.group(1)) <= line_offset:
        mappable = False  # the error is in text we added, not the user's
    if match:
        message = text[: match.start()].rstrip()
        if mappable:
            line = int(match.group(1))
            col = len(match.group(3)) - len(f"LINE {line}: ") + 1
            line -= line_offset
            if position is not None:
                col = col + position.col - 1 if line == 1 else col
                line = position.line + line - 1
                where = SourcePosition(position.file, line, max(col, 1))
            else:
                where = SourcePosition("<query>", line, max(col, 1))
    hint: str | None = None
    first, _, rest = message.partition("\n")
    if rest.strip():  # "Did you mean ...", "Candidate bindings: ..."
        message, hint = first, rest.strip()
    return QueryError(message, position=where, hint=hint)


def analyze(
    sql: str,
    views: dict[str, _View],
    all_tables: Iterable[str] = (),
    aggregates: frozenset[str] = frozenset(),
) -> QueryShape:
    """Tables read by DuckDB SQL ``sql`` (views expanded) and whether it aggregates.

    ``aggregates`` names DuckDB's aggregate functions (lower case), for those sqlglot does
    not know. Text sqlglot cannot parse counts as aggregating over every table in
    ``all_tables``: it is then simply re-evaluated whenever anything changes.
    """
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.SqlglotError:
        return QueryShape(frozenset(all_tables), True, STATUS_TABLE in sql.lower())
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    scans = _count_scans(tree, views)
    tables: set[str] = set()
    aggregating = (
        any(
            True
            for _ in tree.find_all(exp.AggFunc, exp.Group, exp.Distinct, exp.Window, exp.Having)
        )
        or any(str(f.name).lower() in aggregates for f in tree.find_all(exp.Anonymous))
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
    reads_status = False
    for table in tree.find_all(exp.Table):
        name = table.name.lower()
        if not name or name in ctes:
            continue
        view = views.get(name)
        if view is not None:
            tables |= view.shape.tables
            aggregating = aggregating or view.shape.aggregating
            reads_status = reads_status or view.shape.reads_status
        elif name == STATUS_TABLE:
            reads_status = True
        else:
            tables.add(name)
    return QueryShape(
        frozenset(tables),
        aggregating or reads_status,
        reads_status,
        rescanned=frozenset(t for t, n in scans.items() if n > 1),
        scans=tuple(sorted(scans.items())),
    )


def _count_scans(tree: exp.Expr, views: dict[str, _View]) -> collections.Counter[str]:
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


def _connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(":memory:")
    _configure(con)
    return con


def _configure(con: duckdb.DuckDBPyConnection) -> None:
    """Settings for every connection and cursor: no replacement scans of Python variables,
    and no progress bar (DuckDB would draw it on our stdout, inside query output)."""
    con.execute("SET python_enable_replacements = false")
    con.execute("SET enable_progress_bar = false")


_BIND_ERRORS = (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException)


def bind_sql(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyRelation | None:
    """``con.sql(sql)``: binds a query without running it, or runs a statement.

    ``con.sql`` reports bind errors without DuckDB's ``LINE n:`` caret; ``con.execute``
    includes it. Binding has no side effects, so on such an error the text is bound again
    through ``execute`` just to get the positioned message.
    """
    try:
        return con.sql(sql)
    except _BIND_ERRORS as e:
        if "\nLINE " in str(e):
            raise
        # Only errors raised while binding: ``execute`` fails at the same point, before
        # running anything (never re-run after an interrupt or a run-time error).
        try:
            con.execute(sql)
        except duckdb.Error as positioned:
            raise positioned from None
        raise


#: Query texts :func:`_check_read_only` accepted (bounded; cleared when full).
_accepted: set[str] = set()
_ACCEPTED_MAX = 1024
_READ_ONLY = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})


def _check_read_only(
    con: duckdb.DuckDBPyConnection, duck: str, sql: str, position: SourcePosition | None
) -> None:
    """Accept exactly one SELECT-like statement (``SELECT``, ``WITH``, ``VALUES``, ``FROM``,
    ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``, ``EXPLAIN``): DDL must go through ``execute`` so
    the session's catalog stays the truth, and COPY/ATTACH/SET have no business here.

    Texts already accepted are remembered (dashboards and benchmarks repeat one query).
    """
    if duck in _accepted:
        return
    try:
        statements = con.extract_statements(duck)
    except duckdb.Error as e:
        raise query_error(e, executed=duck, original=sql, position=position) from e
    if len(statements) != 1:
        raise QueryError(
            f"expected one query, got {len(statements)} statements", position=position
        )
    kind = statements[0].type
    if kind not in _READ_ONLY:
        raise QueryError(
            f"only queries (SELECT) can run here, not {kind.name}",
            position=position,
            hint="define tables and views with Session.execute",
        )
    if len(_accepted) >= _ACCEPTED_MAX:
        _accepted.clear()
    _accepted.add(duck)


def run_sql(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    relation = bind_sql(con, sql)
    if relation is None:  # a statement that is not a query (DDL): no result rows
        return pa.table({})
    table: pa.Table = relation.to_arrow_table()
    return table


class Engine:
    """Runs DuckDB SQL over a :class:`Store`. Thread-safe (one lock around the connection).

    ``status`` returns the current ``arroyo_status`` table; it is called only for queries
    that mention that table.
    """

    def __init__(self, store: Store, *, status: Callable[[], pa.Table] | None = None) -> None:
        self.store = store
        self._status = status or (lambda: STATUS_SCHEMA.empty_table())
        self._lock = threading.RLock()
        self._con = _connect()
        self._aggregates = frozenset(
            str(row[0]).lower()
            for row in self._con.sql(
                "SELECT DISTINCT function_name FROM duckdb_functions() "
                "WHERE function_type = 'aggregate'"
            ).fetchall()
        )
        self._refs: dict[str, LiveRef] = {}
        self._streams: weakref.WeakSet[ContinuousQuery] = weakref.WeakSet()
        self._views: dict[str, _View] = {}
        self._closed = False

    # --- catalog ------------------------------------------------------------------------

    def views(self) -> list[str]:
        with self._lock:
            return [v.name for v in self._views.values()]

    def has_view(self, name: str) -> bool:
        with self._lock:
            return name.lower() in self._views

    def create_view(
        self,
        name: str,
        query: str,
        *,
        text: str | None = None,
        position: SourcePosition | None = None,
    ) -> None:
        """Define ``name`` as a DuckDB view over the live tables.

        ``text`` is the user's whole ``CREATE VIEW`` statement: when the query needs no
        translation it is run as written, so error positions match the file. Raises
        :class:`QueryError` if DuckDB rejects it or the name is taken.
        """
        key = name.lower()
        duck = to_duckdb(query)
        with self._lock:
            if key in self._views or self.store.has(name) or key == STATUS_TABLE:
                raise QueryError(f"table '{name}' is already defined", position=position)
            self._sync(self._con, _refers_to_status(duck))
            shape = analyze(duck, self._views, (), self._aggregates)
            # Run the user's query text as written, on a line of its own after our prefix,
            # so DuckDB's line/col map back into the file (``text`` is the statement).
            prefix = f'CREATE VIEW "{_quote(name)}" AS\n'
            executed = prefix + duck
            at = offset_position(text, query, position) if duck == query else None
            try:
                self._con.execute(executed)
            except duckdb.Error as e:
                raise query_error(
                    e, executed=executed, original=query, position=at, line_offset=1
                ) from e
            self._views[key] = _View(name, shape)

    # --- snapshot queries ---------------------------------------------------------------

    def query(self, sql: str, *, position: SourcePosition | None = None) -> pa.Table:
        """Run ``sql`` (Arroyo SQL) on a consistent snapshot of every table; return the rows.

        Blocks the calling thread (never the event loop) while DuckDB runs. Raises
        :class:`QueryError` with DuckDB's message (and position) if the query fails.
        """
        duck = to_duckdb(sql)
        with self._lock:
            if self._closed:
                raise QueryError("the session is closed")
            _check_read_only(self._con, duck, sql, position)
            self._sync(self._con, _refers_to_status(duck))
            try:
                return run_sql(self._con, duck)
            except duckdb.Error as e:
                raise query_error(e, executed=duck, original=sql, position=position) from e

    def interrupt(self) -> None:
        """Ask DuckDB to abandon the query running on the engine's connection (any thread)."""
        self._con.interrupt()

    def stream(self, sql: str, *, timeout: float | None = None) -> ContinuousQuery:
        """A :class:`ContinuousQuery` over ``sql`` (validated at once: bad SQL raises here)."""
        duck = to_duckdb(sql)
        with self._lock:
            if self._closed:
                raise QueryError("the session is closed")
            _check_read_only(self._con, duck, sql, None)
            shape = analyze(
                duck, self._views, (n.lower() for n in self.store.names()), self._aggregates
            )
            cursor = self._con.cursor()
            _configure(cursor)
        from arroyo_lite.query.continuous import ContinuousQuery

        query = ContinuousQuery(self, cursor, sql, duck, shape, timeout=timeout)
        query.validate()
        with self._lock:
            self._streams.add(query)
        return query

    def close(self) -> None:
        """Interrupt a running query, close every continuous query, then the connection.
        Idempotent."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(duckdb.Error):
            self._con.interrupt()
        with self._lock:
            streams = list(self._streams)
        for stream in streams:
            stream.close()
        with self._lock:
            self._con.close()
        self.store.notify()

    @property
    def closed(self) -> bool:
        return self._closed

    def status_table(self) -> pa.Table:
        """The current ``arroyo_status`` rows."""
        return self._status()

    # --- internals ----------------------------------------------------------------------

    def _sync(self, con: duckdb.DuckDBPyConnection, with_status: bool) -> None:
        """Pin one consistent snapshot of every table for the next statement.

        Each table is registered once, as a :class:`LiveRef`; DuckDB asks it for an Arrow
        stream at every scan, so moving to a newer snapshot is an attribute assignment, not
        a re-registration (which costs far more than a small query).
        """
        snapshots = self.store.snapshot()
        for snap in snapshots.values():
            pin(con, self._refs, snap.name, snap)
        for key in list(self._refs):
            if key not in snapshots:
                con.unregister(key)
                del self._refs[key]
        if with_status:
            con.register(STATUS_TABLE, self._status())


class LiveRef:
    """A table as DuckDB sees it: an Arrow PyCapsule stream source over pinned data.

    Registered once per name and connection; DuckDB asks it for a stream at every scan, so
    moving a name to newer data is an attribute assignment. ``data`` is a store snapshot
    (turned into a ``pa.Table`` only if a query scans it) or a ``pa.Table``; either way the
    stream hands out the store's own batches (zero-copy).
    """

    __slots__ = ("data",)

    def __init__(self, data: TableSnapshot | pa.Table) -> None:
        self.data = data

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        data = self.data
        table = data if isinstance(data, pa.Table) else data.to_table()
        stream: object = table.__arrow_c_stream__(requested_schema)  # type: ignore[no-untyped-call]
        return stream


def pin(
    con: duckdb.DuckDBPyConnection,
    refs: dict[str, LiveRef],
    name: str,
    data: TableSnapshot | pa.Table,
) -> None:
    """Point ``name`` on ``con`` at ``data``, registering it on first use."""
    key = name.lower()
    ref = refs.get(key)
    if ref is None:
        refs[key] = ref = LiveRef(data)
        con.register(name, ref)
    else:
        ref.data = data


def offset_position(
    text: str | None, query: str, start: SourcePosition | None
) -> SourcePosition | None:
    """Where ``query`` starts in the file, given the statement ``text`` starting at ``start``."""
    if text is None or start is None:
        return None
    offset = text.find(query)
    if offset < 0:
        return None
    before = text[:offset]
    newlines = before.count("\n")
    if newlines == 0:
        return SourcePosition(start.file, start.line, start.col + offset)
    return SourcePosition(start.file, start.line + newlines, offset - before.rfind("\n"))


def _refers_to_status(sql: str) -> bool:
    return STATUS_TABLE in sql.lower()


def _quote(name: str) -> str:
    return name.replace('"', '""')
