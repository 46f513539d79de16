"""Event time for windowed plans: Arroyo's watermark, and windows that close once.

:class:`Watermark` follows one source table as Arroyo's expression watermark generator does
(``arroyo-worker/src/arrow/watermark_generator.rs``): for each *source batch* (the store's
:attr:`~arroyo_lite.runtime.store.TableSnapshot.marks`) it evaluates the table's watermark
expression (``_timestamp - INTERVAL 1 SECOND`` by default; the ``WATERMARK FOR`` column or
expression otherwise) and takes its minimum over the batch; it *emits* that value when the
batch's greatest ``_timestamp`` is more than :data:`PERIOD_NS` after the one at the previous
emission. The watermark downstream is the last one emitted (it can go back, as in Arroyo).

:class:`WindowAssigner` says, for the query's windows
(:class:`~arroyo_lite.sql.windows.WindowSpec`: one ``tumble`` width, one ``hop``, one
``session`` gap), which windows a watermark closes and which rows are late; one
:class:`OpenWindows` per source keeps the rows the open windows still need. Late rows (before
the edge of the watermark: their window has closed) are dropped, as Arroyo's window
operators drop them. When windows close, their rows are handed out to be aggregated once
(:class:`~arroyo_lite.query.continuous.WindowedPlan` runs the query on them, with the range
of window ends to emit, :data:`EMIT_RANGE`), and the rows no open window holds leave the
state. The end of input closes every window (Arroyo sends a watermark far in the future).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa

from arroyo_lite.config import TIMESTAMP_COLUMN, TIMESTAMP_TYPE, TableConfig
from arroyo_lite.formats.pandas_free import empty_table
from arroyo_lite.runtime.marks import MarkView
from arroyo_lite.sql.transpile import to_duckdb
from arroyo_lite.sql.windows import EMIT_AFTER, EMIT_UNTIL, SESSION_END, WindowSpec

#: Arroyo's watermark period (``period_micros: 1_000_000``), in event-time nanoseconds.
PERIOD_NS = 1_000_000_000
#: The default watermark expression (Arroyo's, for tables without ``WATERMARK FOR``).
DEFAULT_WATERMARK = '"_timestamp" - INTERVAL 1 SECOND'


class Watermark:
    """The watermark of one source table, advanced one source batch at a time."""

    def __init__(self, con: duckdb.DuckDBPyConnection, expression: str) -> None:
        self._con = con
        self._expression = expression
        #: The current watermark (ns since the epoch), ``None`` before the first emission.
        self.current: int | None = None
        self._emitted_at = 0

    def observe(self, batch: pa.Table) -> bool:
        """Account for one source batch; ``True`` when it emits a (new) watermark."""
        self._con.register("__wm_batch", batch)
        try:
            row = self._con.sql(
                f'SELECT epoch_ns(max("_timestamp")), epoch_ns(min({self._expression})) '
                "FROM __wm_batch"
            ).fetchall()[0]
        finally:
            self._con.unregister("__wm_batch")
        if row[0] is None or row[1] is None:
            return False
        max_ts, low = int(row[0]), int(row[1])
        if max_ts - self._emitted_at <= PERIOD_NS:
            return False
        self.current = low
        self._emitted_at = max_ts
        return True


class WindowAssigner:
    """When the windows of one :class:`~arroyo_lite.sql.windows.WindowSpec` close, in
    event-time nanoseconds (epoch-aligned, as Arroyo's operators and the query's SQL).

    The watermark ``W`` gives an *edge*: a tumble or hop window closes when its end is at or
    before the slide bin of ``W`` (``tumbling_aggregating_window.rs``,
    ``sliding_aggregating_window.rs``: ``bin_start(W)``), a session when its end (last row
    + gap) is before ``W`` (``session_aggregating_window.rs``). A row is late when it is
    before the edge of its source's watermark: its window (a tumble's, a hop's last one) has
    closed, or, for sessions, Arroyo's operator filters out rows before the watermark.
    """

    def __init__(self, spec: WindowSpec) -> None:
        self.spec = spec

    def edge(self, watermark: int) -> int:
        """Windows ending before (sessions) or at (others) this instant are closed; rows
        before it are late."""
        slide = self.spec.slide_ns
        return watermark if slide == 0 else watermark - watermark % slide

    def retain(
        self, con: duckdb.DuckDBPyConnection, table: str, rows: pa.Table, edge: int
    ) -> pa.Table:
        """What of a source's ``rows`` (of table ``table``) an open window still holds after
        closing at ``edge``. Tumble and hop: the rows after the start of the oldest open
        window. Session: the rows whose session is still open (its end is not before
        ``edge``), found by the query's own session SQL; kept whole when there is none."""
        spec = self.spec
        if spec.kind != "session":
            start = edge - spec.width_ns + spec.slide_ns
            import pyarrow.compute as pc

            return rows.filter(pc.greater_equal(rows.column(TIMESTAMP_COLUMN), _ts(start)))
        if spec.state_sql is None or spec.state_table != table or not rows.num_rows:
            return rows
        columns = ", ".join('"' + name.replace('"', '""') + '"' for name in rows.column_names)
        con.register(table, rows)
        try:
            kept: pa.Table = con.sql(
                f"SELECT {columns} FROM ({spec.state_sql}) "
                f'WHERE "{SESSION_END}" >= make_timestamp_ns({int(edge)}::BIGINT)'
            ).to_arrow_table()
        except duckdb.Error:  # its WHERE reads more than the table: keep every row
            return rows
        finally:
            con.unregister(table)
        return kept.cast(rows.schema)

    def emit_range(self, previous: int | None, edge: int | None) -> tuple[int | None, int | None]:
        """The window ends ``[after, until)`` an evaluation closing at ``edge`` (``None``:
        the end of input) after one at ``previous`` emits."""
        shift = 0 if self.spec.kind == "session" else 1  # sessions: end < W; others: end <= edge
        return (
            None if previous is None else previous + shift,
            None if edge is None else edge + shift,
        )

    def window_ends(
        self,
        con: duckdb.DuckDBPyConnection,
        rows: list[pa.Table],
        after: int | None,
        until: int | None,
    ) -> list[int]:
        """The ends, in ``[after, until)`` (``None``: unbounded), of the tumble or hop
        windows that hold any of ``rows``, in order."""
        times = [t.select([TIMESTAMP_COLUMN]) for t in rows if t.num_rows]
        if not times:
            return []
        slide, count = self.spec.slide_ns, self.spec.width_ns // self.spec.slide_ns
        con.register("__window_rows", pa.concat_tables(times))
        try:
            found = con.sql(
                'SELECT DISTINCT e FROM (SELECT (epoch_ns("_timestamp") // $slide) * $slide '
                "+ $slide * j AS e FROM __window_rows, range(1, $count + 1) AS r(j)) "
                "WHERE ($after IS NULL OR e >= $after) AND ($until IS NULL OR e < $until) "
                "ORDER BY e",
                params={"slide": slide, "count": count, "after": after, "until": until},
            ).fetchall()
        finally:
            con.unregister("__window_rows")
        return [int(row[0]) for row in found]

    def rows_of(self, rows: pa.Table, end: int) -> pa.Table:
        """The ``rows`` in the tumble or hop window ending at ``end``."""
        import pyarrow.compute as pc

        column = rows.column(TIMESTAMP_COLUMN)
        inside = pc.and_(
            pc.greater_equal(column, _ts(end - self.spec.width_ns)), pc.less(column, _ts(end))
        )
        return rows.filter(inside)


