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

Continuous queries (:meth:`Engine.stream`) live in :mod:`arroyo_lite.query.continuous`, the
DuckDB helpers both use in :mod:`arroyo_lite.query.duck`, query analysis in
:mod:`arroyo_lite.query.shape`.

DuckDB errors become :class:`~arroyo_lite.errors.QueryError` with DuckDB's message and, when
the text DuckDB saw is the user's own, the line and column it points at.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import TypeVar

import duckdb
import pyarrow as pa

from arroyo_lite.config import TableKind
from arroyo_lite.errors import QueryError, SourcePosition
from arroyo_lite.formats.pandas_free import empty_table
from arroyo_lite.query.builtins import Builtins
from arroyo_lite.query.connection import PendingConnection, configure, connect
from arroyo_lite.query.continuous import ContinuousQuery, plan_for
from arroyo_lite.query.duck import (
    LiveRef,
    as_written,
    check_read_only,
    pin,
    query_error,
    quote,
    run_sql,
)
from arroyo_lite.query.shape import QueryKind, View, analyze, classify, sources_of
from arroyo_lite.query.status_table import STATUS_SCHEMA, STATUS_TABLE
from arroyo_lite.runtime.store import Store
from arroyo_lite.sql.event_time import carry_event_time
from arroyo_lite.sql.transpile import to_duckdb

_T = TypeVar("_T")


