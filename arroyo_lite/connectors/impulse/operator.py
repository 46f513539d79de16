"""The running side of an ``impulse`` table: a counter that ticks ``event_rate`` times a second.

Rows are ``counter`` (0, 1, 2, ...), ``subtask_index`` (always 0: one subtask) and
``_timestamp``. The operator does not emit one batch per row: it wakes at most every
:data:`BATCH_INTERVAL` seconds (or when the next row falls due, if that is later) and emits
every row that has become due since, in one batch built with Arrow compute (no per-row
Python). It stops after ``message_count`` rows if one is given.

Event times: with ``event_time_interval`` row *n* gets ``start + n * interval``; otherwise all
rows of a batch get the clock's wall time when the batch is built.
"""

from __future__ import annotations

import pyarrow as pa

from arroyo_lite.config import TIMESTAMP_COLUMN, TableConfig
from arroyo_lite.connectors.base import Emit, SourceContext, SourceOperator, SourceState
from arroyo_lite.connectors.impulse.options import ImpulseOptions
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.formats.pandas_free import int64_range, int64_scalar

#: Shortest pause between two batches (seconds): batching keeps high rates cheap.
BATCH_INTERVAL = 0.05


class ImpulseOperator(SourceOperator):
    """Generates ``counter``/``subtask_index`` rows at ``event_rate`` per second.

    The count so far is kept in ``context.state['counter']``: with a state directory the
    session saves and restores it, so a restarted table resumes where it stopped; without
    one it counts from 0 again.
    """

    def __init__(self, config: TableConfig, context: SourceContext) -> None:
        super().__init__(config, context)
        options = config.connector_options
        if not isinstance(options, ImpulseOptions):
            raise FatalSourceError(f"table '{config.name}' has no impulse options")
        if options.event_rate <= 0:
            raise FatalSourceError("event_rate must be greater than 0")
        self.options = options
        self.schema = config.output_schema()

    async def run(self, emit: Emit) -> None:
        clock = self.context.clock
        rate = self.options.event_rate
        limit = self.options.message_count
        emitted = int.from_bytes(self.context.state.get("counter", b""), "big")
        start = clock.monotonic() - emitted / rate
        start_ns = clock.time_ns()
        self.report(SourceState.RUNNING)
        while limit is None or emitted < limit:
            elapsed = clock.monotonic() - start
            # The first row is due at once, row n at n / rate seconds (the epsilon absorbs
            # float drift in sums of sleep intervals).
            due = int(elapsed * rate + 1e-6) + 1
            if limit is not None:
                due = min(due, limit)
            if due > emitted:
                batch = self._batch(emitted, due, start_ns)
                emitted = due
                self.context.state["counter"] = emitted.to_bytes(8, "big")
                self.status.rows += batch.num_rows
                self.status.polls += 1
                self.status.last_poll_at_ns = clock.time_ns()
                emit(batch)
            if limit is not None and emitted >= limit:
                break
            until_next = (emitted / rate) - (clock.monotonic() - start)
            await clock.sleep(max(BATCH_INTERVAL, until_next))

    def _batch(self, first: int, end: int, start_ns: int) -> pa.RecordBatch:
        """Rows ``first`` .. ``end - 1`` as one batch of :attr:`schema`."""
        n = end - first
        counter = int64_range(first, end)
        interval = self.options.event_time_interval_micros
        if interval is not None:
            import pyarrow.compute as pc

            offsets = pc.multiply(counter, int64_scalar(interval * 1_000))
            times = pc.add(offsets, int64_scalar(start_ns))
        else:
            times = pa.repeat(int64_scalar(self.context.clock.time_ns()), n)
        columns = {
            "counter": counter,
            "subtask_index": pa.repeat(int64_scalar(0), n),
            TIMESTAMP_COLUMN: times.view(pa.timestamp("ns")),
        }
        arrays = []
        for field in self.schema:
            values = columns.get(field.name)
            if values is None:
                arrays.append(pa.nulls(n, field.type))
            elif values.type == field.type:  # (the default schema: nothing to cast)
                arrays.append(values)
            else:
                arrays.append(values.cast(field.type))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)
