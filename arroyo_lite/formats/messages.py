"""Many small messages (SSE events, WebSocket messages) -> one ``DecodeResult``.

Arroyo deserializes each event or message as its own buffer (framing applies within it). Doing
that one message at a time in Python would cost a decoder call per message; instead
:class:`MessageDecoder` decodes a whole batch in as few decoder calls as possible, with the
same result as message-by-message decoding:

* with the table's ``framing = 'newline'``: messages are joined with ``\\n`` (one final ``\\n``
  of each message removed first, since framing yields no line after it) and decoded as one
  body with the table's own decoder;
* without framing: consecutive messages holding no ``\\n`` are joined with ``\\n`` and decoded
  as one newline-framed body (each line is then exactly one message); a message with a ``\\n``
  in it (multi-line SSE data, pretty-printed JSON) is decoded on its own, unframed.

An empty message gives no row under any format (as an empty body does). Rows keep the order of
the messages. Thread-safe like the decoders it wraps; never blocks on I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import pyarrow as pa

from arroyo_lite.config import FramingSpec, TableConfig
from arroyo_lite.formats.result import MAX_DETAILS, Decoder, DecodeResult


class MessageDecoder:
    """Decodes a sequence of messages for one table (see the module docstring)."""

    def __init__(self, config: TableConfig) -> None:
        from arroyo_lite.formats import make_decoder

        self.schema = config.output_schema()
        self._framed = config.framing is not None
        self.single: Decoder = make_decoder(config)
        self.joined: Decoder = (
            self.single if self._framed else make_decoder(replace(config, framing=FramingSpec()))
        )
        #: Whether :meth:`decode` may run DuckDB queries (then it must run off the event loop).
        self.runs_queries = self.single.runs_queries or self.joined.runs_queries

    def decode(self, messages: Sequence[bytes], received_at_ns: int) -> DecodeResult:
        """Decode ``messages`` in order; raises ``FatalSourceError`` as the decoders do."""
        if self._framed:
            lines = [m[:-1] if m.endswith(b"\n") else m for m in messages if m]
            return self.single.decode(b"\n".join(lines), received_at_ns) if lines else _EMPTY
        results: list[DecodeResult] = []
        run: list[bytes] = []
        for message in messages:
            if not message:
                continue
            if b"\n" in message:
                if run:
                    results.append(self.joined.decode(b"\n".join(run), received_at_ns))
                    run = []
                results.append(self.single.decode(message, received_at_ns))
            else:
                run.append(message)
        if run:
            results.append(self.joined.decode(b"\n".join(run), received_at_ns))
        return merge(results, self.schema)


_EMPTY = DecodeResult(None, 0)


def merge(results: list[DecodeResult], schema: pa.Schema) -> DecodeResult:
    """One result for several, in order: batches concatenated, drops summed, details capped."""
    if not results:
        return _EMPTY
    if len(results) == 1:
        return results[0]
    batches = [r.batch for r in results if r.batch is not None and r.batch.num_rows]
    batch = None
    if batches:
        batch = (
            batches[0]
            if len(batches) == 1
            else (pa.Table.from_batches(batches, schema=schema).combine_chunks().to_batches()[0])
        )
    dropped = sum(r.dropped for r in results)
    errors: tuple[str, ...] = ()
    for r in results:
        if not r.errors:
            continue
        if not errors:
            errors = r.errors
        else:
            errors += r.errors[1:]  # one summary line (the first), then the details
    return DecodeResult(batch, sum(r.rows for r in results), dropped, errors[: MAX_DETAILS + 1])
