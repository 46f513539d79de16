"""Any bytes at all: a decoder returns a result or raises FatalSourceError, nothing else."""

from __future__ import annotations

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arroyo_lite.config import BadData, TableConfig
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.formats import make_decoder
from tests.support.format_tables import col, raw_bytes, raw_string, table

JSONISH = st.lists(
    st.sampled_from(
        [b"{", b"}", b"[", b"]", b",", b":", b'"id"', b'"j"', b'"t"', b"1", b"-2.5e3", b'"x"',
         b"null", b"true", b"\n", b" ", b'"2024-01-01T00:00:00Z"', b"\xff", b'"\\u00e9"', b"},{"]
    ),
    max_size=40,
).map(b"".join)
BODIES = st.one_of(st.binary(max_size=200), JSONISH)


def configs(bad_data: BadData) -> list[TableConfig]:
    structured = (
        col("id", pa.int64(), nullable=False),
        col("j", pa.string(), is_json=True),
        col("t", pa.timestamp("ms")),
        col("d", pa.decimal128(6, 2)),
        col("s", pa.struct([("a", pa.list_(pa.float64()))])),
    )
    return [
        table(*structured, bad_data=bad_data),
        table(*structured, newline=True, bad_data=bad_data),
        table(*structured, newline=True, max_line_length=7, bad_data=bad_data),
        raw_string(newline=True, bad_data=bad_data),
        raw_bytes(bad_data=bad_data),
    ]


DECODERS = [make_decoder(c) for b in BadData for c in configs(b)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(BODIES)
def test_any_body_decodes_or_fails_cleanly(body: bytes) -> None:
    # Pad some bodies past the small-body threshold so the native path sees them too.
    for data in (body, body + b" " * 1100):
        for decoder in DECODERS:
            try:
                result = decoder.decode(data, 1)
            except FatalSourceError as e:
                assert len(e.message) <= 500
                continue
            if result.batch is not None:
                assert result.batch.num_rows == result.rows
            else:
                assert result.rows == 0