class OpenWindows:
    """The rows of one source that open windows (of an :class:`WindowAssigner`) still need."""

    def __init__(
        self,
        assigner: WindowAssigner,
        schema: pa.Schema,
        *,
        con: duckdb.DuckDBPyConnection,
        table: str,
    ) -> None:
        self._assigner = assigner
        self._con = con
        self._table = table
        self._open = empty_table(schema)
        #: Rows dropped because their window had closed already (Arroyo logs and skips them).
        self.late_rows = 0

    @property
    def open_rows(self) -> int:
        return self._open.num_rows

    def add(self, rows: pa.Table, watermark: int | None) -> None:
        """Keep ``rows`` that are not late under ``watermark``; drop the late ones."""
        if watermark is not None:
            edge = self._assigner.edge(watermark)
            import pyarrow.compute as pc

            kept = rows.filter(pc.greater_equal(rows.column(TIMESTAMP_COLUMN), _ts(edge)))
            self.late_rows += rows.num_rows - kept.num_rows
            rows = kept
        if rows.num_rows:
            self._open = pa.concat_tables([self._open, rows.cast(self._open.schema)])

    def closing(self, edge: int | None) -> pa.Table:
        """The rows the windows closing at ``edge`` hold (``None``: every row): those before
        it (a window closed at ``edge`` holds no later row)."""
        if edge is None:
            return self._open
        import pyarrow.compute as pc

        return self._open.filter(pc.less(self._open.column(TIMESTAMP_COLUMN), _ts(edge)))

    def expire(self, edge: int | None) -> None:
        """Drop the rows that no window still open after closing at ``edge`` holds."""
        if edge is None:
            self._open = empty_table(self._open.schema)
            return
        if self._open.num_rows:
            self._open = self._assigner.retain(self._con, self._table, self._open, edge)