class Engine:
    """Runs DuckDB SQL over a :class:`Store`. Thread-safe (one lock around the connection).

    ``status`` returns the current ``arroyo_status`` table; it is called only for queries
    that mention that table. ``connection``: the engine's DuckDB connection, opened ahead of
    time (:class:`~arroyo_lite.query.connection.PendingConnection`); by default the engine opens
    its own. The engine owns it either way (:meth:`close` closes it).
    """

    def __init__(
        self,
        store: Store,
        *,
        status: Callable[[], pa.Table] | None = None,
        connection: PendingConnection | None = None,
    ) -> None:
        self.store = store
        self._status = status or (lambda: empty_table(STATUS_SCHEMA))
        self._lock = threading.RLock()
        self._con = connect() if connection is None else connection.take()
        #: arroyo-lite's functions, defined on the connection when a statement calls one.
        self._builtins = Builtins(self._con)
        self._aggregates = _AggregateNames(self._con)
        self._refs: dict[str, LiveRef] = {}
        self._streams: weakref.WeakSet[ContinuousQuery] = weakref.WeakSet()
        self._views: dict[str, View] = {}
        #: Each source table's watermark expression (DuckDB SQL over its rows), by lower-case
        #: name: what windowed plans advance event time with (set when the table is created).
        self.watermarks: dict[str, str] = {}
        #: name: after how long without rows (microseconds) a source is idle, so windows
        #: of several sources close without it (Arroyo's ``idle_micros``; absent: never).
        self.idle_micros: dict[str, int | None] = {}
        #: Memory tables a continuous ``INSERT`` appends to (lower-case names): they change,
        #: so queries over them follow their new rows as over a source (as in Arroyo).
        self.fed_memory: set[str] = set()
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
        replace: bool = False,
    ) -> None:
        """Define ``name`` as a DuckDB view over the live tables.

        ``text`` is the user's whole ``CREATE VIEW`` statement: when the query needs no
        translation it is run as written, so error positions match the file. With
        ``replace`` (``CREATE OR REPLACE VIEW``) an existing view of that name is replaced
        (kept as it was if the new definition fails). Raises :class:`QueryError` if DuckDB
        rejects it or the name is taken (by a table, or by a view without ``replace``).
        """
        key = name.lower()
        duck = to_duckdb(query)
        with self._lock:
            taken = self.store.has(name) or key == STATUS_TABLE
            if taken or (key in self._views and not replace):
                raise QueryError(f"table '{name}' is already defined", position=position)
            self._sync(self._con, _refers_to_status(duck))
            views = {k: v for k, v in self._views.items() if k != key}
            shape = analyze(duck, views, (), self._aggregates)
            # Run the user's query text as written, on a line of its own after our prefix,
            # so DuckDB's line/col map back into the file (``text`` is the statement).
            verb = "CREATE OR REPLACE VIEW" if replace else "CREATE VIEW"
            prefix = f'{verb} "{quote(name)}" AS\n'
            executed = prefix + duck
            at = offset_position(text, query, position) if duck == query else None
            # Rows of a view keep their event time, as in Arroyo (sql/event_time.py); if
            # DuckDB rejects that form, the view is made as written (and errors as written).
            timed = carry_event_time(duck)

            def create() -> None:
                if timed is None or not _try_execute(self._con, prefix + timed):
                    self._con.execute(executed)

            self._builtins.provide(duck)
            try:
                self._bound(create)
            except duckdb.Error as e:
                raise query_error(
                    e, executed=executed, original=query, position=at, line_offset=1
                ) from e
            self._views[key] = View(name, shape)

    def dependents(self, name: str) -> list[str]:
        """The views that read ``name`` (a table or view), directly or through other views."""
        key = name.lower()
        with self._lock:
            return [v.name for k, v in self._views.items() if k != key and key in v.shape.tables]

    def drop_view(self, name: str) -> None:
        """Remove the view ``name`` (:class:`QueryError` if there is none)."""
        key = name.lower()
        with self._lock:
            if key not in self._views:
                raise QueryError(f"view '{name}' does not exist")
            self._con.execute(f'DROP VIEW IF EXISTS "{quote(self._views[key].name)}"')
            del self._views[key]

    def copy(self, sql: str, target: str, *, position: SourcePosition | None = None) -> int:
        """``COPY (sql) TO target``: write one snapshot of the query's rows to a file with
        DuckDB's COPY; return how many rows were written.

        ``target`` is the text after ``TO`` as DuckDB reads it (a quoted path and optional
        ``(FORMAT csv|parquet|json, ...)``; without a format DuckDB picks it from the file's
        extension). ``sql`` must be one query (:class:`QueryError` otherwise, or if DuckDB
        cannot write the file).
        """
        with self._pinned(sql, position) as (duck, _):
            statement = f"COPY (\n{duck}\n) TO {target}"
            try:
                row = self._bound(lambda: self._con.execute(statement).fetchone())
            except duckdb.Error as e:
                raise query_error(
                    e, executed=statement, original=sql, position=position
                ) from e
        return int(row[0]) if row else 0

    # --- snapshot queries ---------------------------------------------------------------

    def query(self, sql: str, *, position: SourcePosition | None = None) -> pa.Table:
        """Run ``sql`` (Arroyo SQL) on a consistent snapshot of every table; return the rows.

        Blocks the calling thread (never the event loop) while DuckDB runs. Raises
        :class:`QueryError` with DuckDB's message (and position) if the query fails.
        """
        with self._pinned(sql, position) as (duck, statement):
            try:
                return self._bound(lambda: run_sql(self._con, duck, statement))
            except duckdb.Error as e:
                error, executed = as_written(self._con, e, duck, sql)
                raise query_error(
                    error, executed=executed, original=sql, position=position
                ) from e

    @contextlib.contextmanager
    def _pinned(
        self, sql: str, position: SourcePosition | None
    ) -> Iterator[tuple[str, duckdb.Statement]]:
        """Under the lock: ``sql`` checked to be one query, translated to DuckDB and parsed
        (both yielded), with one snapshot of every table pinned for it."""
        duck = to_duckdb(sql)
        with self._lock:
            if self._closed:
                raise QueryError("the session is closed")
            statement = check_read_only(self._con, duck, sql, position)
            self._builtins.provide(duck)
            self._sync(self._con, _refers_to_status(duck))
            yield duck, statement

    def interrupt(self) -> None:
        """Ask DuckDB to abandon the query running on the engine's connection (any thread)."""
        self._con.interrupt()

    def stream(
        self, sql: str, *, timeout: float | None = None, changelog: bool = False
    ) -> ContinuousQuery:
        """A :class:`ContinuousQuery` over ``sql`` (validated at once: bad SQL raises here).

        Its plan is chosen here, once, from the query's shape and which of the tables it
        reads are memory tables (:mod:`arroyo_lite.query.shape`). With ``changelog`` a query
        whose result is updated yields changes (:mod:`arroyo_lite.query.changelog`) instead
        of whole results."""
        duck = to_duckdb(sql)
        with self._lock:
            if self._closed:
                raise QueryError("the session is closed")
            check_read_only(self._con, duck, sql, None)
            # (On the engine's connection: the query's cursor shares its catalog.)
            self._builtins.provide(duck)
            names = self.store.names()
            shape = analyze(duck, self._views, (n.lower() for n in names), self._aggregates)
            memory = (
                n.lower()
                for n in names
                if self.store.kind(n) is TableKind.MEMORY and n.lower() not in self.fed_memory
            )
            sources = sources_of(shape, memory)
            # A query over an updating table (a debezium_json source, a snapshot poll: the
            # store holds their current rows, runtime/updating.py) is updating, as in Arroyo:
            # re-evaluated on each change, and it yields the changes of its result (the only
            # way a reader can learn of a deleted row). Per-group state takes only
            # append-only input.
            updating = any(self.store.is_updating(n) for n in names if n.lower() in sources)
            kind = QueryKind.UPDATING if updating else classify(shape, sources)
            changelog = changelog or updating
            plan = plan_for(
                kind,
                sources,
                shape,
                self.watermarks,
                self.idle_micros,
                sql=None if updating else duck,
                schemas={s: self.store.schema(s) for s in sources if self.store.has(s)},
                changelog=changelog,
            )
            cursor = self._con.cursor()
            configure(cursor)
        query = ContinuousQuery(
            self, cursor, sql, duck, shape, plan, timeout=timeout, changelog=changelog
        )
        query.updating_input = updating
        try:
            query.validate()
        except QueryError as e:
            with self._lock:
                retry = self._builtins.missing_function(e)
            if not retry:
                raise
            # Planned and bound again with every function defined: the same error DuckDB
            # gives then (its did-you-mean included), or the query working.
            return self.stream(sql, timeout=timeout, changelog=changelog)
        with self._lock:
            self._streams.add(query)
        return query

    def open_windows(self, sql: str) -> pa.RecordBatch:
        """The windows of the windowed query ``sql`` still open over the rows stored now,
        labelled partial (:meth:`ContinuousQuery.open_windows`). Raises
        :class:`QueryError` for a query that is not planned as windows."""
        stream = self.stream(sql)
        try:
            batch = stream.open_windows()
        finally:
            stream.close()
        if batch is None:
            raise QueryError(
                "only a windowed query has open windows to show",
                hint="group by tumble(...), hop(...) or session(...)",
            )
        return batch

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

    def _bound(self, action: Callable[[], _T]) -> _T:
        """``action()`` (a statement on the engine's connection), run once more if DuckDB
        rejected it for a function that does not exist while arroyo-lite's were not all
        defined (:meth:`~arroyo_lite.query.builtins.Builtins.missing_function`): the
        statement failed binding then, before doing anything. Under the lock."""
        try:
            return action()
        except duckdb.Error as e:
            if not self._builtins.missing_function(e):
                raise
        return action()

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


