"""Opening DuckDB connections: :func:`open_database` (every database of the query layer, with
:data:`DATABASE_CONFIG`), :func:`connect`, :func:`configure`, and :class:`PendingConnection`
(a connection opening on a thread of its own while the caller works on). DuckDB is the only
import: a connection can start opening before sqlglot and the rest of the engine are imported.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

import duckdb

__all__ = ["DATABASE_CONFIG", "PendingConnection", "configure", "connect", "open_database"]

#: The settings of every in-memory database the query layer opens (the engine's, each
#: windowed plan's, each per-group state's; :func:`open_database`): no async I/O threads.
#: DuckDB 2.0 starts ``async_threads`` (8) of them per database, whatever ``threads`` says,
#: to read Parquet and CSV files in the background; these databases scan Arrow data in
#: memory, and a query that does read a file (``read_parquet``) still does, its reads made
#: by the worker threads instead (as DuckDB 1.x did). Each of those threads, idle or not,
#: took a glibc arena of its own on its first allocation (up to 8 per core), and a database
#: opened again and again (a state's renewal) started and ended 8 each time, which kept
#: glibc's held memory creeping (``benchmarks/incremental_memory.py``; README "Memory").
DATABASE_CONFIG: Mapping[str, str | int | bool] = {"async_threads": 0}

#: Settings a DuckDB older than the one that added them rejects; left out there (1.x has
#: no async I/O threads to turn off).
_NEWER_SETTINGS = frozenset({"async_threads"})
_older_duckdb = False


def open_database(**settings: str | int | bool) -> duckdb.DuckDBPyConnection:
    """A new in-memory database with :data:`DATABASE_CONFIG`, and ``settings`` over it
    (DuckDB's configuration names: ``threads=1``). One ``duckdb.connect`` call, which DuckDB
    makes without the GIL (see :class:`PendingConnection`)."""
    global _older_duckdb
    config: dict[str, str | int | bool | float | list[str]] = {**DATABASE_CONFIG, **settings}
    if not _older_duckdb:
        try:
            return duckdb.connect(":memory:", config=config)
        except duckdb.InvalidInputException:  # "unrecognized configuration property"
            _older_duckdb = True
    return duckdb.connect(
        ":memory:", config={k: v for k, v in config.items() if k not in _NEWER_SETTINGS}
    )


def connect() -> duckdb.DuckDBPyConnection:
    """A new in-memory database's connection (:func:`open_database`), configured
    (:func:`configure`)."""
    con = open_database()
    configure(con)
    return con


class PendingConnection:
    """:func:`connect`, run on a thread of its own from the moment this is made.

    DuckDB opens a database without holding the GIL, so a caller that will need a
    connection soon can start it early and go on with Python work (``run`` compiles its
    SQL meanwhile). Only the opening runs on the thread, in one call: each time a thread
    takes the GIL back from a busy one it waits for the switch interval (5 ms), so the
    configuration's dozen DuckDB calls there took several times their cost (the main
    thread then waited for them); :meth:`take` configures the connection (:func:`configure`)
    on the caller's thread and hands it over, or raises what opening raised. :meth:`close`
    closes one that was never taken. Both may be called from any thread.
    """

    def __init__(self) -> None:
        self._con: duckdb.DuckDBPyConnection | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        # Not a daemon: interpreter exit waits for it (tens of milliseconds at most). A
        # daemon thread stopped inside DuckDB at exit aborts the process (exit status 134).
        self._thread = threading.Thread(target=self._open, name="duckdb-connect")
        self._thread.start()

    def _open(self) -> None:
        try:
            self._con = open_database()
        except BaseException as e:  # handed to the caller of take()
            self._error = e

    def take(self) -> duckdb.DuckDBPyConnection:
        """The connection (once: a second call raises ``RuntimeError``)."""
        self._thread.join()
        with self._lock:
            if self._error is not None:
                raise self._error
            con, self._con = self._con, None
        if con is None:
            raise RuntimeError("the pending connection was taken or closed already")
        try:
            configure(con)
        except BaseException:
            con.close()
            raise
        return con

    def close(self) -> None:
        """Close the connection unless it was taken. Idempotent."""
        self._thread.join()
        with self._lock:
            con, self._con = self._con, None
        if con is not None:
            con.close()


def configure(con: duckdb.DuckDBPyConnection) -> None:
    """Settings for every connection and cursor: no replacement scans of Python variables,
    no progress bar (DuckDB would draw it on our stdout, inside query output). The functions
    arroyo-lite adds (``cbor_to_json``; DataFusion's t-digest and the other helpers of
    :mod:`arroyo_lite.sql.aggregates`) are defined by :class:`~arroyo_lite.query.builtins.
    Builtins` when a statement calls one."""
    con.execute("SET python_enable_replacements = false")
    con.execute("SET enable_progress_bar = false")
