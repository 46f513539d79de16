"""Live tables: where source batches land, get compacted and trimmed, and are snapshotted.

Each table is a list of immutable ``pa.RecordBatch`` objects. The hot path
(:meth:`Store.append`, called by sources on the event loop) only appends to that list under a
short lock; it never copies rows. Three things happen elsewhere:

* **Compaction** (a daemon thread owned by the store): many small polls become few big
  batches, LSM style: whenever ``fanin`` consecutive batches are of one size tier (or the
  first one's and the next) they are concatenated into one (tiers grow by ``fanin``), up to
  ``max_batch_rows``; smaller batches left below a bigger one join its next merge. Every row is
  copied about log_fanin(rows) times in total; the number of batches stays logarithmic, so
  DuckDB scans a table of a million 10-row polls about as fast as one contiguous table.
  Concatenation runs outside the lock; the result replaces exactly the batches it was made
  from, if they are all still there (retention may have dropped some meanwhile).
* **Retention** (extension beyond Arroyo): ``retention.max_rows`` is applied on append (drop
  whole batches from the front, then slice the first: zero-copy); ``retention.max_age_seconds``
  (rows whose ``_timestamp`` is older) is applied by the compaction thread every half second
  and by snapshots (at most every 100 ms per table): an ordered expired prefix is sliced off.
* **Updating tables** (``create(..., updating=True)``): the source appends change batches
  (the table's columns plus ``_retract``, :mod:`arroyo_lite.runtime.updating`) and the table
  holds the rows they leave: a change batch that retracts replaces the table's content (its
  rows get new global indexes, as :meth:`Store.replace` does), one that only adds is appended,
  so snapshots show the current rows.
* **Snapshots**: :meth:`Store.snapshot` copies the batch lists of the tables asked for under
  one lock, so a query sees one consistent moment across all of them.

Rows are numbered by a per-table *global row index* (0 for the first row ever appended),
which compaction and retention do not change. Continuous queries and the state writer use it
as a high-water mark: :meth:`TableSnapshot.since` returns the rows at or after an index.
"""

from __future__ import annotations

import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pyarrow as pa

from arroyo_lite.config import RETRACT_COLUMN, TIMESTAMP_COLUMN, RetentionSpec, TableKind
from arroyo_lite.errors import ArroyoLiteError, FatalSourceError
from arroyo_lite.runtime.marks import MarkLog, MarkView
from arroyo_lite.runtime.updating import apply_changes

log = logging.getLogger(__name__)

#: How many batch boundaries a table remembers (:attr:`TableSnapshot.marks`).
MAX_MARKS = 65536
#: Default number of same-tier batches merged at once.
DEFAULT_FANIN = 16
#: Default upper bound on the rows of a batch made by compaction.
DEFAULT_MAX_BATCH_ROWS = 1 << 20
#: How often the compaction thread applies age retention (seconds).
AGE_CHECK_INTERVAL = 0.5
#: Snapshots re-apply age retention at most this often per table (seconds): the check scans
#: the oldest batch's timestamps, too much work for every query.
AGE_SNAPSHOT_INTERVAL = 0.1
#: Largest compacted batch of a table with ``retention.max_age``.
AGE_BATCH_ROWS = 1 << 16


class StoreError(ArroyoLiteError):
    """A table is unknown, exists already, or was given data of the wrong shape."""


