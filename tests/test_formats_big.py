"""Big bodies, concurrent decoding from threads, and the ingest benchmark's smoke run."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pyarrow as pa
import pytest

from arroyo_lite.config import BadData
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.formats import make_decoder
from arroyo_lite.formats.json_decoder import JsonDecoder
from tests.support.format_tables import col, raw_string, table

NOW = 1_700_000_000_000_000_000
COLUMNS = (col("id", pa.int64(), nullable=False), col("name", pa.string()), col("v", pa.float64()))


def big_rows(n: int) -> list[bytes]:
    return [
        json.dumps({"id": i, "name": f"n{i}", "v": i / 4, "pad": "x" * 40}).encode()
        for i in range(n)
    ]


def test_five_mib_array_decodes_natively() -> None:
    rows = big_rows(60_000)
    body = b"[" + b",".join(rows) + b"]"
    assert len(body) > 5 * 1024 * 1024
    decoder = make_decoder(table(*COLUMNS))
    result = decoder.decode(body, NOW)
    assert result.rows == 60_000
    assert result.batch is not None
    assert result.batch.column("id").to_pylist() == list(range(60_000))
    assert isinstance(decoder, JsonDecoder) and decoder.fast_bodies == 1


def test_one_bad_row_in_a_big_ndjson_body_is_dropped_alone() -> None:
    rows = big_rows(20_000)
    rows[12_345] = b'{"id": "not a number"}'
    decoder = make_decoder(table(*COLUMNS, newline=True, bad_data=BadData.DROP))
    result = decoder.decode(b"\n".join(rows), NOW)
    assert result.rows == 19_999 and result.dropped == 1
    assert result.batch is not None
    ids = result.batch.column("id").to_pylist()
    assert 12_345 not in ids and len(ids) == 19_999


def test_big_raw_string_body_with_long_lines() -> None:
    body = b"\n".join(b"%d:" % i + b"y" * 1000 for i in range(5000))
    result = make_decoder(raw_string(newline=True, max_line_length=10)).decode(body, NOW)
    assert result.batch is not None and result.rows == 5000
    assert result.batch.column("value")[4999].as_py() == "4999:yyyyy"


def test_decoding_from_many_threads_gives_the_same_answers() -> None:
    config = table(
        *COLUMNS,
        col("tenth", pa.float64(), generated="v / 10"),
        newline=True,
        bad_data=BadData.DROP,
    )
    decoder = make_decoder(config)
    bodies = []
    for k in range(16):
        rows = big_rows(500 + k)
        if k % 3 == 0:
            rows[k] = b"{broken"  # some bodies take the exact path
        bodies.append(b"\n".join(rows))
    expected = [decoder.decode(b, NOW + k) for k, b in enumerate(bodies)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = list(pool.map(lambda kb: decoder.decode(kb[1], NOW + kb[0]), enumerate(bodies)))
    for want, have in zip(expected, got, strict=True):
        assert have.rows == want.rows and have.dropped == want.dropped
        assert have.batch is not None and want.batch is not None
        assert have.batch.equals(want.batch)


def test_ingest_benchmark_quick_run() -> None:
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "ingest.py"
    spec = importlib.util.spec_from_file_location("ingest_benchmark", path)
    assert spec is not None and spec.loader is not None
    ingest = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = ingest  # dataclasses look their module up while being built
    spec.loader.exec_module(ingest)
    results = asyncio.run(ingest.run(quick=True, rounds=1))
    assert {r["body"] for r in results} == {
        "array_64KiB", "ndjson_64KiB", "array_256KiB", "ndjson_256KiB"
    }
    for r in results:
        assert r["rows"] > 0 and r["ingest_MBps"] > 0 and r["read_json_MBps"] > 0
        assert r["fast_path"]
    ingest.print_table(results)


def test_bisected_ndjson_matches_the_exact_path() -> None:
    rows = big_rows(10_000)
    rows[3] = b"{broken"
    rows[5_000] = b'{"id": "x"}'
    rows[9_998] = b'{"name": "no id"}'
    body = b"\n".join(rows)
    decoder = make_decoder(table(*COLUMNS, newline=True, bad_data=BadData.DROP))
    assert isinstance(decoder, JsonDecoder)
    result = decoder.decode(body, NOW)
    exact = decoder._decode_exactly(body, NOW)
    assert result.dropped == exact.dropped == 3
    assert result.batch is not None and exact.batch is not None
    assert result.batch.equals(exact.batch)
    assert result.errors[0] == exact.errors[0]
    failing = make_decoder(table(*COLUMNS, newline=True))
    with pytest.raises(FatalSourceError, match="invalid JSON"):  # line 3 comes first
        failing.decode(body, NOW)
    rows[3] = b'{"id": 3}'
    with pytest.raises(FatalSourceError, match="field 'id': expected Int64, got string"):
        failing.decode(b"\n".join(rows), NOW)
