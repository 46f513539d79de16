"""``format = 'debezium_json'`` sources: Debezium change envelopes -> change batches.

Each message is one Debezium envelope, ``{"before": {...}, "after": {...}, "op": "c"}`` (other
keys such as ``source`` and ``ts_ms`` are ignored). The envelope is decoded as structured JSON
(``before`` and ``after`` as structs of the table's columns, with the ``json`` rules), then
*unrolled* as Arroyo's ``DebeziumUnrollingExec`` does (``crates/arroyo-planner/src/physical.rs``):

=========== =========================================================================
``c``, ``r`` ``after`` added
``u``        ``before`` retracted, then ``after`` added
``d``        ``before`` retracted
=========== =========================================================================

The result is a change batch (:mod:`arroyo_lite.query.changelog`'s convention: the
``_retract`` column, ``true`` for a retraction), rows in the order of the envelopes. An
envelope with another ``op``, or without the row its ``op`` needs, is bad data (``bad_data``
decides). Columnar: Arrow ``take`` of the two structs, no Python per row.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from arroyo_lite.config import (
    RETRACT_COLUMN,
    BadData,
    ColumnSpec,
    Format,
    FormatSpec,
    TableConfig,
)
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.formats.json_decoder import JsonDecoder
from arroyo_lite.formats.output import OutputBuilder
from arroyo_lite.formats.result import Decoder, DecodeResult

#: Summary line of envelopes dropped under ``bad_data = 'drop'``.
BAD_ENVELOPE = "Some Debezium records could not be unrolled"
_ADDS = pa.array(["c", "r", "u"])
_RETRACTS = pa.array(["u", "d"])


def envelope_config(config: TableConfig) -> TableConfig:
    """The table an envelope decodes as: ``before`` and ``after`` structs of ``config``'s
    physical columns, and ``op`` (no event time: that is taken from the unrolled rows)."""
    row = pa.struct([c.arrow_field() for c in config.physical_columns])
    columns = (
        ColumnSpec("before", row, "STRUCT"),
        ColumnSpec("after", row, "STRUCT"),
        ColumnSpec("op", pa.string(), "TEXT"),
    )
    return dataclasses.replace(
        config,
        columns=columns,
        format=FormatSpec(Format.JSON),
        watermark=None,
        event_time_column=None,
    )


class DebeziumDecoder(Decoder):
    """Debezium JSON envelopes -> change batches of the table's columns (module docstring)."""

    def __init__(self, config: TableConfig) -> None:
        self.config = config
        self.envelopes = JsonDecoder(envelope_config(config))
        self.output = OutputBuilder(config)
        self.runs_queries = self.envelopes.runs_queries or self.output.runs_queries
        self._drop = config.bad_data is BadData.DROP

    def decode_body(self, body: bytes, received_at_ns: int) -> DecodeResult:
        decoded = self.envelopes.decode(body, received_at_ns)
        if decoded.batch is None:
            return DecodeResult(None, 0, decoded.dropped, decoded.errors)
        batch = decoded.batch
        op: Any = batch.column("op")
        before, after = batch.column("before"), batch.column("after")
        adds: Any = pc.and_(pc.is_in(op, value_set=_ADDS), pc.is_valid(after))
        retracts: Any = pc.and_(pc.is_in(op, value_set=_RETRACTS), pc.is_valid(before))
        # An envelope is good when its op is known and has the rows it needs.
        needed = pc.if_else(
            pc.equal(op, pa.scalar("u")), pc.and_(adds, retracts), pc.or_(adds, retracts)
        )
        good: Any = pc.fill_null(needed, False)
        bad = batch.num_rows - pc.sum(good.cast(pa.int64())).as_py()
        dropped, errors = decoded.dropped, decoded.errors
        if bad:
            detail = f"{bad} record(s) with an unknown 'op' or without its before/after row"
            if not self._drop:
                raise FatalSourceError(f"bad data: {detail}")
            dropped += bad
            errors = (errors or (BAD_ENVELOPE,)) + (detail,)
        index = pa.array(range(batch.num_rows), pa.int64())
        gone = pc.filter(index, pc.and_(good, pc.fill_null(retracts, False)))
        new = pc.filter(index, pc.and_(good, pc.fill_null(adds, False)))
        # Envelope i gives its retraction (at 2i) before its addition (at 2i + 1).
        order = pc.sort_indices(
            pa.concat_arrays([pc.multiply(gone, 2), pc.add(pc.multiply(new, 2), 1)])
        )
        rows: Any = pa.concat_arrays([before.take(gone), after.take(new)]).take(order)
        flags = pa.concat_arrays(
            [pa.repeat(pa.scalar(True), len(gone)), pa.repeat(pa.scalar(False), len(new))]
        ).take(order)
        physical = pa.RecordBatch.from_arrays(
            [*rows.flatten(), flags],
            names=[*self.config.decode_schema().names, RETRACT_COLUMN],
        )
        return self.output.finish(physical, received_at_ns, dropped=dropped, errors=errors)