@dataclass(frozen=True, slots=True)
class TableSnapshot:
    """An immutable view of one table at one moment.

    ``first_row`` is the global index of the first row of ``batches``; ``end_row`` the index
    one past the last (rows ever appended). ``version`` changes whenever the table does.
    """

    name: str
    kind: TableKind
    schema: pa.Schema
    batches: tuple[pa.RecordBatch, ...]
    first_row: int
    end_row: int
    version: int
    #: Where each appended batch ended (global row indexes, ascending; the last
    #: :data:`MAX_MARKS` batches): the source's own batch boundaries, which compaction
    #: merges away but event time needs (each source batch advances the watermark).
    marks: MarkView = MarkView()
    #: Whether the source sends changes and the table holds its current rows
    #: (:mod:`arroyo_lite.runtime.updating`).
    updating: bool = False

    @property
    def num_rows(self) -> int:
        return self.end_row - self.first_row

    def to_table(self) -> pa.Table:
        """All rows as a ``pa.Table`` over the same buffers (no copy)."""
        return pa.Table.from_batches(self.batches, schema=self.schema)

    def since(self, row: int) -> pa.Table:
        """Rows with global index >= ``row`` (zero-copy slices). Rows already dropped by
        retention are gone: asking for them starts at :attr:`first_row`."""
        skip = max(0, row - self.first_row)
        if skip == 0:
            return self.to_table()
        out: list[pa.RecordBatch] = []
        for batch in self.batches:
            if skip >= batch.num_rows:
                skip -= batch.num_rows
                continue
            out.append(batch.slice(skip) if skip else batch)
            skip = 0
        return pa.Table.from_batches(out, schema=self.schema)

    def source_batches(self, row: int) -> list[pa.RecordBatch]:
        """Rows with global index >= ``row``, one batch per batch the source appended
        (cut at :attr:`marks`; rows older than the oldest mark kept come as one batch).

        What the state writer saves, so that a restored table has the same batch
        boundaries, and hence the same watermarks, as the table it was saved from.
        """
        start = max(row, self.first_row)
        if start >= self.end_row:
            return []
        rows = self.since(start)
        cuts = self.marks.between(start, self.end_row - 1)
        bounds = [start, *cuts, self.end_row]
        return [
            _contiguous(rows.slice(lo - start, hi - lo))
            for lo, hi in itertools.pairwise(bounds)
        ]


def _contiguous(rows: pa.Table) -> pa.RecordBatch:
    """``rows`` as one batch (no copy when they are one chunk already)."""
    batches = rows.to_batches()
    if len(batches) == 1:
        return batches[0]
    return rows.combine_chunks().to_batches()[0]


