"""Opening DuckDB connections: :func:`open_database` (every database of the query layer, with
:data:`DATABASE_CONFIG`), :func:`connect`, :func:`configure`, :class:`PendingConnection` (a
connection opening in the background while the caller works on) and :func:`open_in_order`
(the one background thread those openings share). DuckDB is the only import: a connection
can start opening before sqlglot and the rest of the engine are imported.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Mapping

import duckdb

__all__ = [
    "DATABASE_CONFIG",
    "PendingConnection",
    "configure",
    "connect",
    "open_database",
    "open_in_order",
    "wait_for_openings",
]

log = logging.getLogger(__name__)

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


#: The background openings not started yet (:func:`open_in_order`), the thread running them
#: (``None`` when there is none) and the last one started (what :func:`wait_for_openings`
#: joins: a thread that has handed back its last job still has a few steps to take).
_jobs: deque[Callable[[], None]] = deque()
_jobs_lock = threading.Lock()
_worker: threading.Thread | None = None
_last_worker: threading.Thread | None = None


def open_in_order(job: Callable[[], None]) -> None:
    """Run ``job`` (opening a DuckDB database, which DuckDB does mostly without the GIL) on
    the background thread, after the jobs given before it; the thread is started when work
    comes and ends when none is left.

    One thread, not one per opening: ``run --format jsonl`` opens two databases (the
    engine's and its output's) while its SQL compiles, and on a machine of two cores a
    third busy thread beside the compiling one would take CPU from the compile. A job that
    raises is logged and the next one runs (a job hands its own errors to whoever waits for
    it, as :class:`PendingConnection` does). Not a daemon thread: interpreter exit waits for
    it (tens of milliseconds at most), since a daemon thread stopped inside DuckDB at exit
    aborts the process (exit status 134).
    """
    global _worker, _last_worker
    with _jobs_lock:
        _jobs.append(job)
        if _worker is None:
            _worker = _last_worker = threading.Thread(target=_run_jobs, name="duckdb-connect")
            _worker.start()


def _run_jobs() -> None:
    global _worker
    while True:
        with _jobs_lock:
            if not _jobs:
                _worker = None  # (under the lock: a job given from now on starts a thread)
                return
            job = _jobs.popleft()
        try:
            job()
        except Exception:
            log.exception("a background DuckDB opening failed")


def wait_for_openings() -> None:
    """Return once every job given to :func:`open_in_order` so far has run and the
    background thread has ended."""
    while True:
        with _jobs_lock:
            thread = _last_worker
        if thread is None:
            return
        thread.join()
        with _jobs_lock:
            if _last_worker is thread and _worker is None:
                return


class PendingConnection:
    """:func:`connect`, opened in the background (:func:`open_in_order`) from the moment
    this is made.

    DuckDB opens a database without holding the GIL, so a caller that will need a
    connection soon can start it early and go on with Python work (``run`` compiles its
    SQL meanwhile). Only the opening runs there, in one call: each time a thread takes the
    GIL back from a busy one it waits for the switch interval (5 ms), so the
    configuration's dozen DuckDB calls there took several times their cost (the main
    thread then waited for them); :meth:`take` configures the connection (:func:`configure`)
    on the caller's thread and hands it over, or raises what opening raised. :meth:`close`
    closes one that was never taken. Both may be called from any thread.
    """

    def __init__(self) -> None:
        self._con: duckdb.DuckDBPyConnection | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self._opened = threading.Event()
        open_in_order(self._open)

    def _open(self) -> None:
        try:
            self._con = open_database()
        except BaseException as e:  # handed to the caller of take()
            self._error = e
        finally:
            self._opened.set()

    def take(self) -> duckdb.DuckDBPyConnection:
        """The connection (once: a second call raises ``RuntimeError``)."""
        self._opened.wait()
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
        """Close the connection unless it was taken, and wait for the background openings to
        end. Idempotent."""
        self._opened.wait()
        with self._lock:
            con, self._con = self._con, None
        if con is not None:
            con.close()
        wait_for_openings()


def configure(con: duckdb.DuckDBPyConnection) -> None:
    """Settings for every connection and cursor: no replacement scans of Python variables,
    no progress bar (DuckDB would draw it on our stdout, inside query output). The functions
    arroyo-lite adds (``cbor_to_json``; DataFusion's t-digest and the other helpers of
    :mod:`arroyo_lite.sql.aggregates`) are defined by :class:`~arroyo_lite.query.builtins.
    Builtins` when a statement calls one."""
    con.execute("SET python_enable_replacements = false")
    con.execute("SET enable_progress_bar = false")
