"""Decoders that do not parse: ``raw_string``, ``raw_bytes`` and ``json`` + ``json.unstructured``.

One row per framed message, in a single column ``value``: the message bytes (``raw_bytes``), or
their text decoded as lossy UTF-8 (``raw_string`` and unstructured JSON, where invalid bytes
become U+FFFD and no JSON validation happens, as in Arroyo).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from arroyo_lite.config import TableConfig
from arroyo_lite.errors import ConnectorError
from arroyo_lite.formats.framing import split_messages
from arroyo_lite.formats.output import OutputBuilder
from arroyo_lite.formats.result import Decoder, DecodeResult, check_records


def lossy_utf8(messages: pa.Array[Any]) -> pa.Array[Any]:
    """``messages`` as text; invalid UTF-8 sequences become U+FFFD (Rust's ``from_utf8_lossy``).

    Valid input (the common case) is a zero-copy validating cast; only a batch with invalid
    bytes is decoded message by message.
    """
    try:
        return messages.cast(pa.string())
    except pa.ArrowInvalid:
        return pa.array(
            [(m or b"").decode("utf-8", "replace") for m in messages.to_pylist()], pa.string()
        )


class RawDecoder(Decoder):
    """One ``value`` per message; ``text`` chooses lossy UTF-8 text over the raw bytes."""

    def __init__(self, config: TableConfig, *, text: bool) -> None:
        self.config = config
        self.text = text
        self.output = OutputBuilder(config)
        self.runs_queries = self.output.runs_queries
        self.schema = config.decode_schema()
        # The front end checks raw_string/unstructured at plan time (as Arroyo); Arroyo checks
        # raw_bytes only at run time, with a panic. Refuse a bad shape here with a clear error.
        fmt = config.format.format.value if config.format else "raw"
        wanted = pa.string() if text else pa.binary()
        if self.schema.names != ["value"] or self.schema.field("value").type != wanted:
            kind = "TEXT" if text else "BYTEA"
            raise ConnectorError(
                f"{fmt} format requires a schema with a single field called `value` "
                f"of type {kind}"
            )
        self.value_type = wanted

    def decode_body(self, body: bytes, received_at_ns: int) -> DecodeResult:
        messages = split_messages(body, self.config.framing)
        check_records(len(messages), self.config)
        values = lossy_utf8(messages) if self.text else messages
        batch = pa.RecordBatch.from_arrays([values.cast(self.value_type)], schema=self.schema)
        return self.output.finish(batch, received_at_ns)
