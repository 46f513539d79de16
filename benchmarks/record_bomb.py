"""Record bombs (issue 8, item 7): what five million ``{}`` (15 MB) cost one decoder.

Builds the bomb as NDJSON (``framing = 'newline'``), as a top-level array and as
concatenated values, and times ``Decoder.decode`` with the default ``max_records_per_body``
(the body is refused) against ``pyarrow.json.read_json`` parsing the NDJSON form (the
baseline, measured in the same run). Before issue 8 the decoder accepted the bomb by the
per-record path: 18.6 s and 1.2 GB (array), 216 s (NDJSON). Prints seconds and the ratio to
the baseline for each shape, and peak RSS. Run:

    .venv/bin/python benchmarks/record_bomb.py [--records N]
"""

from __future__ import annotations

import argparse
import resource
import time
from collections.abc import Callable
from functools import partial

import pyarrow as pa
import pyarrow.json as pajson

from arroyo_lite.config import TableConfig
from arroyo_lite.formats import DecodeResult, make_decoder
from arroyo_lite.sql import compile_sql


def config(newline: bool) -> TableConfig:
    framing = ", framing = 'newline'" if newline else ""
    sql = (
        "CREATE TABLE bomb (id BIGINT, name TEXT) WITH (connector = 'polling_http', "
        f"endpoint = 'http://127.0.0.1:9/', format = 'json', bad_data = 'drop'{framing});"
    )
    [table] = compile_sql(sql, env={}).tables
    return table


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def main(records: int) -> None:
    ndjson = b"\n".join([b"{}"] * records)
    shapes = {
        "ndjson (framing)": (ndjson, True),
        "array": (b"[" + b",".join([b"{}"] * records) + b"]", False),
        "concatenated": (b" ".join([b"{}"] * records), False),
    }
    schema = pa.schema([("id", pa.int64()), ("name", pa.string())])
    options = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    baseline, _ = timed(lambda: pajson.read_json(pa.BufferReader(ndjson), parse_options=options))
    print(f"{records:,} records, {len(ndjson) / 1e6:.1f} MB")
    print(f"baseline pyarrow.json.read_json (NDJSON): {baseline:.2f} s")
    for name, (body, newline) in shapes.items():
        decoder = make_decoder(config(newline))
        seconds, outcome = timed(partial(decoder.decode, body, 1))
        assert isinstance(outcome, DecodeResult)
        print(
            f"{name:18} {seconds:6.2f} s  ratio {seconds / baseline:4.2f}  "
            f"rows {outcome.rows}  dropped {outcome.dropped}"
        )
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3:.0f} MB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5_000_000)
    main(parser.parse_args().records)
