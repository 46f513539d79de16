"""Assembly of the emitted batch: physical columns, virtual columns, then ``_timestamp``.

Every format decoder ends here. Given the decoded physical columns of the good records, this
module computes the virtual columns, picks each row's ``_timestamp`` (the arrival time, or the
event-time column when the table has one), applies ``bad_data`` to rows whose virtual columns
or event time cannot be computed, and lays the columns out as ``TableConfig.output_schema()``.
"""

from __future__ import annotations

from typing import Any

# (pyarrow.compute is imported in the functions that call a kernel: its import, ~40 ms,
# would otherwise come before a run's first row.)
import pyarrow as pa

from arroyo_lite.config import TIMESTAMP_TYPE, BadData, TableConfig
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.formats.pandas_free import repeat_int64
from arroyo_lite.formats.result import MAX_DETAILS, DecodeResult, bounded
from arroyo_lite.formats.virtual import VirtualColumns

#: Summary line for rows dropped after decoding (virtual column or event time failures).
PROCESSING_SUMMARY = "Some records could not be processed"


class OutputBuilder:
    """Turns decoded physical columns into the table's output batches (thread-safe)."""

    def __init__(self, config: TableConfig) -> None:
        self.config = config
        self.schema = config.output_schema()
        self.virtual = VirtualColumns(config.virtual_columns)
        self._virtual_names = [c.name for c in config.virtual_columns]
        #: Whether :meth:`finish` runs DuckDB queries (it does for virtual columns).
        self.runs_queries = bool(self._virtual_names)
        self._drop = config.bad_data is BadData.DROP

    def finish(
        self,
        physical: pa.RecordBatch,
        received_at_ns: int,
        *,
        dropped: int = 0,
        errors: tuple[str, ...] = (),
    ) -> DecodeResult:
        """The result for ``physical`` (the good records, schema ``decode_schema()``).

        ``dropped`` and ``errors`` carry what the format decoder already dropped. Raises
        :class:`FatalSourceError` for a row whose virtual column or event time fails when
        ``bad_data`` is ``fail``.
        """
        if physical.num_rows == 0:
            return DecodeResult(None, 0, dropped, errors)
        details: list[str] = []
        virtual: list[pa.Array[Any]] = []
        if self._virtual_names:
            physical, virtual, lost = self._compute_virtual(physical)
            dropped += lost[0]
            details.extend(lost[1])
        columns = dict(zip(physical.schema.names, physical.columns, strict=True))
        columns.update(zip(self._virtual_names, virtual, strict=True))
        n = physical.num_rows
        timestamps: pa.Array[Any] = repeat_int64(received_at_ns, n, TIMESTAMP_TYPE)
        event = self.config.event_time_column
        if event is not None and n:
            values = _event_times(columns[event])
            nulls = values.null_count
            if nulls:
                detail = f"field '{event}': event time is null or out of range ({nulls} rows)"
                if not self._drop:
                    raise FatalSourceError(bounded(f"bad data: {detail}"))
                import pyarrow.compute as pc

                keep = pc.is_valid(values)
                columns = {k: pc.filter(v, keep) for k, v in columns.items()}
                values = pc.filter(values, keep)
                dropped += nulls
                details.append(detail)
                n -= nulls
            timestamps = values
        if details:
            errors = errors or (PROCESSING_SUMMARY,)
            errors = (errors + tuple(details))[: MAX_DETAILS + 1]
        if n == 0:
            return DecodeResult(None, 0, dropped, errors)
        # Metadata columns are the connector's to fill: NULL here.
        arrays = [
            columns[name] if name in columns else pa.nulls(n, self.schema.field(name).type)
            for name in self.schema.names[:-1]
        ]
        arrays.append(timestamps)
        batch = pa.RecordBatch.from_arrays(arrays, schema=self.schema)
        return DecodeResult(batch, n, dropped, errors)

    def _compute_virtual(
        self, physical: pa.RecordBatch
    ) -> tuple[pa.RecordBatch, list[pa.Array[Any]], tuple[int, list[str]]]:
        """Virtual arrays for ``physical``; under ``drop``, rows that fail are removed."""
        try:
            return physical, self.virtual.compute(physical), (0, [])
        except ValueError as e:
            if not self._drop:
                raise FatalSourceError(str(e)) from e
            first_error = str(e)
        # Taken only when a batch has a row DuckDB rejects under 'drop': bisect the batch to
        # find the bad rows, with about (bad rows x log2(rows)) queries instead of one per row.
        bad: list[int] = []
        self._find_bad_rows(physical, 0, physical.num_rows, bad, known_bad=True)
        keep = [True] * physical.num_rows
        for row in bad:
            keep[row] = False
        good = physical.filter(pa.array(keep, pa.bool_()))
        lost = physical.num_rows - good.num_rows
        virtual = self.virtual.compute(good) if good.num_rows else [
            pa.array([], c.data_type) for c in self.config.virtual_columns
        ]
        return good, virtual, (lost, [first_error] if lost else [])

    def _find_bad_rows(
        self, batch: pa.RecordBatch, start: int, length: int, out: list[int], *, known_bad: bool
    ) -> None:
        """Append to ``out`` the rows in ``[start, start + length)`` whose virtual columns fail."""
        if not known_bad:
            try:
                self.virtual.compute(batch.slice(start, length))
                return
            except ValueError:
                pass
        if length == 1:
            out.append(start)
            return
        half = length // 2
        self._find_bad_rows(batch, start, half, out, known_bad=False)
        self._find_bad_rows(batch, start + half, length - half, out, known_bad=False)


_NS_PER_UNIT = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}


def _event_times(column: Any) -> Any:
    """``column`` (a timestamp of any unit) in nanoseconds; NULL where that overflows."""
    import pyarrow.compute as pc

    unit = column.type.unit
    if unit == "ns":
        return column.cast(TIMESTAMP_TYPE)
    # A TIMESTAMP(0/3/6) far from 1970 may not fit in nanoseconds: such rows are bad data.
    raw = column.cast(pa.int64())
    limit = (2**63 - 1) // _NS_PER_UNIT[unit]
    fits = pc.and_(
        pc.less_equal(raw, pa.scalar(limit, pa.int64())),
        pc.greater_equal(raw, pa.scalar(-limit, pa.int64())),
    )
    return pc.if_else(fits, raw, None).cast(column.type).cast(TIMESTAMP_TYPE)
