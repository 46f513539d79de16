"""Continuous queries: iterators of result batches that follow the live tables.

A :class:`ContinuousQuery` (made by :meth:`arroyo_lite.query.engine.Engine.stream`) runs on its
own DuckDB *cursor*: a cursor shares the catalog (the views) but not the registrations, so a
continuous query can point a table's name at *only the new rows* of that table and run the
user's query, views included, over them. How it follows the tables is its :class:`Plan`,
chosen once when the query is planned (:func:`plan_for`, from the
:class:`~arroyo_lite.query.shape.QueryKind` that :mod:`arroyo_lite.query.shape` decides):

* :class:`AppendPlan` (``incremental = True``, kind ``append``): each evaluation sees only
  the rows of the one source table that arrived since the previous one (a per-query
  high-water mark on the table's global row index), so every row is emitted once. Memory
  tables are registered whole (they do not change), so joining new rows against one works.
  ``ORDER BY`` then sorts each batch of new rows.
  *Gaps* (arroyo-lite, with ``retention.*``): a reader that stalls while retention drops
  rows it has not read yet is not held back and the source is not slowed; it *learns* how
  many it missed: :attr:`ContinuousQuery.missed_rows` counts them, the first batch after a
  gap carries the count in its schema metadata (:data:`MISSED_ROWS_KEY`; it may have no
  rows, when none of the new ones matched), and a warning is logged. Rows dropped before
  the query started are not missed rows.
* :class:`ReevaluatedPlan` (``incremental = False``): the whole query runs on a fresh
  snapshot whenever one of its tables changed, at most every :data:`REEVALUATE_EVERY`
  seconds (queries over ``arroyo_status``: every :data:`STATUS_REFRESH` seconds too), and
  each batch yielded is the complete current result, replacing the previous one.
  :class:`UpdatingPlan` (kind ``updating``) re-evaluates the same way today.
* :class:`WindowedPlan` (kind ``windowed``, ``incremental = True``): tumble, hop and session
  windows, each emitted once when the watermark passes its end
  (:mod:`arroyo_lite.query.windows`).
* :class:`AggregatePlan` (kind ``updating``, when :mod:`arroyo_lite.query.incremental`
  compiles the query: a grouped aggregate of one live table): per-group state, each
  evaluation applies only the new rows to the groups they touch and yields the changes of
  those groups (with ``changelog``) or the whole current result read from the state.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, ClassVar, Protocol

import duckdb
import pyarrow as pa

from arroyo_lite.formats.pandas_free import empty_table
from arroyo_lite.query.changelog import Differ, is_changelog, with_key
from arroyo_lite.query.connection import open_database
from arroyo_lite.query.duck import LiveRef, as_written, bind_sql, pin, query_error, run_sql
from arroyo_lite.query.shape import QueryKind, QueryShape
from arroyo_lite.query.status_table import STATUS_SCHEMA, STATUS_TABLE
from arroyo_lite.query.windows import (
    DEFAULT_WATERMARK,
    EMIT_RANGE,
    OpenWindows,
    Watermark,
    WindowAssigner,
    assigner_for,
    emit_range_table,
    segments,
    set_emit_range,
)
from arroyo_lite.runtime.store import Store, TableSnapshot

if TYPE_CHECKING:
    from arroyo_lite.query.incremental import AggregateState

#: How long a continuous query blocks between checks of its deadline / close flag.
WAIT_SLICE = 0.25
#: Re-evaluation period of continuous queries over the status table (seconds).
STATUS_REFRESH = 1.0
#: Shortest time between two full re-evaluations of a non-incremental query (seconds).
REEVALUATE_EVERY = 0.05
#: Schema-metadata key of the first batch after a gap: rows retention dropped unread.
MISSED_ROWS_KEY = b"arroyo_lite.missed_rows"
#: Schema-metadata keys of a batch of windows still open (:meth:`ContinuousQuery.
#: open_windows`): ``b"true"``, and the watermark (ns) they are open under.
PARTIAL_KEY = b"arroyo_lite.partial"
WATERMARK_KEY = b"arroyo_lite.watermark"

log = logging.getLogger(__name__)

#: What an evaluation reads for one table: a snapshot, or chosen rows.
Inputs = TableSnapshot | pa.Table
#: Pins one table name on the query's cursor for the next evaluation.
Pin = Callable[[str, Inputs], None]


class QueryHost(Protocol):
    """What a continuous query needs from its engine (the engine is one)."""

    @property
    def store(self) -> Store: ...

    @property
    def closed(self) -> bool: ...

    def status_table(self) -> pa.Table: ...


class Plan:
    """How a continuous query turns changes of its tables into result batches.

    A plan decides when to evaluate (:meth:`hold`), what each evaluation sees
    (:meth:`pin_inputs`) and which results are worth yielding (:meth:`keeps`). It keeps its
    own progress (a high-water mark) and is used by one query on one thread.
    """

    #: Whether batches are new rows (``True``) or complete replacements of the result.
    incremental: ClassVar[bool] = False
    #: Whether, asked for changes, the plan's results are changes already.
    computes_changes: ClassVar[bool] = False

    def __init__(self, kind: QueryKind, sources: frozenset[str]) -> None:
        self.kind = kind
        self.sources = sources
        #: Positions of the result columns that identify a result row (an updating
        #: aggregate's group keys; empty: none known). Its change batches name them
        #: (:func:`~arroyo_lite.query.changelog.with_key`), so an update is one record.
        self.key: tuple[int, ...] = ()

    def hold(self, last_eval: float, now: float) -> float:
        """Seconds to wait before evaluating a change seen at ``now`` (0 or less: at once)."""
        return last_eval + REEVALUATE_EVERY - now

    def pin_inputs(self, snaps: Mapping[str, TableSnapshot], pin: Pin) -> bool:
        """Pin what the next evaluation reads; ``False`` when there is nothing to evaluate."""
        for snap in snaps.values():
            pin(snap.name, snap)
        return True

    def keeps(self, result: pa.Table) -> bool:
        """Whether ``result`` is yielded (a whole result is, even when empty)."""
        return True

    def start(self, snaps: Mapping[str, TableSnapshot]) -> None:
        """Called once, before the first evaluation, with the tables as they are then."""

    def take_missed(self) -> int:
        """Rows the last :meth:`pin_inputs` found dropped before they were read (reset)."""
        return 0

    #: Set by the query when its input has ended for good (every source finished): a plan
    #: holding results back (open windows) hands them out at the next evaluation.
    end_of_input: bool = False

    def inputs(self, snaps: Mapping[str, TableSnapshot]) -> list[dict[str, Inputs]]:
        """What each evaluation due now reads, in order (table name -> data): one evaluation
        of what :meth:`pin_inputs` pins, or none."""
        pins: dict[str, Inputs] = {}
        if not self.pin_inputs(snaps, pins.__setitem__):
            return []
        return [pins]

    def results(self, snaps: Mapping[str, TableSnapshot]) -> list[pa.Table] | None:
        """The results of the evaluation due now, when the plan computes them itself (from
        state it keeps); ``None``: the query runs over what :meth:`inputs` pins."""
        return None

    def close(self) -> None:
        """Release what the plan holds (called once, when its query closes)."""


class AppendPlan(Plan):
    """New rows of the source tables only, each emitted once (see the module docstring).

    With several sources (a ``UNION ALL`` of them, never a join: :func:`classify`) each
    evaluation reads the new rows of every one; the query is linear in each, so every result
    row still comes out once."""

    incremental = True

    def __init__(self, kind: QueryKind, sources: frozenset[str]) -> None:
        super().__init__(kind, sources)
        self.high_waters = dict.fromkeys(sources, 0)
        self._missed = 0

    @property
    def high_water(self) -> int:
        """The high-water mark of a one-source plan (rows of it read so far)."""
        (mark,) = self.high_waters.values()
        return mark

    def hold(self, last_eval: float, now: float) -> float:
        return 0.0  # each evaluation reads only new rows: no reason to wait

    def start(self, snaps: Mapping[str, TableSnapshot]) -> None:
        # From the oldest row kept now: what retention dropped earlier is not missed.
        for key in self.high_waters:
            snap = snaps.get(key)
            self.high_waters[key] = snap.first_row if snap is not None else 0

    def pin_inputs(self, snaps: Mapping[str, TableSnapshot], pin: Pin) -> bool:
        fresh = {
            key: snap
            for key, snap in snaps.items()
            if key in self.high_waters and snap.end_row > self.high_waters[key]
        }
        if not fresh:
            return False
        for key, snap in fresh.items():
            self._missed += max(0, snap.first_row - self.high_waters[key])
        for key, other in snaps.items():
            if key in fresh:
                pin(other.name, other.since(self.high_waters[key]))
                self.high_waters[key] = other.end_row
            elif key in self.high_waters:
                pin(other.name, empty_table(other.schema))  # nothing new from this one
            else:
                pin(other.name, other)
        return True

    def keeps(self, result: pa.Table) -> bool:
        return result.num_rows > 0 or self._missed > 0  # a gap is news, even without rows

    def take_missed(self) -> int:
        missed, self._missed = self._missed, 0
        return missed


class ReevaluatedPlan(Plan):
    """The whole query over a fresh snapshot, throttled; each result replaces the last."""


class WindowedPlan(Plan):
    """A query grouped by windows (``tumble``, ``hop``, ``session``): each window is emitted
    once, when the watermark passes its end (:mod:`arroyo_lite.query.windows`).

    The plan reads each new source batch once: it feeds that source's watermark and keeps
    the rows open windows need (late rows are dropped, by the source's own watermark).
    Windows close by the smallest watermark of the sources that are not idle (a join of
    windowed sources waits for both, as Arroyo's instant join does; a source without rows
    for its ``idle_micros`` does not hold the others back); then the query runs over the
    rows of the closing windows, told which window ends to emit
    (:data:`~arroyo_lite.query.windows.EMIT_RANGE`), and the rows no open window holds are
    dropped. So each result row is new, and a window function over windows (``PARTITION BY
    window``) sees whole windows. A query that joins (``per_window``) runs once per closing
    window, so rows of different windows never meet. The end of input closes every window.
    Memory tables are read whole. :meth:`partial_inputs` evaluates the open windows.
    """

    incremental = True

    def __init__(
        self,
        kind: QueryKind,
        sources: frozenset[str],
        *,
        assigner: WindowAssigner,
        watermarks: Mapping[str, str],
        idle_micros: Mapping[str, int | None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        per_window: bool = False,
    ) -> None:
        super().__init__(kind, sources)
        # Small queries over the open windows' rows (watermarks, window ends, sessions).
        self._con = open_database(python_enable_replacements=False)
        self.assigner = assigner
        self.watermarks = {
            key: Watermark(self._con, watermarks.get(key, DEFAULT_WATERMARK)) for key in sources
        }
        self.open: dict[str, OpenWindows] = {}
        self.high_waters = dict.fromkeys(sources, 0)
        self._clock = clock
        #: Evaluate each closing window on its own (a join of windows: see _each_window).
        self._per_window = per_window and assigner.spec.kind != "session"
        self._names: dict[str, str] = {}
        self._idle_after = {
            key: None if micros is None else micros / 1e6
            for key, micros in (idle_micros or {}).items()
            if key in sources
        }
        #: When each source last brought rows (the plan's start for one that has not).
        self._arrived = dict.fromkeys(sources, clock())
        #: The edge of the last closing (``None`` before the first).
        self._closed_at: int | None = None
        self._flushed = False

    @property
    def watermark(self) -> Watermark:
        """The watermark of a one-source plan."""
        return self.watermarks[min(self.sources)]

    @property
    def windows(self) -> OpenWindows | None:
        """The open windows of a one-source plan (``None`` before its first rows)."""
        return self.open.get(min(self.sources))

    def hold(self, last_eval: float, now: float) -> float:
        return 0.0  # each evaluation reads only new rows

    def inputs(self, snaps: Mapping[str, TableSnapshot]) -> list[dict[str, Inputs]]:
        # Windows closing during this call are evaluated together, once, at the latest
        # edge: a row read after an earlier closing is either late or in no window that
        # closing closed, so the result is the same as one evaluation per closing.
        due: int | None = None
        for key in sorted(self.sources):
            snap = snaps.get(key)
            if snap is None:
                continue
            state = self.open.get(key)
            if state is None:
                state = self.open[key] = OpenWindows(
                    self.assigner, snap.schema, con=self._con, table=key
                )
            if snap.end_row <= self.high_waters[key]:
                continue
            first = max(self.high_waters[key], snap.first_row)
            delta = snap.since(self.high_waters[key])
            self.high_waters[key] = snap.end_row
            self._arrived[key] = self._clock()
            watermark = self.watermarks[key]
            for batch in segments(delta, first, snap.marks):
                state.add(batch, watermark.current)
                if watermark.observe(batch):
                    due = self._later(due, self._watermark())
        due = self._later(due, self._watermark())  # a source may have gone idle since
        if self.end_of_input and not self._flushed:
            self._flushed = True
            return self._close(snaps, None)
        return [] if due is None else self._close(snaps, due)

    def _later(self, due: int | None, watermark: int | None) -> int | None:
        """The later of the edge ``due`` and the edge of ``watermark``."""
        if watermark is None:
            return due
        edge = self.assigner.edge(watermark)
        return edge if due is None else max(due, edge)

    def _watermark(self) -> int | None:
        """The smallest watermark of the sources that are not idle (``None`` until each has
        one, or when all are idle). As Arroyo's operators, an input idle for its
        ``idle_micros`` (no rows for that long) does not hold the others back."""
        now = self._clock()
        values = [
            w.current
            for key, w in self.watermarks.items()
            if not self._is_idle(key, now)
        ]
        if not values or any(v is None for v in values):
            return None
        return min(v for v in values if v is not None)

    def _is_idle(self, key: str, now: float) -> bool:
        after = self._idle_after.get(key)
        return after is not None and now - self._arrived[key] > after

    def _close(
        self, snaps: Mapping[str, TableSnapshot], edge: int | None
    ) -> list[dict[str, Inputs]]:
        """The evaluation of the windows closing at ``edge`` (``None``: all), if any hold
        rows; their rows no open window needs are dropped."""
        previous = self._closed_at
        if edge is not None and previous is not None and edge <= previous:
            return []
        pins: dict[str, Inputs] = {}
        rows = 0
        for key, snap in snaps.items():
            self._names[key] = snap.name
            state = self.open.get(key)
            if state is not None:
                closing = state.closing(edge)
                rows += closing.num_rows
                pins[snap.name] = closing
            elif key in self.sources:
                pins[snap.name] = empty_table(snap.schema)
            else:
                pins[snap.name] = snap
        after, until = self.assigner.emit_range(previous, edge)
        pins[EMIT_RANGE] = emit_range_table(after, until)
        evaluations = [pins] if rows else []
        if rows and self._per_window:
            evaluations = self._each_window(pins, after, until)
        for state in self.open.values():
            state.expire(edge)
        if edge is not None:
            self._closed_at = edge
        return evaluations

    def _each_window(
        self, pins: dict[str, Inputs], after: int | None, until: int | None
    ) -> list[dict[str, Inputs]]:
        """``pins`` cut into one evaluation per window end: a join of windowed inputs
        matches only rows of the same window, as Arroyo's instant join matches only rows of
        the same time."""
        names = {snap_name for key, snap_name in self._names.items() if key in self.open}
        closing = [data for name, data in pins.items() if name in names]
        tables = [t for t in closing if isinstance(t, pa.Table)]
        out: list[dict[str, Inputs]] = []
        for end in self.assigner.window_ends(self._con, tables, after, until):
            one = dict(pins)
            for name in names:
                data = pins[name]
                if isinstance(data, pa.Table):
                    one[name] = self.assigner.rows_of(data, end)
            one[EMIT_RANGE] = emit_range_table(end, end + 1)
            out.append(one)
        return out

    def keeps(self, result: pa.Table) -> bool:
        return result.num_rows > 0

    def partial_inputs(self, snaps: Mapping[str, TableSnapshot]) -> dict[str, Inputs]:
        """What an evaluation of the windows still open reads: the open rows of each source,
        and the window ends after the last closing. (Nothing leaves the state.)"""
        pins: dict[str, Inputs] = {}
        for key, snap in snaps.items():
            state = self.open.get(key)
            if state is not None:
                pins[snap.name] = state.closing(None)
            elif key in self.sources:
                pins[snap.name] = empty_table(snap.schema)
            else:
                pins[snap.name] = snap
        after, _ = self.assigner.emit_range(self._closed_at, None)
        pins[EMIT_RANGE] = emit_range_table(after, None)
        return pins

    @property
    def current_watermark(self) -> int | None:
        """The watermark windows close by now (ns; ``None`` before there is one)."""
        return self._watermark()


class UpdatingPlan(ReevaluatedPlan):
    """An aggregate whose rows change as data arrives, re-evaluated whole: the shapes
    :class:`AggregatePlan` does not keep as state (joins, ``LIMIT``, other aggregates...).
    With ``changelog`` its results are diffed into changes (:class:`Differ`)."""


class AggregatePlan(Plan):
    """An updating aggregate of one live table kept as per-group state
    (:class:`~arroyo_lite.query.incremental.AggregateState`): each evaluation absorbs only
    the rows that arrived since the last one. With ``changelog`` it yields the changes of the
    groups those rows touched; otherwise the whole current result, read from the state.

    The state cannot take rows back: when rows it absorbed leave the table (retention), it is
    rebuilt from the rows kept (so the result is the re-evaluated one, at its cost)."""

    #: With ``changelog``, results are changes already (no :class:`Differ`).
    computes_changes: ClassVar[bool] = True

    def __init__(
        self, kind: QueryKind, sources: frozenset[str], state: AggregateState, *, changelog: bool
    ) -> None:
        super().__init__(kind, sources)
        (self.source,) = sources
        self.state = state
        self.changelog = changelog
        self.high_water = 0
        self._base = 0  # global index of the first row the state absorbed
        self._evaluated = False

    def start(self, snaps: Mapping[str, TableSnapshot]) -> None:
        snap = snaps.get(self.source)
        self.high_water = self._base = snap.first_row if snap is not None else 0

    def results(self, snaps: Mapping[str, TableSnapshot]) -> list[pa.Table] | None:
        snap = snaps.get(self.source)
        if snap is None:
            return []
        changes: pa.Table | None = None
        if snap.first_row > self._base:  # rows it absorbed are gone: start over
            changes = self.state.rebuild(snap.to_table())
            self._base = snap.first_row
        elif snap.end_row > self.high_water or not self._evaluated:
            changes = self.state.apply(snap.since(self.high_water))
        self.high_water = snap.end_row
        self._evaluated = True
        if not self.changelog:
            return [self.state.result()]
        return [changes] if changes is not None and changes.num_rows else []

    def close(self) -> None:
        self.state.close()


_PLANS: dict[QueryKind, type[Plan]] = {
    QueryKind.APPEND: AppendPlan,
    QueryKind.WINDOWED: ReevaluatedPlan,
    QueryKind.UPDATING: UpdatingPlan,
    QueryKind.REEVALUATED: ReevaluatedPlan,
}


def plan_for(
    kind: QueryKind,
    sources: frozenset[str],
    shape: QueryShape | None = None,
    watermarks: Mapping[str, str] | None = None,
    idle_micros: Mapping[str, int | None] | None = None,
    *,
    sql: str | None = None,
    schemas: Mapping[str, pa.Schema] | None = None,
    changelog: bool = False,
) -> Plan:
    """The plan of a query of ``kind`` over the live tables ``sources``.

    A windowed query whose windows one assigner closes
    (:func:`~arroyo_lite.query.windows.assigner_for`) gets a :class:`WindowedPlan`
    (``watermarks``: each source's watermark expression; ``idle_micros``: when each goes
    idle); other windowed queries are re-evaluated. An updating query (DuckDB text ``sql``,
    over append-only tables of ``schemas`` by lower-case name) that
    :mod:`arroyo_lite.query.incremental` compiles gets an :class:`AggregatePlan`."""
    if kind is QueryKind.UPDATING:
        # (Only then: per-group state is ~0.005 s of imports on the way to a first row.)
        from arroyo_lite.query.incremental import aggregate_state, group_key_positions
    if (
        kind is QueryKind.UPDATING
        and sql is not None
        and schemas is not None
        and shape is not None
        and len(sources) == 1
        and shape.tables == sources
        and not shape.joins
        and not shape.rescanned
    ):
        state = aggregate_state(sql, sources, schemas)
        if state is not None:
            plan: Plan = AggregatePlan(kind, sources, state, changelog=changelog)
            plan.key = group_key_positions(sql)
            return plan
    if kind is QueryKind.WINDOWED and shape is not None and sources:
        assigner = assigner_for(shape.windows)
        if assigner is not None:
            return WindowedPlan(
                kind,
                sources,
                assigner=assigner,
                watermarks=watermarks or {},
                idle_micros=idle_micros or {},
                per_window=shape.joins,
            )
    plan = _PLANS[kind](kind, sources)
    if kind is QueryKind.UPDATING and sql is not None:
        plan.key = group_key_positions(sql)
    return plan


class ContinuousQuery(Iterator[pa.RecordBatch]):
    """An iterator of result batches that follows the live tables.

    ``incremental`` says what a batch means: new result rows (``True``), or the complete
    current result of a re-evaluated query (``False``; each batch replaces the previous).
    Iteration blocks until there is something new; it ends when :meth:`close` is called, the
    engine closes, or ``timeout`` seconds pass (after :meth:`finish`: once the rows stored so
    far are evaluated). A failing evaluation raises :class:`QueryError` from ``next()``.
    """

    def __init__(
        self,
        host: QueryHost,
        cursor: duckdb.DuckDBPyConnection,
        sql: str,
        duck: str,
        shape: QueryShape,
        plan: Plan,
        *,
        timeout: float | None,
        changelog: bool = False,
    ) -> None:
        self.sql = sql
        self.plan = plan
        #: With ``changelog``, a re-evaluated plan's results become changes (each batch a
        #: changelog batch, :mod:`arroyo_lite.query.changelog`), so every batch is new.
        self.changelog = changelog and not plan.incremental
        self._differ = Differ() if self.changelog and not plan.computes_changes else None
        self.incremental = plan.incremental or self.changelog
        #: Whether it reads an updating table (then it always yields changes).
        self.updating_input = False
        self._host = host
        self._store = host.store
        self._cursor = cursor
        self._duck = duck
        self._shape = shape
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._closed = False
        #: finish() asked for one last evaluation; _final: that evaluation is done.
        self._draining = False
        self._end_of_input = False
        self._final = False
        self._pending: collections.deque[pa.RecordBatch] = collections.deque()
        #: Rows of the source table that retention dropped before this query read them.
        self.missed_rows = 0
        self._versions: dict[str, int] | None = None
        self._store_version = -1
        self._next_status = 0.0
        self._refs: dict[str, LiveRef] = {}
        self._last_eval = float("-inf")
        self._woken = threading.Event()
        # Held while the cursor is in use, so close() can wait for an evaluation to end.
        self._lock = threading.Lock()
        #: Applied to each batch before it is returned (the session sets it to make
        #: timestamps convertible to Python: :mod:`arroyo_lite.query.python_values`).
        self.convert: Callable[[pa.RecordBatch], pa.RecordBatch] | None = None

    def _pin(self, name: str, data: TableSnapshot | pa.Table) -> None:
        pin(self._cursor, self._refs, name, data)

    def validate(self) -> None:
        """Bind the query once against empty tables so errors surface before iteration.

        ``cursor.sql`` binds a SELECT without running it.
        """
        with self._lock:
            snaps = self._store.snapshot(self._shape.tables)
            self.plan.start(snaps)
            for snap in snaps.values():
                self._pin(snap.name, empty_table(snap.schema))
            if self._shape.reads_status:
                self._pin(STATUS_TABLE, empty_table(STATUS_SCHEMA))
            try:
                bind_sql(self._cursor, self._duck)
            except duckdb.Error as e:
                positioned, executed = as_written(self._cursor, e, self._duck, self.sql)
                error = query_error(
                    positioned, executed=executed, original=self.sql, position=None
                )
            else:
                return
        self.close()
        raise error from None

    def __iter__(self) -> ContinuousQuery:
        return self

    def __next__(self) -> pa.RecordBatch:
        while True:
            if self._pending:
                batch = self._pending.popleft()
                return batch if self.convert is None else self.convert(batch)
            if self._final or self._finished():
                self.close()
                raise StopIteration
            if self._draining:
                self._final = True
                self.plan.end_of_input = self._end_of_input
                self._evaluate(force=self._end_of_input)
                continue
            version = self._store.version
            now = time.monotonic()
            due_status = self._shape.reads_status and now >= self._next_status
            if version != self._store_version or due_status:
                # A full re-evaluation scans everything: the plan may hold it back, however
                # often small polls land (new data meanwhile is picked up then).
                hold = self.plan.hold(self._last_eval, now)
                if hold <= 0 or due_status:
                    self._store_version = version
                    self._last_eval = now
                    self._evaluate(force=due_status)
                    continue
                self._woken.wait(self._bounded(hold))  # close() sets it
                continue
            self._store.wait_for_change(version, self._bounded(WAIT_SLICE))

    def _bounded(self, wait: float) -> float:
        """``wait``, cut short at the deadline."""
        if self._deadline is not None:
            wait = min(wait, max(0.0, self._deadline - time.monotonic()))
        return wait

    def finish(self, *, end_of_input: bool = False) -> None:
        """End after one last evaluation of what has arrived (any thread): the rows stored
        up to now are still yielded, then iteration stops. ``end_of_input``: every source
        has finished, so results held back (windows still open) are final and come out."""
        # Handed to the plan at the last evaluation, not now: an evaluation running on the
        # iterating thread must not close windows before it has read every row.
        self._end_of_input = self._end_of_input or end_of_input
        self._draining = True
        self._woken.set()
        self._store.notify()

    def close(self) -> None:
        """Stop iterating (callable from any thread; an iteration in progress ends soon)."""
        if self._closed:
            return
        self._closed = True
        self._woken.set()
        with contextlib.suppress(duckdb.Error):  # already closed: nothing to interrupt
            self._cursor.interrupt()
        self._store.notify()
        # Wait (bounded) for an evaluation on another thread to leave the cursor.
        if self._lock.acquire(timeout=5):
            try:
                with contextlib.suppress(duckdb.Error):
                    self._cursor.close()
                    self.plan.close()
            finally:
                self._lock.release()

    def _finished(self) -> bool:
        if self._closed or self._host.closed:
            return True
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _evaluate(self, *, force: bool) -> None:
        snaps = self._store.snapshot(self._shape.tables)
        versions = {k: s.version for k, s in snaps.items()}
        if not force and versions == self._versions:
            return
        self._versions = versions
        with self._lock:
            if self._closed:
                return
            computed = self._computed(snaps)
            if computed is not None:  # the plan keeps state and computed its results
                self._pending.extend(
                    _one_batch(self._keyed(r)) for r in computed if self.plan.keeps(r)
                )
                return
            for pins in self.plan.inputs(snaps):
                self._pin_all(pins)
                result = self._run()
                if result is not None and self.plan.keeps(result):
                    self._pending.append(self._noting_gap(_one_batch(result)))

    def open_windows(self) -> pa.RecordBatch | None:
        """The windows of a windowed query that are still open, over the rows read so far
        (reading first what has arrived; windows that close meanwhile are queued for
        iteration as usual): one batch labelled partial (:data:`PARTIAL_KEY`; and
        :data:`WATERMARK_KEY`, the watermark in ns, when there is one). ``None`` for a
        query that is not planned as windows. The rows may still change: each window is
        emitted, final, once the watermark passes its end."""
        plan = self.plan
        if not isinstance(plan, WindowedPlan):
            return None
        self._evaluate(force=True)
        with self._lock:
            if self._closed:
                return None
            pins = plan.partial_inputs(self._store.snapshot(self._shape.tables))
            self._pin_all(pins)
            try:
                result = run_sql(self._cursor, self._duck)
            except duckdb.Error as e:
                raise query_error(e, executed=self._duck, original=self.sql, position=None) from e
        metadata = {**(result.schema.metadata or {}), PARTIAL_KEY: b"true"}
        watermark = plan.current_watermark
        if watermark is not None:
            metadata[WATERMARK_KEY] = str(watermark).encode()
        batch = _one_batch(result).replace_schema_metadata(metadata)
        return batch if self.convert is None else self.convert(batch)

    def _pin_all(self, pins: Mapping[str, Inputs]) -> None:
        for name, data in pins.items():
            if name == EMIT_RANGE and isinstance(data, pa.Table):
                set_emit_range(self._cursor, data)
            else:
                self._pin(name, data)

    def _computed(self, snaps: Mapping[str, TableSnapshot]) -> list[pa.Table] | None:
        """The results the plan computes itself (under the lock; ``None`` if it does not)."""
        try:
            return self.plan.results(snaps)
        except duckdb.Error as e:
            if self._closed or self._host.closed:
                return []
            raise query_error(e, executed=self._duck, original=self.sql, position=None) from e

    def _run(self) -> pa.Table | None:
        """One evaluation over what is pinned (under the lock); ``None``: nothing to yield."""
        try:
            if self._shape.reads_status:
                self._pin(STATUS_TABLE, self._host.status_table())
                self._next_status = time.monotonic() + STATUS_REFRESH
            result = run_sql(self._cursor, self._duck)
        except duckdb.Error as e:
            if self._closed or self._host.closed:
                return None  # interrupted by close(): not an error
            raise query_error(e, executed=self._duck, original=self.sql, position=None) from e
        if self._differ is not None:
            result = self._differ.step(self._cursor, result)
            if result.num_rows == 0:
                return None
        return self._keyed(result)

    def _keyed(self, result: pa.Table) -> pa.Table:
        """``result``, when it is a change batch, labelled with the plan's key columns (by
        their names in it, which must be unambiguous)."""
        if not self.plan.key or not is_changelog(result.schema):
            return result
        names = [result.column_names[i] for i in self.plan.key]
        if any(result.column_names.count(n) != 1 for n in names):
            return result
        return with_key(result, names)

    def _noting_gap(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """``batch``, labelled with the rows missed before it (if any), which are counted
        and logged."""
        missed = self.plan.take_missed()
        if not missed:
            return batch
        self.missed_rows += missed
        log.warning(
            "continuous query fell behind: retention dropped %d row(s) of '%s' before it "
            "read them (%d in all)", missed, ", ".join(sorted(self.plan.sources)), self.missed_rows,
        )  # fmt: skip
        metadata = {**(batch.schema.metadata or {}), MISSED_ROWS_KEY: str(missed).encode()}
        return batch.replace_schema_metadata(metadata)


def _one_batch(table: pa.Table) -> pa.RecordBatch:
    if table.num_rows == 0:
        return pa.RecordBatch.from_pylist([], schema=table.schema)
    combined = table.combine_chunks()
    batches = combined.to_batches()
    if len(batches) == 1:
        return batches[0]
    return pa.concat_batches(batches)  # type: ignore[attr-defined,no-any-return]
