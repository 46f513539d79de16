"""Output benchmark: rows per second that ``run --format jsonl`` / ``csv`` can serialise.

Builds a table shaped like polled data (text, double, bigint, a nanosecond ``_timestamp``)
and times :func:`arroyo_lite.terminal.render.to_jsonl` (DuckDB's vectorised ``to_json``) against the
per-row path it replaced (Arrow -> Python dicts -> orjson), and :func:`render.to_csv`
(Arrow's CSV writer). Both JSON paths must give the same bytes; the script checks that.

    .venv/bin/python benchmarks/render.py [--rows 200000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import pyarrow as pa

from arroyo_lite.formats.encode import json_lines_python
from arroyo_lite.terminal import render


def sample(rows: int) -> pa.Table:
    return pa.table(
        {
            "symbol": pa.array(["ACME", "GLOBEX", "INITECH", "HOOLI"] * (rows // 4)),
            "price": pa.array([120.25 + i % 97 for i in range(rows // 4 * 4)], pa.float64()),
            "volume": pa.array(range(rows // 4 * 4), pa.int64()),
            "_timestamp": pa.array(
                range(1_700_000_000_000_000_000, 1_700_000_000_000_000_000 + rows // 4 * 4),
                pa.timestamp("ns"),
            ),
        }
    )


def best(fn: Callable[[], bytes], repeat: int) -> tuple[float, bytes]:
    times = []
    out = b""
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    table = sample(args.rows)
    n = table.num_rows
    fast, fast_out = best(lambda: render.to_jsonl(table), args.repeat)
    slow, slow_out = best(lambda: json_lines_python(render.displayable(table)), args.repeat)
    csv, _ = best(lambda: render.to_csv(table), args.repeat)
    assert fast_out == slow_out, "the two JSON paths disagree"
    print(f"rows: {n:,} (best of {args.repeat})")
    print(f"jsonl via DuckDB to_json : {fast * 1e3:8.1f} ms  {n / fast / 1e6:6.2f} M rows/s")
    print(f"jsonl via Python+orjson  : {slow * 1e3:8.1f} ms  {n / slow / 1e6:6.2f} M rows/s")
    print(f"csv via Arrow            : {csv * 1e3:8.1f} ms  {n / csv / 1e6:6.2f} M rows/s")
    print(f"speed-up of the DuckDB path: {slow / fast:.1f}x")


if __name__ == "__main__":
    main()
