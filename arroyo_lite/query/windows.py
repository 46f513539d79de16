"""Event time for windowed plans: Arroyo's watermark, and tumbling windows that close once.

:class:`Watermark` follows one source table as Arroyo's expression watermark generator does
(``arroyo-worker/src/arrow/watermark_generator.rs``): for each *source batch* (the store's
:attr:`~arroyo_lite.runtime.store.TableSnapshot.marks`) it evaluates the table's watermark
expression (``_timestamp - INTERVAL 1 SECOND`` by default; the ``WATERMARK FOR`` column or
expression otherwise) and takes its minimum over the batch; it *emits* that value when the
batch's greatest ``_timestamp`` is more than :data:`PERIOD_NS` after the one at the previous
emission. The watermark downstream is the last one emitted (it can go back, as in Arroyo).

:class:`TumblingWindows` keeps the rows of the windows still open. A row whose window has
closed (its bin starts before the bin of the current watermark) is late and dropped, as
Arroyo's tumbling window operator drops it. When a watermark is emitted, the rows of every
window that ends at or before the watermark's bin leave the state and are handed out, to be
aggregated once (:class:`~arroyo_lite.query.continuous.WindowedPlan` runs the query on
them). The end of input closes every window (Arroyo sends a watermark far in the future).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from arroyo_lite.config import TIMESTAMP_COLUMN, TIMESTAMP_TYPE, TableConfig
from arroyo_lite.sql.transpile import to_duckdb

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


class TumblingWindows:
    """The rows of the open ``width`` windows of one source (``width``: DuckDB interval SQL)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, width: str, schema: pa.Schema) -> None:
        self._con = con
        self._width = width
        self._open = schema.empty_table()
        #: Rows dropped because their window had closed already (Arroyo logs and skips them).
        self.late_rows = 0

    @property
    def open_rows(self) -> int:
        return self._open.num_rows

    def bin_start(self, ns: int) -> int:
        """Start of the window holding the instant ``ns`` (epoch-aligned, as the query's)."""
        row = self._con.sql(
            f"SELECT epoch_ns(time_bucket({self._width}, make_timestamp_ns({int(ns)}::BIGINT), "
            "TIMESTAMP '1970-01-01'))"
        ).fetchall()
        return int(row[0][0])

    def add(self, rows: pa.Table, watermark: int | None) -> None:
        """Keep ``rows`` that fall in windows still open under ``watermark``; drop late ones."""
        if watermark is not None:
            keep = pc.greater_equal(rows.column(TIMESTAMP_COLUMN), _ts(self.bin_start(watermark)))
            kept = rows.filter(keep)
            self.late_rows += rows.num_rows - kept.num_rows
            rows = kept
        if rows.num_rows:
            self._open = pa.concat_tables([self._open, rows.cast(self._open.schema)])

    def close(self, watermark: int | None) -> pa.Table | None:
        """Remove and return the rows of every window the ``watermark`` has passed
        (``None``: the end of input, every window); ``None`` when no window closes."""
        if self._open.num_rows == 0:
            return None
        if watermark is None:
            closed, self._open = self._open, self._open.schema.empty_table()
            return closed
        edge = _ts(self.bin_start(watermark))
        before = pc.less(self._open.column(TIMESTAMP_COLUMN), edge)
        closed = self._open.filter(before)
        if closed.num_rows == 0:
            return None
        self._open = self._open.filter(pc.invert(before))
        return closed


def segments(data: pa.Table, first_row: int, marks: tuple[int, ...]) -> Iterator[pa.Table]:
    """``data`` (the rows from global index ``first_row`` on) cut at the source's batch
    boundaries ``marks``; rows past the last mark come as one piece."""
    start = first_row
    end = first_row + data.num_rows
    for mark in marks:
        if mark <= start:
            continue
        if mark > end:
            break
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
