"""Filesystem sink benchmark: its Parquet write rate vs ``pyarrow.parquet.write_table``.

The same rows (``--rows``, in batches of ``--batch``: an int, a double, a short text and
``_timestamp``) are written twice in the same run, into a temporary directory:

* baseline: ``pyarrow.parquet.write_table`` of all the rows as one table (no fsync);
* sink: a real :class:`FilesystemSink` (``format = 'parquet'``) fed batch by batch through
  its contract (open, write, flush, close), flushing every ``--flush-every`` batches as the
  runtime does when it catches up (a flush acknowledges rows: logs and fsyncs them, at most
  once per 0.1 s, in the background), the file committed at close (completed, fsynced,
  recorded in the manifest, renamed).

Both use the same compression (``--compression``, pyarrow's name; default none, i.e.
``parquet.compression = 'uncompressed'``: Arroyo's default, zstd, is measured with
``--compression zstd``). Prints rows/s of each (best of ``--repeat``, 5) and their ratio, wall
clock and CPU time (all threads: what a loaded machine shows); target: sink >= 0.7x the
baseline. Then, for information, the sink when every row goes through the write-ahead log
before the commit (each flush waits for its acknowledgement: a pipeline whose rows arrive
slower than they are acknowledged), the cost the coalesced acknowledgements mostly spare
here.

    .venv/bin/python benchmarks/filesystem_sink.py [--rows 2000000] [--batch 8192]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from arroyo_lite.config import TableKind
from arroyo_lite.connectors.base import SourceContext
from arroyo_lite.connectors.filesystem.operator import FilesystemSink
from arroyo_lite.sql import compile_sql

TARGET = 0.7
#: pyarrow's compression names -> the sink's (Arroyo's) where they differ.
SINK_COMPRESSION = {"none": "uncompressed"}


def make_batches(rows: int, size: int) -> list[pa.RecordBatch]:
    n = pa.array(np.arange(rows, dtype=np.int64))
    table = pa.table(
        {
            "id": n,
            "price": pc.multiply(pc.cast(n, pa.float64()), 0.25),
            "symbol": pc.binary_join_element_wise(
                "sym-", pc.cast(pc.bit_wise_and(n, 255), pa.string()), ""
            ),
            "_timestamp": pc.cast(pc.add(n, 1_700_000_000_000_000_000), pa.timestamp("ns")),
        }
    )
    return table.to_batches(max_chunksize=size)


#: One measurement: (wall seconds, CPU seconds of the process, all threads).
Timing = tuple[float, float]


def baseline(batches: list[pa.RecordBatch], out: Path, compression: str) -> Timing:
    table = pa.Table.from_batches(batches).drop_columns(["_timestamp"])
    started, cpu = time.perf_counter(), time.process_time()
    pq.write_table(table, out / "baseline.parquet", compression=compression)
    return time.perf_counter() - started, time.process_time() - cpu


def sink_run(
    batches: list[pa.RecordBatch],
    out: Path,
    compression: str,
    flush_every: int,
    log_every_row: bool = False,
) -> Timing:
    sql = (
        "CREATE TABLE out (id BIGINT, price DOUBLE, symbol TEXT) WITH (connector = 'filesystem',"
        f" type = 'sink', path = '{out}', format = 'parquet',"
        f" 'rolling_policy.interval' = interval '3600 seconds',"
        f" 'parquet.compression' = '{SINK_COMPRESSION.get(compression, compression)}');"
    )
    (config,) = [t for t in compile_sql(sql).tables if t.kind is TableKind.SINK]

    async def run() -> Timing:
        sink = FilesystemSink(config, SourceContext())
        started, cpu = time.perf_counter(), time.process_time()
        await sink.open()
        for i, batch in enumerate(batches, 1):
            await sink.write(batch)
            if i % flush_every == 0:
                await sink.flush()
                if log_every_row:
                    await sink.acknowledge()  # (every row logged and fsynced)
        await sink.close()
        return time.perf_counter() - started, time.process_time() - cpu

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--batch", type=int, default=8192)
    parser.add_argument("--flush-every", type=int, default=16)
    parser.add_argument("--compression", default="none")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    batches = make_batches(args.rows, args.batch)
    runs: dict[str, list[Timing]] = {"base": [], "sink": [], "logged": []}
    for _ in range(args.repeat):
        for kind in runs:
            with tempfile.TemporaryDirectory() as tmp:
                if kind == "base":
                    runs[kind].append(baseline(batches, Path(tmp), args.compression))
                    continue
                runs[kind].append(
                    sink_run(
                        batches, Path(tmp), args.compression, args.flush_every, kind == "logged"
                    )
                )
                written = pq.read_metadata(next(Path(tmp).glob("*.parquet"))).num_rows
                assert written == args.rows, f"the sink wrote {written} rows of {args.rows}"
    rate = {kind: args.rows / min(t[0] for t in timings) for kind, timings in runs.items()}
    cpu_rate = {kind: args.rows / min(t[1] for t in timings) for kind, timings in runs.items()}
    print(f"rows: {args.rows:,} in batches of {args.batch}, flush every {args.flush_every}")
    print(
        f"pyarrow.parquet.write_table: {rate['base']:,.0f} rows/s"
        f" ({cpu_rate['base']:,.0f} rows per CPU second)"
    )
    print(
        f"filesystem sink (parquet):   {rate['sink']:,.0f} rows/s"
        f" ({cpu_rate['sink']:,.0f} rows per CPU second)"
    )
    ratio = rate["sink"] / rate["base"]
    verdict = "OK" if ratio >= TARGET else "BELOW TARGET"
    print(f"ratio: {ratio:.2f}x (target >= {TARGET}x) {verdict}")
    print(f"CPU-time ratio: {cpu_rate['sink'] / cpu_rate['base']:.2f}x")
    print(
        f"(information) every row logged before the commit: {rate['logged']:,.0f} rows/s,"
        f" {rate['logged'] / rate['base']:.2f}x; CPU-time"
        f" {cpu_rate['logged'] / cpu_rate['base']:.2f}x"
    )


if __name__ == "__main__":
    main()
