"""Scan benchmark: 1,000,000 rows that arrived in 100,000 polls of 10 rows.

The batches go through the store's real append path (``Store.append``), the store's
compaction thread folds them, and ``SELECT count(*), avg(x)`` runs through the engine (the
same registration path as ``Session.query``). The baseline is the same query on one
contiguous Arrow table registered in a plain DuckDB connection. Both are timed in this run;
the figure is the ratio of medians (target <= 2x). For context it also prints the ratio
without compaction.

    .venv/bin/python benchmarks/scan.py [--polls 100000] [--rows 10] [--repeat 31]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from arroyo_lite.config import TIMESTAMP_COLUMN
from arroyo_lite.query.engine import Engine
from arroyo_lite.runtime.store import Store

QUERY = "SELECT count(*), avg(x) FROM t"
TARGET = 2.0

SCHEMA = pa.schema(
    [
        pa.field("id", pa.int64()),
        pa.field("x", pa.float64()),
        pa.field(TIMESTAMP_COLUMN, pa.timestamp("ns"), nullable=False),
    ]
)


def make_batches(polls: int, rows: int) -> list[pa.RecordBatch]:
    """``polls`` small batches, each with its own buffers, as decoded responses would be."""
    out = []
    for i in range(polls):
        ids = pa.array(range(i * rows, (i + 1) * rows), pa.int64())
        out.append(
            pa.record_batch(
                [ids, pc.multiply(pc.cast(ids, pa.float64()), 0.5), ids.view(pa.timestamp("ns"))],
                schema=SCHEMA,
            )
        )
    return out


def timed(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm up
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def timed_pair(
    a: Callable[[], object], b: Callable[[], object], repeat: int
) -> tuple[float, float]:
    """Medians of ``a`` and ``b`` timed alternately, so drift on a busy machine (other
    processes, a garbage collection) hits both alike."""
    a()
    b()
    samples_a, samples_b = [], []
    for _ in range(repeat):
        for fn, samples in ((a, samples_a), (b, samples_b)):
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
    return statistics.median(samples_a), statistics.median(samples_b)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--polls", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=31)
    args = parser.parse_args(argv)

    batches = make_batches(args.polls, args.rows)
    total = args.polls * args.rows

    store = Store()
    store.create("t", SCHEMA)
    start = time.perf_counter()
    for b in batches:
        store.append("t", b)
    append_s = time.perf_counter() - start
    start = time.perf_counter()
    store.wait_compacted()
    settle_s = time.perf_counter() - start
    engine = Engine(store)
    snap = store.snapshot()["t"]

    con = duckdb.connect()
    con.execute("SET python_enable_replacements = false")
    contiguous = pa.Table.from_batches(batches, schema=SCHEMA).combine_chunks()
    con.register("t", contiguous)
    live, base = timed_pair(
        lambda: engine.query(QUERY), lambda: con.sql(QUERY).to_arrow_table(), args.repeat
    )
    result = engine.query(QUERY).to_pylist()[0]
    expected = con.sql(QUERY).fetchall()[0]
    assert result["count_star()"] == expected[0] == total

    raw_store = Store(compact=False)
    raw_store.create("t", SCHEMA)
    for b in batches:
        raw_store.append("t", b)
    raw_engine = Engine(raw_store)
    raw = timed(lambda: raw_engine.query(QUERY), max(3, args.repeat // 5))

    ratio = live / base
    print(f"rows: {total:,} in {args.polls:,} appended batches of {args.rows}")
    print(f"append: {append_s * 1e6 / args.polls:.2f} us/batch ({append_s:.2f} s total); "
          f"compaction settled {settle_s:.2f} s after the last append")
    print(f"batches after compaction: {len(snap.batches)}")
    print(f"query on live table (compacted): {live * 1e3:.2f} ms "
          f"(median of {args.repeat}, timed alternately with the next line)")
    print(f"query on one contiguous table:   {base * 1e3:.2f} ms")
    print(f"query on live table, no compaction: {raw * 1e3:.2f} ms "
          f"({raw / base:.1f}x, for context)")
    print(f"ratio live/contiguous: {ratio:.2f}x (target <= {TARGET:.0f}x): "
          f"{'PASS' if ratio <= TARGET else 'FAIL'}")
    for s in (store, raw_store):
        s.close()
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
