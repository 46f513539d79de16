"""Incremental aggregation benchmark: CPU per update of an updating aggregate while rows arrive.

``SELECT k, count(*), sum(v), avg(v) FROM t GROUP BY k`` runs as a continuous query with
``changelog=True`` (what an ``INSERT`` into a ``debezium_json`` sink uses) over a live table
already holding ``--small`` (100,000) and then ``--large`` (5,000,000) rows, ``--keys`` groups.
Each *update* is one batch of ``--batch`` new rows appended through the store's real append
path, then the query's next change batch; its cost is the process CPU time
(``time.process_time``: every thread, DuckDB's included, and no other process) of both.
The figure is the median over ``--updates`` updates (the mean is printed too: it includes
the state's occasional moves to a new database, ``incremental.py`` "Memory"); the first
evaluation (absorbing the rows already there) is not an update and is left out.

Two plans run in the same process: the per-group state (``AggregatePlan``,
``arroyo_lite.query.incremental``) and, as the baseline, re-evaluation of the whole query
with the results diffed (``UpdatingPlan`` + ``changelog.Differ``: what every updating query
did before, and what shapes the state does not handle still do). The baseline is chosen by
making the state compiler decline the query, the one line below that is not the product's path.
Target (issue 12): per-update CPU at 5M rows / at 100k rows <= 1.5 for the state.

    .venv/bin/python benchmarks/incremental_agg.py [--small 100000] [--large 5000000]
        [--keys 1000] [--batch 100] [--updates 60] [--baseline-updates 8]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import pyarrow as pa

from arroyo_lite.config import TIMESTAMP_COLUMN
from arroyo_lite.query import incremental
from arroyo_lite.query.engine import Engine
from arroyo_lite.runtime.store import Store

QUERY = "SELECT k, count(*), sum(v), avg(v) FROM t GROUP BY k"
TARGET = 1.5
FILL_BATCH = 1 << 20

SCHEMA = pa.schema(
    [
        pa.field("k", pa.int64()),
        pa.field("v", pa.int64()),
        pa.field(TIMESTAMP_COLUMN, pa.timestamp("ns"), nullable=False),
    ]
)


def rows(start: int, n: int, keys: int) -> pa.RecordBatch:
    """``n`` rows numbered from ``start``: key ``i * 7919 % keys``, value ``i % 1000``."""
    ids = np.arange(start, start + n, dtype=np.int64)
    return pa.record_batch(
        [pa.array(ids * 7919 % keys), pa.array(ids % 1000), pa.array(ids).view(pa.timestamp("ns"))],
        schema=SCHEMA,
    )


def per_update_cpu(
    table_rows: int, args: argparse.Namespace, updates: int
) -> tuple[float, float]:
    """Median and mean CPU seconds of one update with ``table_rows`` rows already in the
    table."""
    store = Store()
    store.create("t", SCHEMA)
    for start in range(0, table_rows, FILL_BATCH):
        store.append("t", rows(start, min(FILL_BATCH, table_rows - start), args.keys))
    store.wait_compacted()
    engine = Engine(store)
    stream = engine.stream(QUERY, changelog=True, timeout=3600)
    try:
        next(stream)  # the first evaluation absorbs the rows already there
        end = table_rows
        costs: list[float] = []
        for _ in range(updates):
            before = time.process_time()
            store.append("t", rows(end, args.batch, args.keys))
            changes = next(stream)
            costs.append(time.process_time() - before)
            end += args.batch
            assert changes.num_rows > 0
        return statistics.median(costs), statistics.mean(costs)
    finally:
        stream.close()
        engine.close()
        store.close()


def measure(label: str, args: argparse.Namespace, updates: int) -> tuple[float, float]:
    small, small_mean = per_update_cpu(args.small, args, updates)
    large, large_mean = per_update_cpu(args.large, args, updates)
    print(
        f"{label:<16} {small * 1e3:9.2f} ms at {args.small:>9,} rows   "
        f"{large * 1e3:9.2f} ms at {args.large:>9,} rows   ratio {large / small:6.2f}   "
        f"(means {small_mean * 1e3:.2f} and {large_mean * 1e3:.2f} ms)",
        flush=True,
    )
    return small, large


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=5_000_000)
    parser.add_argument("--keys", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--updates", type=int, default=60)
    parser.add_argument("--baseline-updates", type=int, default=8)
    args = parser.parse_args(argv)

    print(f"query: {QUERY}  ({args.keys:,} groups, {args.batch} new rows per update)")
    print("CPU per update (median, process time):")
    state_small, state_large = measure("per-group state", args, args.updates)
    # (the continuous plan imports it from incremental when a query starts)
    compile_state: Callable[..., object] = incremental.aggregate_state
    incremental.aggregate_state = lambda *a, **k: None  # type: ignore[assignment]
    try:
        base_small, base_large = measure("re-evaluation", args, args.baseline_updates)
    finally:
        incremental.aggregate_state = compile_state  # type: ignore[assignment]
    ratio = state_large / state_small
    print(
        f"at {args.large:,} rows the state costs {state_large / base_large:.3f}x "
        f"re-evaluation ({base_large / state_large:,.0f}x less CPU per update)"
    )
    ok = ratio <= TARGET
    print(
        f"ratio {args.large:,} / {args.small:,} rows: {ratio:.2f} (re-evaluation: "
        f"{base_large / base_small:.1f}); target <= {TARGET}: {'PASS' if ok else 'FAIL'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
