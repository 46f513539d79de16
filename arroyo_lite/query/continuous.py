"""Continuous queries: iterators of result batches that follow the live tables.

A :class:`ContinuousQuery` (made by :meth:`arroyo_lite.query.engine.Engine.stream`) runs on its
own DuckDB *cursor*: a cursor shares the catalog (the views) but not the registrations, so a
continuous query can point a table's name at *only the new rows* of that table and run the
user's query, views included, over them. Which mode a query gets is decided once, with
sqlglot (:func:`arroyo_lite.query.engine.analyze`):

* **incremental** (``incremental = True``): no aggregate function, ``GROUP BY``,
  ``DISTINCT``, window function, ``HAVING``, ``LIMIT``/``OFFSET`` or set operation but
  ``UNION ALL``, through any
  views, and exactly one live source table read, and scanned only once (a self-join, or a
  subquery over the same table, must match new rows with old ones, so it is re-evaluated).
  Each evaluation sees only the rows that arrived since the previous one (a per-query
  high-water mark on the table's global row index), so every row is emitted once. Memory
  tables are registered whole (they do not change), so joining new rows against one works.
  ``ORDER BY`` then sorts each batch of new rows.
* **re-evaluated** (``incremental = False``): everything else, including joins between
  sources and queries over ``arroyo_status``. The whole query runs on a fresh snapshot
  whenever one of its tables changed, at most every :data:`REEVALUATE_EVERY` seconds (the
  status table: every second), and each batch yielded is the complete current result,
  replacing the previous one.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import duckdb
import pyarrow as pa

from arroyo_lite.config import TableKind
from arroyo_lite.query.engine import LiveRef, QueryShape, bind_sql, pin, query_error, run_sql
from arroyo_lite.query.status_table import STATUS_SCHEMA, STATUS_TABLE

if TYPE_CHECKING:
    from arroyo_lite.query.engine import Engine

#: How long a continuous query blocks between checks of its deadline / close flag.
WAIT_SLICE = 0.25
#: Re-evaluation period of continuous queries over the status table (seconds).
STATUS_REFRESH = 1.0
#: Shortest time between two full re-evaluations of a non-incremental query (seconds).
REEVALUATE_EVERY = 0.05


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
        self.incremental = (
            not shape.aggregating
            and len(self._sources) == 1
            and not shape.rescanned & self._sources
        )
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._closed = False
        #: finish() asked for one last evaluation; _final: that evaluation is done.
        self._draining = False
        self._final = False
        self._pending: collections.deque[pa.RecordBatch] = collections.deque()
        self._high_water = 0
        self._versions: dict[str, int] | None = None
        self._store_version = -1
        self._next_status = 0.0
        self._refs: dict[str, LiveRef] = {}
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
                pin(self._cursor, self._refs, snap.name, snap.schema.empty_table())
            if self._shape.reads_status:
                pin(self._cursor, self._refs, STATUS_TABLE, STATUS_SCHEMA.empty_table())
            try:
                bind_sql(self._cursor, self._duck)
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
            if self._final or self._finished():
                self.close()
                raise StopIteration
            if self._draining:
                self._final = True
                self._evaluate(force=False)
                continue
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

    def finish(self) -> None:
        """End after one last evaluation of what has arrived (any thread): the rows stored
        up to now are still yielded, then iteration stops."""
        self._draining = True
        self._woken.set()
        self._engine.store.notify()

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
                    pin(self._cursor, self._refs, other.name, delta if key == source else other)
            else:
                for snap in snaps.values():
                    pin(self._cursor, self._refs, snap.name, snap)
            try:
                if self._shape.reads_status:
                    pin(self._cursor, self._refs, STATUS_TABLE, self._engine.status_table())
                    self._next_status = time.monotonic() + STATUS_REFRESH
                result = run_sql(self._cursor, self._duck)
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
