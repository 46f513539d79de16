"""Structured ``json``: the decoder that picks the fast path or the exact one per body.

Every body of :data:`SMALL_BODY` bytes or more first goes to pyarrow's native reader
(:mod:`~arroyo_lite.formats.json_fast`). When that succeeds and no NOT NULL column holds a
null, its batch is the answer. Otherwise the
body is decoded again by the exact path (:mod:`~arroyo_lite.formats.json_slow`), which finds
the bad records and applies ``bad_data``:

* ``fail``: :class:`FatalSourceError` with Arroyo's wording, ``invalid JSON: ...`` for a
  message that does not parse, ``JSON does not match schema: ...`` for a record that does not
  fit the columns;
* ``drop``: the good records are kept; ``dropped`` counts the bad ones and ``errors`` starts
  with ``Some records could not be deserialized from JSON`` followed by the first details.

With a record path (:mod:`~arroyo_lite.formats.records`), the records are what the path
selects in each body: pyarrow reads the records array found by a byte search, in pieces on
several threads (:mod:`~arroyo_lite.formats.json_pieces`), or else the body once with the
records' schema nested along the path (no Python per record either way); the exact path
parses the body, selects, and decodes what it selected. A path that selects nothing gives
no row; one that selects a scalar is bad data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import orjson

# (pyarrow.compute is imported in the functions that call a kernel: its import, ~40 ms,
# would otherwise come before a run's first row.)
import pyarrow as pa

from arroyo_lite.config import BadData, TableConfig
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.formats.framing import split_messages
from arroyo_lite.formats.json_fast import FastJsonReader
from arroyo_lite.formats.json_slow import SlowJsonDecoder
from arroyo_lite.formats.output import OutputBuilder
from arroyo_lite.formats.pandas_free import array_from_values, empty_batch
from arroyo_lite.formats.records import RecordPath, json_kind_name
from arroyo_lite.formats.result import (
    MAX_DETAILS,
    Decoder,
    DecodeResult,
    bounded,
    check_records,
)

#: Bodies shorter than this go straight to the exact path: for a few records, orjson costs
#: less than setting up pyarrow's reader (measured: ~50 us against ~300 us per tiny body).
SMALL_BODY = 1024
#: Below this many lines, a newline-framed range the native path refused is decoded exactly.
BISECT_LINES = 64
#: Arroyo's summary line for records dropped under ``bad_data = 'drop'``.
DROP_SUMMARY = "Some records could not be deserialized from JSON"


class JsonDecoder(Decoder):
    """Structured JSON (``format = 'json'`` without ``json.unstructured``)."""

    def __init__(self, config: TableConfig, records: RecordPath | None = None) -> None:
        self.config = config
        #: Where the records are in each body (``None``: the body is the records).
        self.records = records
        self.fast = FastJsonReader(config, records=records)
        self.slow = SlowJsonDecoder(config)
        self.output = OutputBuilder(config)
        # JSON columns are extracted by DuckDB on the native path; virtual columns always.
        self.runs_queries = self.output.runs_queries or self.fast.runs_queries
        self._drop = config.bad_data is BadData.DROP
        self._not_null = [f.name for f in config.decode_schema() if not f.nullable]
        #: Statistics for benchmarks and tests: bodies decoded natively, bodies that needed the
        #: exact path after all, and small bodies sent straight to it (increments are not
        #: atomic across threads, which only blurs the figures).
        self.fast_bodies = 0
        self.slow_bodies = 0
        self.small_bodies = 0
        #: :mod:`~arroyo_lite.formats.together`'s plan for this decoder's batches, made
        #: there on first use (kept here: a flush finds it without a dictionary lookup).
        self.together: object | None = None

    def decode_body(self, body: bytes, received_at_ns: int) -> DecodeResult:
        if not body:
            return DecodeResult(None, 0)
        if len(body) < SMALL_BODY:
            self.small_bodies += 1
            return self._decode_exactly(body, received_at_ns)
        self._check_lines(body)
        result = self._decode_fast(body, received_at_ns)
        if result is not None:
            self.fast_bodies += 1
            return result
        self.slow_bodies += 1
        if self.config.framing is not None:
            return self._decode_by_halves(body, received_at_ns)
        return self._decode_exactly(body, received_at_ns)

    def decode_pages(
        self, bodies: Sequence[bytes], received_at_ns: Sequence[int]
    ) -> list[DecodeResult | FatalSourceError]:
        """As :meth:`Decoder.decode_pages`; bodies that are each an array of records are read
        by one native read (:meth:`FastJsonReader.read_arrays`), each body's rows finished
        with its own arrival time. A body the joined read does not cover (a small one, one
        with a null in a NOT NULL column, too many records) is decoded by itself, and when
        the joined read fails every body is: the results are :meth:`decode`'s either way."""
        if self.records is not None or self.config.framing is not None:
            return super().decode_pages(bodies, received_at_ns)
        joined = [i for i, body in enumerate(bodies) if len(body) >= SMALL_BODY]
        try:
            read = self.fast.read_arrays([bodies[i] for i in joined]) if joined else None
        except Exception:  # the contract: decode() below reports whatever went wrong
            read = None
        if read is None:
            return super().decode_pages(bodies, received_at_ns)
        batch, counts = read
        parts: dict[int, pa.RecordBatch] = {}
        offset = 0
        for index, count in zip(joined, counts, strict=True):
            parts[index] = batch.slice(offset, count)
            offset += count
        results: list[DecodeResult | FatalSourceError] = []
        limit = self.config.max_records_per_body
        for index, (body, at) in enumerate(zip(bodies, received_at_ns, strict=True)):
            part = parts.get(index)
            try:
                if part is None or part.num_rows > limit or self._has_nulls(part):
                    results.append(self.decode(body, at))
                    continue
                try:
                    results.append(self.output.finish(part, at))
                except FatalSourceError:
                    raise
                except Exception:
                    results.append(self.decode(body, at))
                    continue
                self.fast_bodies += 1
            except FatalSourceError as e:
                results.append(e)
        return results

    def _check_lines(self, body: bytes) -> None:
        """Refuse a newline-framed body with more non-blank lines than records allowed,
        before decoding any of it (each such line is at least one record or bad record,
        except ``[]``; counted in Arrow, only for bodies with enough newlines to matter)."""
        import pyarrow.compute as pc

        limit = self.config.max_records_per_body
        if self.config.framing is None or body.count(b"\n") < limit:
            return
        lines = split_messages(body, self.config.framing)
        blank: Any = pc.match_substring_regex(lines, r"^[ \t\r]*$")
        check_records(len(lines) - int(pc.sum(blank.cast(pa.int64())).as_py() or 0), self.config)

    def _decode_fast(self, body: bytes, received_at_ns: int) -> DecodeResult | None:
        """The native path's result, or ``None`` when the exact path must decide."""
        if self.records is not None:
            batch = self.fast.read_records(body)
            if batch is None or self._has_nulls(batch):
                return None
            check_records(batch.num_rows, self.config)
            return self.output.finish(batch, received_at_ns)
        batch = self.fast.read(self._ndjson(body), whole_body=self.config.framing is None)
        if batch is None or self._has_nulls(batch):
            return None
        check_records(batch.num_rows, self.config)
        return self.output.finish(batch, received_at_ns)

    def _ndjson(self, body: bytes) -> bytes:
        """The body as the fast reader should see it: framing applied where it changes bytes."""
        framing = self.config.framing
        if framing is None or framing.max_line_length is None:
            return body
        return _join_lines(split_messages(body, framing))

    def _decode_by_halves(self, body: bytes, received_at_ns: int) -> DecodeResult:
        """A newline-framed body the native path refused, decoded by bisecting its lines.

        Halves that pyarrow reads are kept as they are; halves it refuses are split again,
        down to :data:`BISECT_LINES` lines, which the exact path decodes. A few bad lines in a
        big NDJSON body so cost a few native reads, not an exact decode of every line. Lines
        are visited in order, so under ``fail`` the first bad record is the one reported.
        """
        assert self.config.framing is not None
        messages = split_messages(body, self.config.framing)
        batches: list[pa.RecordBatch] = []
        invalid: list[str] = []
        mismatches: list[str] = []
        records, limit = 0, self.config.max_records_per_body
        middle = len(messages) // 2
        # A stack of line ranges; the left half is pushed last so it is decoded first.
        pending = [(middle, len(messages)), (0, middle)]
        while pending:
            start, end = pending.pop()
            if end - start > BISECT_LINES:
                chunk = _join_lines(messages.slice(start, end - start))
                batch = self.fast.read(chunk, whole_body=False)
                if batch is not None and not self._has_nulls(batch):
                    batches.append(batch)
                    records += batch.num_rows
                    check_records(records, self.config)
                    continue
                middle = (start + end) // 2
                pending += [(middle, end), (start, middle)]
                continue
            lines: list[Any] = messages.slice(start, end - start).to_pylist()
            result = self.slow.decode(lines, stop_at_first=not self._drop, limit=limit - records)
            records += result.batch.num_rows + result.bad
            batches.append(result.batch)
            invalid += result.invalid_json
            mismatches += result.mismatches
            if result.bad and not self._drop:
                break
        table = pa.Table.from_batches(batches, schema=self.slow.schema).combine_chunks()
        combined = table.to_batches()
        good = combined[0] if combined else empty_batch(self.slow.schema)
        return self._result(good, invalid, mismatches, received_at_ns)

    def _has_nulls(self, batch: pa.RecordBatch) -> bool:
        return any(batch.column(name).null_count for name in self._not_null)

    def _decode_exactly(self, body: bytes, received_at_ns: int) -> DecodeResult:
        framing = self.config.framing
        if self.records is not None:
            return self._decode_records_exactly(body, received_at_ns)
        messages: list[Any] = (
            [body] if framing is None else split_messages(body, framing).to_pylist()
        )
        result = self.slow.decode(
            messages, stop_at_first=not self._drop, limit=self.config.max_records_per_body
        )
        return self._result(result.batch, result.invalid_json, result.mismatches, received_at_ns)

    def _decode_records_exactly(self, body: bytes, received_at_ns: int) -> DecodeResult:
        """Parse the body, select the records, decode them (bad data as everywhere)."""
        assert self.records is not None
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError:
            # Not one JSON value: the exact decoder says why, in its words.
            return self._decode_messages([body], received_at_ns)
        kind, selected = self.records.select(value)
        if kind == "none":
            return DecodeResult(None, 0)
        if kind == "bad":
            problem = (
                f"records.path '{self.records.text}' selects {json_kind_name(selected)}, "
                "not an array or an object"
            )
            return self._result(self.slow.empty(), [], [problem], received_at_ns)
        return self._decode_messages([orjson.dumps(selected)], received_at_ns)

    def _decode_messages(self, messages: list[Any], received_at_ns: int) -> DecodeResult:
        result = self.slow.decode(
            messages, stop_at_first=not self._drop, limit=self.config.max_records_per_body
        )
        return self._result(result.batch, result.invalid_json, result.mismatches, received_at_ns)

    def _result(
        self,
        good: pa.RecordBatch,
        invalid: list[str],
        mismatches: list[str],
        received_at_ns: int,
    ) -> DecodeResult:
        """Apply ``bad_data`` to what the exact path found, then finish the batch."""
        bad = len(invalid) + len(mismatches)
        if bad and not self._drop:
            if invalid:
                raise FatalSourceError(bounded(f"invalid JSON: {invalid[0]}"))
            raise FatalSourceError(bounded(f"JSON does not match schema: {mismatches[0]}"))
        errors: tuple[str, ...] = ()
        if bad:
            details = [f"invalid JSON: {e}" for e in invalid] + mismatches
            errors = (DROP_SUMMARY, *details[:MAX_DETAILS])
        return self.output.finish(good, received_at_ns, dropped=bad, errors=errors)


#: The separator as an Arrow scalar (a Python ``bytes`` argument would be converted by the
#: path that imports pandas).
_NEWLINE = array_from_values([b"\n"], pa.binary())[0]


def _join_lines(messages: Any) -> bytes:
    """Messages joined with newlines: NDJSON text for the native reader."""
    import pyarrow.compute as pc

    joined: Any = pc.binary_join(
        pa.ListArray.from_arrays(
            cast(pa.Int32Array, array_from_values([0, len(messages)], pa.int32())), messages
        ),
        _NEWLINE,
    )
    return bytes(joined[0].as_py() or b"")
