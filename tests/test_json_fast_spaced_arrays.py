"""A top-level array whose elements are separated by ``", "`` (Python's ``json.dumps``
default, as in ``benchmarks/paginated.py``'s server) is cut into lines for pyarrow's reader
(one native read instead of a failed cut and a second read of the whole array; the speed is
``benchmarks/paginated.py``'s), and gives exactly what the exact path gives, also when a
string or a nested array holds ``}, {``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from arroyo_lite.formats import make_decoder
from arroyo_lite.sql import compile_sql

COLUMNS = "id BIGINT, name TEXT, tags TEXT[], inner STRUCT<a BIGINT>"


def decoder() -> Any:
    [config] = compile_sql(
        f"CREATE TABLE t ({COLUMNS}) WITH (connector = 'polling_http', "
        "endpoint = 'http://127.0.0.1:1/', format = 'json');",
        env={},
    ).tables
    return make_decoder(config)


RECORDS = [
    {"id": i, "name": f"item-{i}", "tags": ["a", "b"], "inner": {"a": i}} for i in range(200)
]


@pytest.mark.parametrize(
    "records",
    [
        RECORDS,
        [*RECORDS[:5], {"id": 5, "name": "a}, {b", "tags": ["}, {"], "inner": None}, *RECORDS[6:]],
    ],
    ids=["plain", "separator-in-strings"],
)
def test_spaced_arrays_read_natively_as_the_exact_path_reads_them(records: Any) -> None:
    body = json.dumps(records).encode()
    assert b"}, {" in body and len(body) > 1024
    fast = decoder()
    got = fast.decode(body, 7)
    want = decoder()._decode_exactly(body, 7)
    assert got.batch is not None and got.batch.equals(want.batch)
    assert fast.fast_bodies == 1 and fast.slow_bodies == 0