def offset_position(
    text: str | None, query: str, start: SourcePosition | None
) -> SourcePosition | None:
    """Where ``query`` starts in the file, given the statement ``text`` starting at ``start``."""
    if text is None or start is None:
        return None
    offset = text.find(query)
    if offset < 0:
        return None
    return start.after(text[:offset])


def _refers_to_status(sql: str) -> bool:
    return STATUS_TABLE in sql.lower()


def _try_execute(con: duckdb.DuckDBPyConnection, sql: str) -> bool:
    """Run ``sql``; ``False`` (nothing done) if DuckDB rejects it."""
    try:
        con.execute(sql)
    except duckdb.Error:
        return False
    return True


class _AggregateNames:
    """DuckDB's aggregate function names (lower case), read from the catalog the first time
    a query calls a function sqlglot does not know (:func:`~.shape.analyze` asks only then):
    the catalog scan costs more than the rest of ``Session()`` together, and a plain
    ``SELECT a FROM t`` (``run``'s first row) never needs it. Used under the engine's lock."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self._names: frozenset[str] | None = None

    def __contains__(self, name: object) -> bool:
        if self._names is None:
            self._names = frozenset(
                str(row[0]).lower()
                for row in self._con.sql(
                    "SELECT DISTINCT function_name FROM duckdb_functions() "
                    "WHERE function_type = 'aggregate'"
                ).fetchall()
            )
        return name in self._names
