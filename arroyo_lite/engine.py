"""DuckDB over the live tables: snapshot queries, views, and continuous queries.

One DuckDB connection belongs to the engine and is guarded by a lock. Each table is
registered on it once, as a small object speaking the Arrow PyCapsule stream protocol
(:class:`_LiveRef`); before each statement the engine takes one consistent snapshot of all
tables from the store and pins it on those objects, and DuckDB pulls the pinned batches
(zero-copy) when it scans. So a query sees one moment across every table, and moving to new
data costs an attribute assignment rather than a re-registration. ``CREATE VIEW`` / CTAS
become DuckDB catalog views over those names. ``query`` and ``stream`` accept one read-only
statement only (DDL goes through the session). Python replacement scans and the progress
bar are off.

Continuous queries (:class:`ContinuousQuery`) run on their own DuckDB *cursor*: a cursor
shares the catalog (the views) but not the registrations, so a continuous query can register
*only the new rows* of a table under the table's own name and run the user's query, views
included, over them. Which mode a query gets is decided once, with sqlglot:

* **incremental** (``incremental = True``): no aggregate function, ``GROUP BY``,
  ``DISTINCT``, window function or ``HAVING``, through any views, and exactly one live source
  table read. Each evaluation sees only the rows that arrived since the previous one (a
  per-query high-water mark on the table's global row index), so every row is emitted once.
  Memory tables are registered whole (they do not change), so joining new rows against one
  works. ``ORDER BY``/``LIMIT`` then apply per batch of new rows.
* **re-evaluated** (``incremental = False``): everything else, including joins between
  sources and queries over ``arroyo_status``. The whole query runs on a fresh snapshot
  whenever one of its tables changed, at most every :data:`REEVALUATE_EVERY` seconds (the
  status table: every second), and each batch yielded is the complete current result,
  replacing the previous one.

DuckDB errors become :class:`~arroyo_lite.errors.QueryError` with DuckDB's message and, when
the text DuckDB saw is the user's own, the line and column it points at.
"""

from __future__ import annotations

import collections
import contextlib
import re
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import duckdb
import pyarrow as pa
import sqlglot
from sqlglot import exp

from arroyo_lite.config import TableKind
from arroyo_lite.errors import QueryError, SourcePosition
from arroyo_lite.sql.transpile import to_duckdb
from arroyo_lite.status import STATUS_SCHEMA, STATUS_TABLE
from arroyo_lite.store import Store, TableSnapshot

#: How long a continuous query blocks between checks of its deadline / close flag.
WAIT_SLICE = 0.25
#: Re-evaluation period of continuous queries over the status table (seconds).
STATUS_REFRESH = 1.0
#: Shortest time between two full re-evaluations of a non-incremental query (seconds).
REEVALUATE_EVERY = 0.05

_LINE_RE = re.compile(r"\n*LINE (\d+): (.*)\n( *)\^", re.DOTALL)


@dataclass(frozen=True, slots=True)
class QueryShape:
    """What a query reads and whether it aggregates (through views)."""

    tables: frozenset[str]
    aggregating: bool
    reads_status: bool


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
    tables: set[str] = set()
    aggregating = any(
        True for _ in tree.find_all(exp.AggFunc, exp.Group, exp.Distinct, exp.Window, exp.Having)
    ) or any(str(f.name).lower() in aggregates for f in tree.find_all(exp.Anonymous))
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
    return QueryShape(frozenset(tables), aggregating or reads_status, reads_status)


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


