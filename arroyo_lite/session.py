"""The Python API: :class:`Session` ties the front end, runtime, store and engine together.

::

    with arroyo_lite.Session() as session:
        session.execute(open("pipeline.sql").read())     # tables are created, sources start
        session.query("SELECT count(*) FROM prices")     # -> pyarrow.Table (snapshot)
        for batch in session.stream("SELECT * FROM prices WHERE price > 100"):
            ...                                           # new rows as they arrive

A session owns: a :class:`~arroyo_lite.runtime.store.Store` (the live tables), a
:class:`~arroyo_lite.runtime.loop.Runtime` (the event loop thread running the sources), an
:class:`~arroyo_lite.query.engine.Engine` (DuckDB), and with ``state_dir`` a
:class:`~arroyo_lite.runtime.persist.Persister`; it only wires them: bringing tables to life is
:class:`~arroyo_lite.runtime.tables.Tables`, ``INSERT INTO`` is
:class:`~arroyo_lite.query.insert.Inserts`. It is meant for one caller thread (plus the
runtime's own); :meth:`Session.close` may be called from any thread. :class:`AsyncSession` offers
the same API to asyncio code without blocking its loop.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from arroyo_lite.clock import Clock, SystemClock
from arroyo_lite.config import STATUS_TABLE, TableConfig, TableKind
from arroyo_lite.errors import (
    ArroyoLiteError,
    QueryError,
    SourcePosition,
    SqlError,
    did_you_mean,
)
from arroyo_lite.sql.statements import Copy, CreateTable, CreateView, Drop, Insert, Program

# Start-up is part of the product: a Session without tables imports none of pyarrow, the
# runtime (asyncio, the connectors), DuckDB or sqlglot. The store and the runtime are made
# when the first table needs them (see `store`, `runtime`), the engine on the first table or
# query; its DuckDB connection starts opening when `execute` is first called (on a thread,
# while the SQL compiles: see `_connect_early`).
if TYPE_CHECKING:
    import pyarrow as pa

    from arroyo_lite.connectors.base import SourceStatus
    from arroyo_lite.query.connection import PendingConnection
    from arroyo_lite.query.continuous import ContinuousQuery
    from arroyo_lite.query.engine import Engine
    from arroyo_lite.query.insert import Inserts
    from arroyo_lite.runtime.loop import Runtime
    from arroyo_lite.runtime.persist import Persister, StateDir
    from arroyo_lite.runtime.store import Store
    from arroyo_lite.runtime.tables import Tables
    from arroyo_lite.runtime.worker_wire import WorkerStats
    from arroyo_lite.runtime.workers import WorkerPool

_T = TypeVar("_T")

log = logging.getLogger(__name__)


class SessionClosedError(ArroyoLiteError):
    """The session was closed."""


class Session:
    """Live SQL tables over HTTP APIs, from Python.

    ``env`` supplies ``{{ VAR }}`` values (default: ``os.environ``); ``clock`` is injected
    into every source (tests pass a :class:`~arroyo_lite.clock.ManualClock` and advance it
    with ``session.runtime.call(clock.advance(s))``); ``state_dir`` keeps table rows and
    source state across restarts (see :mod:`arroyo_lite.runtime.persist`). ``workers`` >= 2
    (*arroyo-lite extension*) runs the sources that can run elsewhere (``polling_http``,
    ``impulse``) in that many worker processes feeding this session (see
    :mod:`arroyo_lite.runtime.workers`); 1, the default, runs everything in this process.
    """

    def __init__(
        self,
        *,
        state_dir: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        clock: Clock | None = None,
        flush_interval: float | None = None,
        workers: int = 1,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, not {workers}")
        if workers > 1 and clock is not None and not isinstance(clock, SystemClock):
            raise ValueError("worker processes keep the system's time: workers=1 with a clock")
        self._workers = workers
        self.env: dict[str, str] = dict(os.environ if env is None else env)
        self.clock: Clock = clock or SystemClock()
        self._lock = threading.RLock()
        self._closed = False
        self._configs: dict[str, TableConfig] = {}
        self._state_path = state_dir
        self._flush_interval = flush_interval
        self._state: StateDir | None = None
        self._store: Store | None = None
        self._runtime: Runtime | None = None
        self._tables_made: Tables | None = None
        # The engine (DuckDB, sqlglot) and the INSERT targets are created on first use: see
        # the `engine` property. Its connection may be opening already (see `execute`).
        self._engine: Engine | None = None
        self._connecting: PendingConnection | None = None
        self._inserts_made: Inserts | None = None
        self._persister: Persister | None = None
        self._pool: WorkerPool | None = None
        if state_dir is not None:
            self._start_runtime()  # (restores the saved tables now)

    def _start_runtime(self) -> Tables:
        """Make the store, the runtime (its event loop thread) and, with ``state_dir``, the
        persister: on the first table, or at once when there is saved state to restore."""
        with self._lock:
            if self._tables_made is not None:
                return self._tables_made
            from arroyo_lite.runtime.loop import Runtime
            from arroyo_lite.runtime.store import Store
            from arroyo_lite.runtime.tables import Tables

            if self._state_path is not None:
                # (Only then: persistence is ~0.01 s of imports on the way to a first row.)
                from arroyo_lite.runtime.persist import StateDir

                self._state = StateDir(self._state_path)
            self._store = Store(time_ns=self.clock.time_ns)
            self._runtime = Runtime(clock=self.clock)
            if self._state is not None:
                from arroyo_lite.runtime.persist import FLUSH_INTERVAL, Persister

                interval = FLUSH_INTERVAL if self._flush_interval is None else self._flush_interval
                self._persister = Persister(self._state, self._store, interval=interval)
                self._runtime.submit(self._persister.run())
            if self._workers > 1:
                from arroyo_lite.runtime.workers import WorkerPool

                self._pool = WorkerPool(self._workers, env=self.env)
            self._tables_made = Tables(
                self._store,
                self._runtime,
                clock=self.clock,
                env=self.env,
                state=self._state,
                persister=self._persister,
                workers=self._pool,
            )
            return self._tables_made

    @property
    def store(self) -> Store:
        """The live tables (:class:`~arroyo_lite.runtime.store.Store`), made on first use."""
        store = self._store
        if store is None:
            self._start_runtime()
            assert self._store is not None
            store = self._store
        return store

    @property
    def runtime(self) -> Runtime:
        """The event loop thread running the sources (:class:`~arroyo_lite.runtime.loop.
        Runtime`), made on first use."""
        runtime = self._runtime
        if runtime is None:
            self._start_runtime()
            assert self._runtime is not None
            runtime = self._runtime
        return runtime

    @property
    def _tables(self) -> Tables:
        return self._tables_made or self._start_runtime()

    @property
    def engine(self) -> Engine:
        """The DuckDB :class:`~arroyo_lite.query.engine.Engine`, created on first use: DuckDB's
        import and connection are most of what a new session would otherwise cost."""
        engine = self._engine
        if engine is not None:  # no lock once it exists: interrupt() must never wait
            return engine
        with self._lock:
            if self._engine is None:
                self._check_open()
                from arroyo_lite.query.engine import Engine
                from arroyo_lite.query.status_table import status_table

                connection, self._connecting = self._connecting, None
                self._engine = Engine(
                    self.store,
                    status=lambda: status_table(self.status()),
                    connection=connection,
                )
            return self._engine

    @property
    def _inserts(self) -> Inserts:
        with self._lock:
            if self._inserts_made is None:
                from arroyo_lite.query.insert import Inserts

                self._inserts_made = Inserts(self.engine, self._tables, now_ns=self.clock.time_ns)
            return self._inserts_made

    # --- context manager ----------------------------------------------------------------

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- statements ---------------------------------------------------------------------

    def execute(self, sql: str, *, file: str = "<string>") -> Program:
        """Compile ``sql`` and apply its statements in order; return the :class:`Program`.

        ``CREATE TABLE`` creates the table and starts its source at once; ``CREATE VIEW`` and
        ``CREATE TABLE ... AS`` define views (``CREATE OR REPLACE VIEW`` replaces one);
        ``INSERT INTO`` a memory table stores the query's result, into a sink table starts
        writing the query's new rows to it; ``DROP TABLE|VIEW`` is :meth:`drop`. Bare
        ``SELECT`` and ``COPY`` statements are *not* run: they are in the returned program
        for the caller to :meth:`query`, :meth:`stream` or :meth:`copy`. Raises
        :class:`~arroyo_lite.errors.ValidationErrors` for invalid SQL (nothing is applied),
        or the first error met while applying (earlier statements stay applied).
        """
        with self._lock:
            self._check_open()
            self._connect_early()  # (before the compiler's imports, which it overlaps)
            from arroyo_lite.sql import compile_sql

            known: dict[str, TableKind | None] = {}
            if (store := self._store) is not None:
                known.update((name, store.kind(name)) for name in store.names())
            if self._inserts_made is not None:
                known.update(dict.fromkeys(self._inserts_made.sink_names(), TableKind.SINK))
            if self._engine is not None:
                known.update((view, None) for view in self._engine.views())
            program = compile_sql(sql, file=file, env=self.env, catalog=known or None)
            for statement in program.statements:
                if isinstance(statement, CreateTable):
                    self.create_table(statement.table, position=statement.position)
                elif isinstance(statement, CreateView):
                    self.engine.create_view(
                        statement.name,
                        statement.query,
                        text=statement.text,
                        position=statement.position,
                        replace=statement.replace,
                    )
                elif isinstance(statement, Drop):
                    self.drop(
                        statement.name,
                        kind=statement.kind,
                        if_exists=statement.if_exists,
                        position=statement.position,
                    )
                elif isinstance(statement, Insert):
                    self._inserts.insert(statement)
                # Query: returned to the caller. SetOption (updating_ttl): nothing to bound
                # here, since aggregates are recomputed from the stored rows.
            return program

    def _connect_early(self) -> None:
        """Start opening the engine's DuckDB connection, unless the engine exists (or its
        connection is on its way): nearly every program makes the engine (any table, any
        query does), and DuckDB opens it without holding the GIL, so the compile that comes
        next proceeds meanwhile instead of waiting for it afterwards."""
        if self._engine is None and self._connecting is None:
            from arroyo_lite.query.connection import PendingConnection

            self._connecting = PendingConnection()

    def create_table(self, config: TableConfig, *, position: SourcePosition | None = None) -> None:
        """Create a table from a validated config; a source table starts polling at once, a
        sink table waits for its ``INSERT``."""
        with self._lock:
            self._check_open()
            name = config.name
            defined = name.lower() in self._configs or name.lower() == STATUS_TABLE
            if defined or self.store.has(name) or self.engine.has_view(name):
                raise SqlError(f"table '{name}' is already defined", position=position)
            if config.kind is TableKind.MEMORY:
                self._tables.create_memory(config)
            elif config.kind is TableKind.SOURCE:
                from arroyo_lite.query.windows import watermark_expression

                self.engine.watermarks[name.lower()] = watermark_expression(config)
                self.engine.idle_micros[name.lower()] = config.idle_micros
                self._tables.start_source(config)
            elif config.kind is TableKind.SINK:
                self._inserts.add_sink(config)
            else:
                raise SqlError(
                    f"{config.kind} tables are not supported by arroyo-lite "
                    f"(connector '{config.connector}')",
                    position=position,
                    hint="arroyo-lite runs source tables; query results go to Python or the CLI",
                )
            self._configs[name.lower()] = config

    def drop(
        self,
        name: str,
        *,
        kind: str = "table",
        if_exists: bool = False,
        position: SourcePosition | None = None,
    ) -> bool:
        """``DROP TABLE`` / ``DROP VIEW``: remove ``name``; return whether it existed.

        A source table's source stops and its rows go (with a state directory, its saved
        rows and source state too); a sink stops after writing what it was given. Refused
        (:class:`~arroyo_lite.errors.SqlError`) when a view reads it (drop the view first),
        when ``kind`` does not match what ``name`` is, or when it does not exist (unless
        ``if_exists``).
        """
        with self._lock:
            self._check_open()
            key = name.lower()
            is_view = self.engine.has_view(name)
            is_table = key in self._configs
            if not (is_view or is_table):
                if if_exists:
                    return False
                hint = did_you_mean(name, self.tables())
                raise SqlError(f"{kind} '{name}' does not exist", position=position, hint=hint)
            actual = "view" if is_view else "table"
            if actual != kind:
                raise SqlError(
                    f"'{name}' is a {actual}, not a {kind}",
                    position=position,
                    hint=f"write DROP {actual.upper()} {name}",
                )
            users = self.engine.dependents(name)
            sinks = self._inserts.readers_of(name)
            if sinks:
                raise SqlError(
                    f"cannot drop {kind} '{name}': INSERT INTO {sinks[0]} reads it",
                    position=position,
                    hint=f"drop the sink first: DROP TABLE {sinks[0]}",
                )
            if users:
                raise SqlError(
                    f"cannot drop {kind} '{name}': view '{users[0]}' depends on it",
                    position=position,
                    hint="drop the views that read it first: "
                    + ", ".join(f"DROP VIEW {u}" for u in users),
                )
            if is_view:
                self.engine.drop_view(name)
                return True
            config = self._configs[key]
            if config.kind is TableKind.SINK:
                self._inserts.drop_sink(name)
            self.runtime.forget_source(name)
            if self._persister is not None:
                self.runtime.call(self._persister.forget(name), timeout=30)
            self.store.drop(name)
            del self._configs[key]
            return True

    def pause(self, name: str) -> None:
        """Stop polling ``name`` for now, keeping its rows, state and counters (its status
        says ``paused``); :meth:`resume` starts it again. Raises ``SqlError`` if ``name`` is
        not a running source."""
        if not self.runtime.pause_source(self._source_name(name)):
            raise SqlError(f"source '{name}' is not running", hint=self._state_hint(name))

    def resume(self, name: str) -> None:
        """Start a source paused by :meth:`pause` again; its next poll is due at once."""
        if not self.runtime.resume_source(self._source_name(name)):
            raise SqlError(f"source '{name}' is not paused", hint=self._state_hint(name))

    def _source_name(self, name: str) -> str:
        config = self._configs.get(name.lower())
        if config is None or config.kind is not TableKind.SOURCE:
            known = [c.name for c in self._configs.values() if c.kind is TableKind.SOURCE]
            raise SqlError(f"no source table named '{name}'", hint=did_you_mean(name, known))
        return config.name

    def _state_hint(self, name: str) -> str | None:
        states = {s.table.lower(): s.state for s in self.status()}
        state = states.get(name.lower())
        return f"its state is '{state}'" if state is not None else None

    # --- queries ------------------------------------------------------------------------

    def query(self, sql: str, *, nanoseconds: bool = False) -> pa.Table:
        """Run a SELECT over a consistent snapshot of every table; return all its rows.

        Timestamps come back at microsecond precision (``timestamp[us]``), so the table
        converts with ``to_pylist()`` (``datetime``), ``to_pandas()`` and
        ``polars.from_arrow()`` (see :mod:`arroyo_lite.query.python_values`);
        ``nanoseconds=True`` keeps every digit (``timestamp[ns]``: ``to_pylist()`` then needs
        pandas). Raises :class:`~arroyo_lite.errors.QueryError` (DuckDB's message, with
        position) if it fails; the session carries on.
        """
        self._check_open()
        result = self.engine.query(sql)
        from arroyo_lite.query.python_values import for_python  # (pyarrow only)

        return result if nanoseconds else for_python(result)

    def stream(
        self,
        sql: str,
        *,
        timeout: float | None = None,
        nanoseconds: bool = False,
        changelog: bool = False,
    ) -> ContinuousQuery:
        """A continuous query: iterate it for ``pa.RecordBatch``es as data arrives.

        ``.incremental`` tells whether batches are new rows (each emitted once) or complete
        replacements of an aggregate's current result; with ``changelog`` such a query
        yields changes instead (:mod:`arroyo_lite.query.changelog`). Iteration ends on
        ``close()``, when the session closes, or after ``timeout`` seconds. Bad SQL raises
        :class:`~arroyo_lite.errors.QueryError` here, before iteration. Timestamps are
        microseconds unless ``nanoseconds=True``, as for :meth:`query`.
        """
        self._check_open()
        stream = self.engine.stream(sql, timeout=timeout, changelog=changelog)
        if not nanoseconds:
            from arroyo_lite.query.python_values import for_python

            stream.convert = for_python
        return stream

    def open_windows(self, sql: str, *, nanoseconds: bool = False) -> pa.Table:
        """*arroyo-lite extension.* The windows of the windowed query ``sql`` that are still
        open over the rows stored now: not final (each window is emitted once, when the
        watermark passes its end). The table's schema metadata says so
        (``arroyo_lite.partial``) and gives the watermark (``arroyo_lite.watermark``, ns).
        Raises :class:`~arroyo_lite.errors.QueryError` for a query without windows."""
        self._check_open()
        import pyarrow as pa

        from arroyo_lite.query.python_values import for_python

        batch = self.engine.open_windows(sql)
        table = pa.Table.from_batches([batch])
        return table if nanoseconds else for_python(table)

    def copy(self, sql: str, target: str, *, position: SourcePosition | None = None) -> int:
        """``COPY (sql) TO target``: write a snapshot of the query's rows to a file (DuckDB's
        COPY: csv, parquet or json, by the file's extension or ``(FORMAT ...)``); return the
        number of rows written. Raises :class:`~arroyo_lite.errors.QueryError`."""
        self._check_open()
        return self.engine.copy(sql, target, position=position)

    def run_copy(self, statement: Copy) -> int:
        """Run a ``COPY`` statement of a :class:`Program` (see :meth:`copy`)."""
        return self.copy(statement.query, statement.target, position=statement.position)

    def interrupt(self) -> None:
        """Abandon the snapshot query running right now (from another thread, e.g. Ctrl-C)."""
        if self._engine is not None:  # no engine yet: no query is running
            self._engine.interrupt()

    # --- introspection ------------------------------------------------------------------

    def status(self) -> list[SourceStatus]:
        """A snapshot of every source's status, in creation order."""
        return self._runtime.statuses() if self._runtime is not None else []

    def worker_stats(self) -> list[WorkerStats]:
        """*arroyo-lite extension.* The latest figures of each worker process (``workers``
        >= 2): CPU seconds, memory, poll starts and their lateness; empty without workers."""
        pool = self._pool
        if pool is None or self._runtime is None:
            return []
        return self._runtime.run_sync(pool.stats)

    def insert_failures(self) -> list[str]:
        """One line per ``INSERT INTO`` a sink whose query failed while running (it stopped
        feeding the sink; the sources and other inserts kept running)."""
        return self._inserts_made.failures() if self._inserts_made is not None else []

    def end_inserts(self) -> None:
        """Every source has ended: each ``INSERT`` writes its last rows and ends, so a failure
        on those rows is in :meth:`insert_failures` once :meth:`inserts_running` is false."""
        if self._inserts_made is not None:
            self._inserts_made.end_of_input()

    def inserts_running(self) -> bool:
        """Whether an ``INSERT`` is still feeding its sink."""
        return self._inserts_made is not None and self._inserts_made.running()

    def sources_finished(self) -> bool:
        """Whether nothing more will arrive: the session has sources and every one has ended
        (finished by itself, as a ``single_file`` source at the end of its file or an
        ``impulse`` after ``message_count``, or failed). A bounded pipeline is then done once
        its queries have seen the last rows."""
        from arroyo_lite.connectors.base import SourceState

        ended = {SourceState.FINISHED, SourceState.FAILED}
        sources = [
            s
            for s in self.status()
            if (config := self._configs.get(s.table.lower())) is not None
            and config.kind is TableKind.SOURCE
        ]
        return bool(sources) and all(s.state in ended for s in sources)

    def tables(self) -> list[str]:
        """Names of tables and views, in creation order (tables first)."""
        names = self._store.names() if self._store is not None else []
        return names + (self._engine.views() if self._engine is not None else [])

    def schema(self, name: str) -> pa.Schema:
        """The Arrow schema of a table or view (``QueryError`` if there is none)."""
        if self._store is not None and self._store.has(name):
            return self._store.schema(name)
        if self.engine.has_view(name) or name.lower() == STATUS_TABLE:
            quoted = name.replace('"', '""')
            return self.engine.query(f'SELECT * FROM "{quoted}" LIMIT 0').schema
        raise QueryError(f"table '{name}' does not exist")

    def config(self, name: str) -> TableConfig | None:
        return self._configs.get(name.lower())

    @property
    def state_dir(self) -> Path | None:
        return self._state.path if self._state is not None else None

    @property
    def closed(self) -> bool:
        return self._closed

    # --- shutdown -----------------------------------------------------------------------

    def close(self) -> None:
        """Stop every source (bounded wait), save state, release DuckDB. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        runtime = self._runtime
        try:
            if runtime is None:
                return  # no table was ever made: nothing runs
            # Sources that all finished by themselves: the input is complete (open windows
            # close); otherwise they are being stopped and what is open stays unwritten.
            ended = self.sources_finished()
            runtime.stop_all_sources()
            if self._inserts_made is not None:
                # What the sources produced is still written.
                self._inserts_made.stop(end_of_input=ended)
            if self._persister is not None:
                try:
                    runtime.call(self._persister.flush(), timeout=30)
                finally:
                    self._persister.close()
        finally:
            if self._pool is not None and runtime is not None:
                try:
                    runtime.call(self._pool.close(), timeout=30)
                except Exception:  # closing goes on: the runtime's close kills what is left
                    log.exception("stopping the worker processes failed")
            if runtime is not None:
                runtime.close()
            if self._engine is not None:
                self._engine.close()
            if self._connecting is not None:
                self._connecting.close()
            if self._store is not None:
                self._store.close()

    def _check_open(self) -> None:
        if self._closed:
            raise SessionClosedError("the session is closed")


async def _in_thread(function: Callable[..., _T], /, *args: Any, **kwargs: Any) -> _T:
    """``asyncio.to_thread`` (imported here: the caller's loop has imported asyncio)."""
    import asyncio

    return await asyncio.to_thread(function, *args, **kwargs)


class AsyncSession:
    """:class:`Session` for asyncio code: blocking work runs in worker threads.

    ``async with AsyncSession() as s: await s.execute(...); await s.query(...)`` and
    ``async for batch in s.stream(sql): ...``.
    """

    def __init__(self, **kwargs: Any) -> None:
        self.session = Session(**kwargs)

    async def __aenter__(self) -> AsyncSession:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def execute(self, sql: str, *, file: str = "<string>") -> Program:
        return await _in_thread(self.session.execute, sql, file=file)

    async def query(self, sql: str, *, nanoseconds: bool = False) -> pa.Table:
        return await _in_thread(self.session.query, sql, nanoseconds=nanoseconds)

    async def stream(
        self,
        sql: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the stream's lifetime, as in Session
        nanoseconds: bool = False,
        changelog: bool = False,
    ) -> AsyncIterator[pa.RecordBatch]:
        """Async iterator over :meth:`Session.stream`'s batches."""
        cq = await _in_thread(
            self.session.stream,
            sql,
            timeout=timeout,
            nanoseconds=nanoseconds,
            changelog=changelog,
        )
        try:
            while True:
                batch = await _in_thread(next, cq, None)
                if batch is None:
                    return
                yield batch
        finally:
            cq.close()

    def status(self) -> list[SourceStatus]:
        return self.session.status()

    def tables(self) -> list[str]:
        return self.session.tables()

    def schema(self, name: str) -> pa.Schema:
        return self.session.schema(name)

    async def close(self) -> None:
        await _in_thread(self.session.close)
