"""What DuckDB's async I/O threads cost the query layer's databases, and what they buy.

DuckDB 2.0 starts ``async_threads`` (8) threads per database by default, besides its
``threads - 1`` workers; ``query/connection.py``'s ``DATABASE_CONFIG`` turns them off for the
engine's, each windowed plan's and each per-group state's database. This prints, for the
``arroyo_lite`` on the path (run it once with this checkout, once with another tree on
``PYTHONPATH`` from outside the checkout, to compare):

* a ``Session`` and then ``--streams`` windowed streams over an impulse table: the process's
  native threads, glibc's held memory and arenas, RSS;
* the one place those threads could help, a query over a file (``read_parquet`` of a
  generated file, in the page cache: the reads are DuckDB's, local), on a database with
  DuckDB's defaults and one with ``DATABASE_CONFIG``, alternated: median CPU and wall time.

    .venv/bin/python benchmarks/query_threads.py [--streams 20] [--rows 20000000] [--rounds 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

import duckdb
import memory_parts
import pyarrow as pa
import pyarrow.parquet as pq

import arroyo_lite
from arroyo_lite import Session
from arroyo_lite.query import connection


def tasks() -> int:
    return len(os.listdir("/proc/self/task"))


def figures() -> str:
    glibc = memory_parts.glibc()
    rss = memory_parts.smaps_rollup()["rss"]
    return (
        f"threads {tasks()}, glibc held {glibc['held']:.1f} MB in {glibc['arenas']:.0f} "
        f"arenas, RSS {rss:.1f} MB"
    )


def streams(count: int) -> None:
    with Session(env={}) as session:
        session.query("SELECT 1")
        print(f"Session: {figures()}")
        session.execute("CREATE TABLE imp WITH (connector = 'impulse', event_rate = '200');")
        time.sleep(2)
        before = figures()
        opened = [
            session.stream(
                f"SELECT tumble(interval '1 second') AS w, count(*) + {i} AS n FROM imp GROUP BY w"
            )
            for i in range(count)
        ]
        time.sleep(3)
        print(f"{count} windowed streams: before {before}; after {figures()}")
        for stream in opened:
            stream.close()


def parquet(rows: int, rounds: int) -> None:
    config = getattr(connection, "DATABASE_CONFIG", None)
    if config is None:
        print("this tree has no DATABASE_CONFIG: no file read compared")
        return
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "t.parquet")
        numbers = pa.array(range(rows), pa.int64())
        pq.write_table(pa.table({"a": numbers}), path, row_group_size=1_000_000)
        cons = {
            "DuckDB's defaults": duckdb.connect(":memory:"),
            f"DATABASE_CONFIG {dict(config)}": connection.open_database(),
        }
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in cons}
        for _ in range(rounds):
            for name, con in cons.items():
                cpu, wall = time.process_time(), time.perf_counter()
                con.execute(f"SELECT sum(a) FROM read_parquet('{path}')").fetchall()
                times[name].append((time.process_time() - cpu, time.perf_counter() - wall))
        for name, spans in times.items():
            cpu_ms = statistics.median(s[0] for s in spans) * 1e3
            wall_ms = statistics.median(s[1] for s in spans) * 1e3
            print(f"read_parquet, {rows:,} rows, {name}: CPU {cpu_ms:.0f}, wall {wall_ms:.0f} ms")
        for con in cons.values():
            con.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    print(f"arroyo_lite from {os.path.dirname(arroyo_lite.__file__)}; duckdb {duckdb.__version__}")
    streams(args.streams)
    parquet(args.rows, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