class _Table:
    """Mutable state of one live table; guarded by the store's lock."""

    __slots__ = (
        "name",
        "kind",
        "schema",
        "retention",
        "batches",
        "first_row",
        "end_row",
        "version",
        "pending",
        "max_batch_rows",
        "age_checked_at",
        "marks",
        "updating",
    )

    def __init__(
        self,
        name: str,
        kind: TableKind,
        schema: pa.Schema,
        retention: RetentionSpec,
        max_batch_rows: int,
        updating: bool = False,
    ) -> None:
        self.name = name
        self.updating = updating
        self.kind = kind
        self.schema = schema
        self.retention = retention
        self.batches: list[pa.RecordBatch] = []
        self.first_row = 0
        self.end_row = 0
        self.version = 0
        self.pending = 0  # batches appended since the last compaction pass
        # A compacted batch is only freed when all its rows expire, so with a row bound keep
        # batches small relative to it: memory stays within ~1.25 x max_rows.
        if retention.max_rows is not None:
            max_batch_rows = max(1, min(max_batch_rows, retention.max_rows // 4))
        if retention.max_age_seconds is not None:
            # Same for age: old rows are released a batch at a time.
            max_batch_rows = min(max_batch_rows, AGE_BATCH_ROWS)
        self.max_batch_rows = max_batch_rows
        self.age_checked_at = 0  # the store clock's time_ns at the last age trim
        self.marks = MarkLog(MAX_MARKS)

    def snapshot(self) -> TableSnapshot:
        return TableSnapshot(
            name=self.name,
            kind=self.kind,
            schema=self.schema,
            batches=tuple(self.batches),
            first_row=self.first_row,
            end_row=self.end_row,
            version=self.version,
            marks=self.marks.view(),
            updating=self.updating,
        )

    def trim_rows(self) -> None:
        """Apply ``retention.max_rows`` (zero-copy)."""
        limit = self.retention.max_rows
        if limit is None:
            return
        excess = (self.end_row - self.first_row) - limit
        while excess > 0 and self.batches:
            head = self.batches[0]
            if head.num_rows <= excess:
                self.batches.pop(0)
                cut = head.num_rows
            else:
                self.batches[0] = head.slice(excess)
                cut = excess
            self.first_row += cut
            excess -= cut
        self.marks.forget_through(self.first_row)

    def trim_age(self, now_ns: int) -> None:
        """Apply ``retention.max_age_seconds`` on ``_timestamp``."""
        self._expire(now_ns)
        self.marks.forget_through(self.first_row)

    def _expire(self, now_ns: int) -> None:
        """Drop the rows older than ``retention.max_age_seconds`` (:meth:`trim_age`)."""
        age = self.retention.max_age_seconds
        if age is None or not self.batches or TIMESTAMP_COLUMN not in self.schema.names:
            return
        # Here, not at the top: pyarrow.compute's import is a large part of Session() start-up.
        import pyarrow.compute as pc

        cutoff = pa.scalar(now_ns - int(age * 1e9), pa.timestamp("ns"))
        while self.batches:
            head = self.batches[0]
            ts = head.column(TIMESTAMP_COLUMN).cast(pa.timestamp("ns"))
            expired = pc.less(ts, cutoff)
            if not pc.any(expired).as_py():
                return
            if pc.all(expired).as_py():
                self.batches.pop(0)
                self.first_row += head.num_rows
                continue
            # Rows expire from the front (time order is the common case): slice the expired
            # prefix off (zero-copy). Out-of-order rows are filtered out instead (one copy);
            # indices stay consistent because first_row + rows kept == end_row still holds.
            removed = int(pc.sum(pc.cast(expired, pa.int64())).as_py() or 0)
            if pc.all(expired.slice(0, removed)).as_py():
                self.batches[0] = head.slice(removed)
            else:
                self.batches[0] = head.filter(pc.invert(expired))
            self.first_row += removed
            return


class Store:
    """All live tables of a session. Thread-safe: sources append on the event loop thread,
    queries snapshot from caller threads, compaction runs on the store's own thread.

    ``time_ns`` gives "now" for age retention (a clock's ``time_ns``; defaults to the system).
    Call :meth:`close` to stop the compaction thread.
    """

    def __init__(
        self,
        *,
        fanin: int = DEFAULT_FANIN,
        max_batch_rows: int = DEFAULT_MAX_BATCH_ROWS,
        time_ns: Callable[[], int] = time.time_ns,
        compact: bool = True,
    ) -> None:
        if fanin < 2:
            raise ValueError("fanin must be at least 2")
        self.fanin = fanin
        self.max_batch_rows = max_batch_rows
        self._time_ns = time_ns
        #: The store's lock, and a condition on it (``wait_for_change``). The hot path
        #: (:meth:`append`) takes the lock itself: ``Condition.__enter__``/``__exit__`` are
        #: Python methods around the same lock, a share of a small poll's CPU.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._tables: dict[str, _Table] = {}
        #: Tables with ``retention.max_age_seconds`` (the ones the compaction thread trims).
        self._aged: dict[str, _Table] = {}
        #: Tables appended ``fanin`` batches since they were last planned, in that order.
        self._due: dict[_Table, None] = {}
        #: Threads in :meth:`wait_for_change` (no notification is made without one).
        self._waiting = 0
        self._version = 0
        self._closed = False
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        if compact:
            self._thread = threading.Thread(
                target=self._compactor, name="arroyo-lite-compactor", daemon=True
            )
            self._thread.start()

    # --- table lifecycle ----------------------------------------------------------------

    def create(
        self,
        name: str,
        schema: pa.Schema,
        *,
        kind: TableKind = TableKind.SOURCE,
        retention: RetentionSpec | None = None,
        updating: bool = False,
    ) -> None:
        """Create an empty table. Names are case-insensitive (as in Arroyo and DuckDB).

        ``updating``: its source appends change batches (see the module docstring)."""
        key = name.lower()
        with self._cond:
            if key in self._tables:
                raise StoreError(f"table '{name}' already exists")
            table = self._tables[key] = _Table(
                name, kind, schema, retention or RetentionSpec(), self.max_batch_rows, updating
            )
            if table.retention.max_age_seconds is not None:
                self._aged[key] = table
            self._bump()

    def drop(self, name: str) -> None:
        with self._cond:
            table = self._tables.pop(name.lower(), None)
            if table is not None:
                self._aged.pop(name.lower(), None)
                self._due.pop(table, None)
            self._bump()

    def names(self) -> list[str]:
        """Table names as created, in creation order."""
        with self._cond:
            return [t.name for t in self._tables.values()]

    def has(self, name: str) -> bool:
        with self._cond:
            return name.lower() in self._tables

    def schema(self, name: str) -> pa.Schema:
        with self._cond:
            return self._get(name).schema

    def kind(self, name: str) -> TableKind:
        with self._cond:
            return self._get(name).kind

    def is_updating(self, name: str) -> bool:
        """Whether ``name`` is an updating table (its source sends changes)."""
        with self._cond:
            return self._get(name).updating

    # --- writing ------------------------------------------------------------------------

    def append(self, name: str, batch: pa.RecordBatch) -> None:
        """Add one batch to the end of a table (the sources' hot path: O(1), no row copy).

        A batch whose schema differs from the table's only in metadata or nullability is
        relabelled; any other difference raises :class:`FatalSourceError` (a source bug).
        For an updating table ``batch`` is a change batch, applied to the current rows (a
        pass over them when it retracts any: :func:`~.updating.apply_changes`).
        """
        if batch.num_rows == 0:
            return
        with self._lock:  # taken once per batch of a plain table: 10,000 polls a second
            table = self._get(name)
            if not table.updating:
                self._add(table, batch, name)
                return
            current = pa.Table.from_batches(table.batches, schema=table.schema)
        changes = _conform_changes(batch, table.schema, name)
        if _retracts(changes):
            # One writer per table (its source): the new content is computed outside the
            # lock, so queries are not held up by it.
            self.replace(name, apply_changes(current, changes))
            return
        with self._cond:  # only additions: appended as rows, no copy
            self._add(table, changes.drop_columns([RETRACT_COLUMN]), name)

    def _add(self, table: _Table, batch: pa.RecordBatch, name: str) -> None:
        """Append ``batch`` to ``table`` (the lock held)."""
        if not batch.schema.equals(table.schema, check_metadata=True):
            batch = _conform(batch, table.schema, name)
        table.batches.append(batch)
        table.end_row += batch.num_rows
        table.marks.append(table.end_row)
        if table.retention.max_rows is not None:  # (trim_rows' own test, without its call)
            table.trim_rows()
        table.pending += 1
        table.version += 1
        self._bump()
        if table.pending == self.fanin:
            # Due for compaction: the store's thread plans only the due tables. It is woken
            # by the first table due since its last pass (it takes them all): waking a
            # thread costs the loop a GIL hand-over, too much for every table's 16th poll.
            wake = not self._due
            self._due[table] = None
            if wake:
                self._wake.set()

    def append_many(self, name: str, batches: Iterable[pa.RecordBatch]) -> None:
        for batch in batches:
            self.append(name, batch)

    def replace(self, name: str, data: pa.Table) -> None:
        """Set a table's whole content (memory tables filled by ``INSERT INTO``)."""
        with self._cond:
            table = self._get(name)
            data = data.cast(table.schema) if not data.schema.equals(table.schema) else data
            batches = data.combine_chunks().to_batches() if data.num_rows else []
            table.first_row = table.end_row
            table.marks.forget_through(table.first_row)
            table.batches = list(batches)
            table.end_row += data.num_rows
            table.version += 1
            self._bump()

    # --- reading ------------------------------------------------------------------------

    @property
    def version(self) -> int:
        """Changes whenever any table is created, dropped or written."""
        with self._cond:
            return self._version

    def snapshot(self, names: Iterable[str] | None = None) -> dict[str, TableSnapshot]:
        """A consistent snapshot of the named tables (all if ``None``), keyed by lower-case
        name. Unknown names are skipped."""
        now = self._time_ns()
        with self._cond:
            keys = self._tables.keys() if names is None else [n.lower() for n in names]
            out: dict[str, TableSnapshot] = {}
            for key in keys:
                table = self._tables.get(key)
                if table is None:
                    continue
                if (
                    table.retention.max_age_seconds is not None
                    and now - table.age_checked_at >= AGE_SNAPSHOT_INTERVAL * 1e9
                ):
                    before = table.first_row
                    table.trim_age(now)
                    table.age_checked_at = now
                    if table.first_row != before:
                        table.version += 1
                out[key] = table.snapshot()
            return out

    def wait_for_change(self, version: int, timeout: float | None) -> int:
        """Block until :attr:`version` differs from ``version`` (or timeout, or close);
        return the current version."""
        with self._cond:
            self._waiting += 1
            try:
                self._cond.wait_for(lambda: self._version != version or self._closed, timeout)
            finally:
                self._waiting -= 1
            return self._version

    def notify(self) -> None:
        """Wake every :meth:`wait_for_change` caller (for example when a session closes)."""
        with self._cond:
            self._bump()

    # --- compaction ---------------------------------------------------------------------

    def compact(self, name: str | None = None, *, due_only: bool = False) -> int:
        """Run one compaction pass now (normally the store's thread does this); return how
        many merges were applied. ``due_only``: only over the tables that were appended
        ``fanin`` batches since they were last planned (what the store's thread does: with
        10,000 tables, planning every table twice a second was most of a session's CPU)."""
        with self._cond:
            if name:
                targets = [self._get(name)]
            elif due_only:
                targets = list(self._due)
                self._due.clear()
            else:
                targets = list(self._tables.values())
                self._due.clear()
            work = [(t, list(t.batches)) for t in targets]
            for t in targets:
                t.pending = 0
        merges = 0
        for table, batches in work:
            groups = _plan(batches, self.fanin, table.max_batch_rows)
            if not groups:
                continue
            merged = [(group, pa.concat_batches(group)) for group in groups]  # type: ignore[attr-defined]
            with self._cond:
                merges += _apply(table, merged)
        return merges

    def wait_compacted(self, timeout: float = 60.0) -> None:
        """Compact until no merge is possible (benchmarks and tests use this)."""
        deadline = time.monotonic() + timeout
        while self.compact() and time.monotonic() < deadline:
            pass

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._bump()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _compactor(self) -> None:
        while True:
            self._wake.wait(AGE_CHECK_INTERVAL)
            self._wake.clear()
            if self._closed:
                return
            try:
                while self.compact(due_only=True):
                    pass
                self._trim_ages()
            except Exception:  # a bug here must not kill compaction for good
                log.exception("table store compaction failed")

    def _trim_ages(self) -> None:
        now = self._time_ns()
        with self._cond:
            # Only the tables with an age bound: visiting 10,000 tables twice a second was
            # a sixth of a --workers session's CPU.
            for table in self._aged.values():
                before = table.first_row
                table.trim_age(now)
                if table.first_row != before:
                    table.version += 1
                    self._bump()

    # --- internals ----------------------------------------------------------------------

    def _get(self, name: str) -> _Table:
        table = self._tables.get(name.lower())
        if table is None:
            raise StoreError(f"table '{name}' does not exist")
        return table

    def _bump(self) -> None:
        self._version += 1
        if self._waiting:  # notify_all costs as much as the rest of an append
            self._cond.notify_all()


def _conform(batch: pa.RecordBatch, schema: pa.Schema, name: str) -> pa.RecordBatch:
    if batch.schema.names != schema.names or batch.schema.types != schema.types:
        got = batch.schema.to_string(show_schema_metadata=False)
        expected = schema.to_string(show_schema_metadata=False)
        raise FatalSourceError(f"batch for table '{name}' has schema {got}, expected {expected}")
    return pa.RecordBatch.from_arrays(batch.columns, schema=schema)


def _conform_changes(batch: pa.RecordBatch, schema: pa.Schema, name: str) -> pa.RecordBatch:
    """A change batch for a table of ``schema``: its columns then ``_retract``."""
    if RETRACT_COLUMN not in batch.schema.names:
        raise FatalSourceError(
            f"table '{name}' is updating: its source must send changes (a '{RETRACT_COLUMN}' "
            "column), got plain rows"
        )
    rows = batch.drop_columns([RETRACT_COLUMN])
    _conform(rows, schema, name)
    return batch


def _retracts(changes: pa.RecordBatch) -> bool:
    """Whether a change batch retracts any row (a null flag adds)."""
    import pyarrow.compute as pc

    return bool(pc.any(changes.column(RETRACT_COLUMN)).as_py())


def _tier(rows: int, fanin: int) -> int:
    if rows < fanin:  # (most batches: one poll's rows)
        return 0
    return int(math.log(rows, fanin))


def _plan(
    batches: list[pa.RecordBatch], fanin: int, max_rows: int
) -> list[list[pa.RecordBatch]]:
    """Groups of consecutive batches to concatenate, LSM style (see the module docstring).

    Walks the batches with a stack of (tier, rows, members); whenever the top ``fanin``
    entries are of the deepest one's tier or one above it, and together stay within
    ``max_rows``, they fold into one entry, a tier above the highest of them. Smaller
    entries left below it (stranded when batch sizes changed) join that fold. Only groups
    with more than one original batch are returned.

    Why both rules: polls whose sizes straddle a tier boundary (10 and 20 rows with fanin 16)
    would never give ``fanin`` equal tiers in a row, and an entry stranded below a bigger one
    would never have an equal neighbour; either way the batch count would grow without
    bound. A fold still raises every row it copies by at least one tier, so each row is
    copied at most about log_fanin(max_rows) times.
    """
    stack: list[tuple[int, int, list[pa.RecordBatch]]] = []
    for batch in batches:
        stack.append((_tier(batch.num_rows, fanin), batch.num_rows, [batch]))
        while len(stack) >= fanin:
            # This runs for every batch pushed on a stack of fanin or more: the common
            # refusal (the window starts on a bigger, older entry) is decided first, from
            # two entries, before the window is built (with 10,000 tables the store's
            # thread spent most of its time building windows it then refused).
            first = stack[-fanin][0]
            if first > stack[-1][0]:
                break
            top = stack[-fanin:]
            tiers = [e[0] for e in top]
            if first != min(tiers) or max(tiers) - first > 1:
                break
            rows = sum(e[1] for e in top)
            if rows > max_rows:
                break
            members = [b for e in top for b in e[2]]
            del stack[-fanin:]
            tier = max(max(tiers) + 1, _tier(rows, fanin))
            while stack and stack[-1][0] < tier and rows + stack[-1][1] <= max_rows:
                _, below_rows, below = stack.pop()
                rows += below_rows
                members = below + members
            stack.append((max(tier, _tier(rows, fanin)), rows, members))
    return [members for _, _, members in stack if len(members) > 1]


def _apply(table: _Table, merged: list[tuple[list[pa.RecordBatch], pa.RecordBatch]]) -> int:
    """Replace each group by its merged batch if all its members are still in place."""
    position = {id(b): i for i, b in enumerate(table.batches)}
    replacements: list[tuple[int, int, pa.RecordBatch]] = []
    for group, batch in merged:
        start = position.get(id(group[0]))
        if start is None:
            continue
        end = start + len(group)
        if end > len(table.batches):
            continue
        if not all(table.batches[start + i] is member for i, member in enumerate(group)):
            continue
        replacements.append((start, end, batch))
    for start, end, batch in sorted(replacements, key=lambda r: r[0], reverse=True):
        table.batches[start:end] = [batch]
    return len(replacements)