def assigner_for(windows: frozenset[WindowSpec]) -> WindowAssigner | None:
    """The assigner that closes every window of a query, or ``None`` when no one does.

    Tumbles of several widths (a window over a window) close by the widest, when the others
    divide it: each of its windows then holds whole windows of the others. One hop or one
    session closes by itself. Other mixes are not planned as windows (they re-evaluate)."""
    kinds = {w.kind for w in windows}
    if kinds == {"tumble"}:
        widest = max(windows, key=lambda w: w.width_ns)
        if all(widest.width_ns % w.width_ns == 0 for w in windows):
            return WindowAssigner(widest)
        return None
    if len(windows) == 1:
        return WindowAssigner(next(iter(windows)))
    return None


#: The pin of an evaluation that carries its emission range (a one-row table ``after``,
#: ``until``, nanoseconds or NULL): :func:`set_emit_range` applies it to the cursor.
EMIT_RANGE = "__arroyo_lite_emit_range"


def emit_range_table(after: int | None, until: int | None) -> pa.Table:
    return pa.table(
        {"after": pa.array([after], pa.int64()), "until": pa.array([until], pa.int64())}
    )


def set_emit_range(con: duckdb.DuckDBPyConnection, table: pa.Table) -> None:
    """Set the variables hop and session windows filter their ends by (``sql/windows.py``)."""
    for name, column in ((EMIT_AFTER, "after"), (EMIT_UNTIL, "until")):
        value = table.column(column)[0].as_py()
        literal = (
            "NULL::TIMESTAMP_NS" if value is None else f"make_timestamp_ns({int(value)}::BIGINT)"
        )
        con.execute(f"SET VARIABLE {name} = {literal}")


def segments(data: pa.Table, first_row: int, marks: MarkView) -> Iterator[pa.Table]:
    """``data`` (the rows from global index ``first_row`` on) cut at the source's batch
    boundaries ``marks``; rows past the last mark come as one piece."""
    start = first_row
    end = first_row + data.num_rows
    for mark in marks.between(start, end):
        yield data.slice(start - first_row, mark - start)
        start = mark
    if start < end:
        yield data.slice(start - first_row)


def _ts(ns: int) -> pa.Scalar[Any]:
    return pa.scalar(ns, pa.int64()).cast(TIMESTAMP_TYPE)


def watermark_expression(config: TableConfig) -> str:
    """The DuckDB expression of ``config``'s watermark over its stored rows: the default
    (``_timestamp`` less a second), the ``WATERMARK FOR`` column itself (it is the event time,
    ``_timestamp``), or its ``AS`` expression."""
    spec = config.watermark
    if spec is None:
        return DEFAULT_WATERMARK
    if spec.expression is None:
        return f'"{TIMESTAMP_COLUMN}"'
    select = to_duckdb(f"SELECT {spec.expression}")
    return select.split(None, 1)[1]