def _bind(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyRelation | None:
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


def _run(con: duckdb.DuckDBPyConnection, sql: str) -> pa.Table:
    relation = _bind(con, sql)
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
        self._refs: dict[str, _LiveRef] = {}
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
                return _run(self._con, duck)
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

    # --- internals ----------------------------------------------------------------------

    def _sync(self, con: duckdb.DuckDBPyConnection, with_status: bool) -> None:
        """Pin one consistent snapshot of every table for the next statement.

        Each table is registered once, as a :class:`_LiveRef`; DuckDB asks it for an Arrow
        stream at every scan, so moving to a newer snapshot is an attribute assignment, not
        a re-registration (which costs far more than a small query).
        """
        snapshots = self.store.snapshot()
        for snap in snapshots.values():
            _pin(con, self._refs, snap.name, snap)
        for key in list(self._refs):
            if key not in snapshots:
                con.unregister(key)
                del self._refs[key]
        if with_status:
            con.register(STATUS_TABLE, self._status())


class _LiveRef:
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


def _pin(
    con: duckdb.DuckDBPyConnection,
    refs: dict[str, _LiveRef],
    name: str,
    data: TableSnapshot | pa.Table,
) -> None:
    """Point ``name`` on ``con`` at ``data``, registering it on first use."""
    key = name.lower()
    ref = refs.get(key)
    if ref is None:
        refs[key] = ref = _LiveRef(data)
        con.register(name, ref)
    else:
        ref.data = data


class ContinuousQuery(Iterator[pa.RecordBatch]):
    """An iterator of result batches that follows the live tables.

    ``incremental`` says what a batch means: new result rows (``True``), or the complete
    current result of a re-evaluated query (``False``; each batch replaces the previous).
    Iteration blocks until there is something new; it ends when :meth:`close` is called, the
    session closes, or ``timeout`` seconds pass. A failing evaluation raises
    :class:`QueryError` from ``next()``.
    """

    def __init__(
        self,
        engine: Engine,
        cursor: duckdb.DuckDBPyConnection,
        sql: str,
        duck: str,
        shape: QueryShape,
        *,
        timeout: float | None,
    ) -> None:
        self.sql = sql
        self._engine = engine
        self._cursor = cursor
        self._duck = duck
        self._shape = shape
        store_kinds = {n.lower(): engine.store.kind(n) for n in engine.store.names()}
        self._sources = frozenset(
            t for t in shape.tables if store_kinds.get(t) is not TableKind.MEMORY
        )
        self.incremental = not shape.aggregating and len(self._sources) == 1
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._closed = False
        self._pending: collections.deque[pa.RecordBatch] = collections.deque()
        self._high_water = 0
        self._versions: dict[str, int] | None = None
        self._store_version = -1
        self._next_status = 0.0
        self._refs: dict[str, _LiveRef] = {}
        self._last_eval = float("-inf")
        self._woken = threading.Event()
        # Held while the cursor is in use, so close() can wait for an evaluation to end.
        self._lock = threading.Lock()

    def validate(self) -> None:
        """Bind the query once against empty tables so errors surface before iteration.

        ``cursor.sql`` binds a SELECT without running it.
        """
        with self._lock:
            snaps = self._engine.store.snapshot(self._shape.tables)
            for snap in snaps.values():
                _pin(self._cursor, self._refs, snap.name, snap.schema.empty_table())
            if self._shape.reads_status:
                _pin(self._cursor, self._refs, STATUS_TABLE, STATUS_SCHEMA.empty_table())
            try:
                _bind(self._cursor, self._duck)
            except duckdb.Error as e:
                error = query_error(e, executed=self._duck, original=self.sql, position=None)
            else:
                return
        self.close()
        raise error from None

    def __iter__(self) -> ContinuousQuery:
        return self

    def __next__(self) -> pa.RecordBatch:
        store = self._engine.store
        while True:
            if self._pending:
                return self._pending.popleft()
            if self._finished():
                self.close()
                raise StopIteration
            version = store.version
            now = time.monotonic()
            due_status = self._shape.reads_status and now >= self._next_status
            if version != self._store_version or due_status:
                # A full re-evaluation scans everything: at most one per REEVALUATE_EVERY,
                # however often small polls land (new data meanwhile is picked up then).
                hold = 0.0 if self.incremental else self._last_eval + REEVALUATE_EVERY - now
                if hold <= 0 or due_status:
                    self._store_version = version
                    self._last_eval = now
                    self._evaluate(force=due_status)
                    continue
                self._woken.wait(self._bounded(hold))  # close() sets it
                continue
            store.wait_for_change(version, self._bounded(WAIT_SLICE))

    def _bounded(self, wait: float) -> float:
        """``wait``, cut short at the deadline."""
        if self._deadline is not None:
            wait = min(wait, max(0.0, self._deadline - time.monotonic()))
        return wait

    def close(self) -> None:
        """Stop iterating (callable from any thread; an iteration in progress ends soon)."""
        if self._closed:
            return
        self._closed = True
        self._woken.set()
        with contextlib.suppress(duckdb.Error):  # already closed: nothing to interrupt
            self._cursor.interrupt()
        self._engine.store.notify()
        # Wait (bounded) for an evaluation on another thread to leave the cursor.
        if self._lock.acquire(timeout=5):
            try:
                with contextlib.suppress(duckdb.Error):
                    self._cursor.close()
            finally:
                self._lock.release()

    def _finished(self) -> bool:
        if self._closed or self._engine.closed:
            return True
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _evaluate(self, *, force: bool) -> None:
        snaps = self._engine.store.snapshot(self._shape.tables)
        versions = {k: s.version for k, s in snaps.items()}
        if not force and versions == self._versions:
            return
        self._versions = versions
        with self._lock:
            if self._closed:
                return
            if self.incremental:
                (source,) = self._sources
                snap = snaps.get(source)
                if snap is None or snap.end_row <= self._high_water:
                    return
                delta = snap.since(self._high_water)
                self._high_water = snap.end_row
                for key, other in snaps.items():
                    _pin(self._cursor, self._refs, other.name, delta if key == source else other)
            else:
                for snap in snaps.values():
                    _pin(self._cursor, self._refs, snap.name, snap)
            try:
                if self._shape.reads_status:
                    _pin(self._cursor, self._refs, STATUS_TABLE, self._engine._status())
                    self._next_status = time.monotonic() + STATUS_REFRESH
                result = _run(self._cursor, self._duck)
            except duckdb.Error as e:
                if self._closed or self._engine.closed:
                    return  # interrupted by close(): not an error
                raise query_error(e, executed=self._duck, original=self.sql, position=None) from e
        if self.incremental and result.num_rows == 0:
            return
        self._pending.append(_one_batch(result))


def _one_batch(table: pa.Table) -> pa.RecordBatch:
    if table.num_rows == 0:
        return pa.RecordBatch.from_pylist([], schema=table.schema)
    combined = table.combine_chunks()
    batches = combined.to_batches()
    if len(batches) == 1:
        return batches[0]
    return pa.concat_batches(batches)  # type: ignore[attr-defined,no-any-return]


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
