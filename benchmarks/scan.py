"""Scan benchmark: 1,000,000 rows that arrived in 100,000 polls of 10 rows.

The batches go through the store's real append path (``Store.append``), the store's
compaction thread folds them, and ``SELECT count(*), avg(x)`` runs through the engine (the
same registration path as ``Session.query``). The baselines are the same query on one
contiguous Arrow table registered in a plain DuckDB connection, and on a native DuckDB table
(``CREATE TABLE ... AS`` from it: DuckDB's own storage). All are timed in this run; the figures
are ratios of medians (targets: <= 2x the Arrow table, issue 3; <= 1.5x the native table,
issue 16). For context it also prints the ratio without compaction.

Then the *fixed cost* of a snapshot query (issue 16, target <= 0.3 ms): a small query over
``--few`` tables of 10 rows each, through the engine and on the same tables registered in a
plain DuckDB connection, alternately; the cost is the difference of the median CPU times
(``time.process_time``, so other processes on a shared machine do not count).

    .venv/bin/python benchmarks/scan.py [--polls 100000] [--rows 10] [--repeat 31] [--few 3]
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
TARGET_NATIVE = 1.5
TARGET_FIXED_MS = 0.3

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


def cpu_pair(
    a: Callable[[], object], b: Callable[[], object], repeat: int, inner: int
) -> tuple[float, float]:
    """Median CPU seconds per call of ``a`` and ``b``, ``inner`` calls per sample, alternately."""
    a()
    b()
    samples_a, samples_b = [], []
    for _ in range(repeat):
        for fn, samples in ((a, samples_a), (b, samples_b)):
            start = time.process_time()
            for _ in range(inner):
                fn()
            samples.append((time.process_time() - start) / inner)
    return statistics.median(samples_a), statistics.median(samples_b)


def fixed_cost(tables: int, repeat: int) -> tuple[float, float, str]:
    """(engine, plain DuckDB) median CPU seconds of one small query over ``tables`` tables."""
    store = Store()
    con = duckdb.connect()
    con.execute("SET python_enable_replacements = false")
    for i in range(tables):
        store.create(f"f{i}", SCHEMA)
        batch = make_batches(1, 10)[0]
        store.append(f"f{i}", batch)
        con.register(f"f{i}", pa.Table.from_batches([batch]))
    store.wait_compacted()
    engine = Engine(store)
    query = " UNION ALL ".join(f"SELECT max(id) AS m FROM f{i}" for i in range(tables))
    assert engine.query(query).to_pylist() == [{"m": r[0]} for r in con.sql(query).fetchall()]
    ours, base = cpu_pair(
        lambda: engine.query(query), lambda: con.sql(query).to_arrow_table(), repeat, 20
    )
    store.close()
    return ours, base, query


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--polls", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=31)
    parser.add_argument("--few", type=int, default=3, help="tables in the fixed-cost query")
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
    native = duckdb.connect()
    native.register("src", contiguous)
    native.execute("CREATE TABLE t AS SELECT * FROM src")
    native.unregister("src")
    live_n, base_n = timed_pair(
        lambda: engine.query(QUERY), lambda: native.sql(QUERY).to_arrow_table(), args.repeat
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
    ratio_n = live_n / base_n
    ours_cpu, base_cpu, _ = fixed_cost(args.few, args.repeat)
    fixed_ms = (ours_cpu - base_cpu) * 1e3
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
    print(f"query on live table {live_n * 1e3:.2f} ms, on a native DuckDB table "
          f"{base_n * 1e3:.2f} ms (timed alternately)")
    print(f"ratio live/native: {ratio_n:.2f}x (target <= {TARGET_NATIVE}x): "
          f"{'PASS' if ratio_n <= TARGET_NATIVE else 'FAIL'}")
    print(f"small query over {args.few} tables: engine {ours_cpu * 1e3:.3f} ms CPU, plain DuckDB "
          f"{base_cpu * 1e3:.3f} ms CPU ({ours_cpu / base_cpu:.2f}x)")
    print(f"fixed cost per snapshot query: {fixed_ms:.3f} ms CPU (target <= {TARGET_FIXED_MS} ms): "
          f"{'PASS' if fixed_ms <= TARGET_FIXED_MS else 'FAIL'}")
    for s in (store, raw_store):
        s.close()
    ok = ratio <= TARGET and ratio_n <= TARGET_NATIVE and fixed_ms <= TARGET_FIXED_MS
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
