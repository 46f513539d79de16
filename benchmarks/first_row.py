"""Time to first row (issue 16 §5): from ``arroyo-lite run`` starting to the first row printed.

A local JSON server runs in its own process. Each sample spawns ``arroyo-lite run --format
jsonl`` on a file with one ``polling_http`` table and a plain SELECT over it, and times from
the spawn to the first line on stdout (then stops the run). The baseline, timed alternately
in the same run, is the least any Python tool can do: a fresh interpreter that imports
aiohttp, makes the same GET and prints the body. The second baseline, the *floor*, is the
least a tool built on pyarrow and DuckDB can do: a fresh interpreter that imports both, runs a
DuckDB query over a one-row Arrow table and prints the row (:data:`FLOOR`); arroyo-lite
cannot print a row sooner than that. Prints the medians (wall and CPU seconds, with their
ranges: on a loaded machine the CPU time is the closer guess of an idle machine's wall
time), arroyo-lite's figure (target <= 0.3 s wall), the ratios to both baselines, and what
arroyo-lite spends above the floor.

``--source impulse`` times a local ``impulse`` table instead (no HTTP on arroyo-lite's side;
the baseline is unchanged).

    .venv/bin/python benchmarks/first_row.py [--repeat 7] [--source polling_http|impulse]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

#: The freshness benchmark's JSON server (``{"seq": n, "sent": ns}`` at ``/<name>``).
from freshness import SERVER  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

TARGET_S = 0.3

BARE = textwrap.dedent(
    """
    import asyncio, sys, aiohttp

    async def main():
        async with aiohttp.ClientSession() as s, s.get(sys.argv[1]) as r:
            print(await r.text(), flush=True)

    asyncio.run(main())
    """
)


#: The floor: pyarrow and DuckDB imported, one query over a one-row Arrow table, its row
#: printed. The table is built from a buffer, as arroyo-lite builds its batches: converting a
#: Python value would import pandas (when installed), which arroyo-lite's path never does.
FLOOR = textwrap.dedent(
    """
    import duckdb, pyarrow as pa

    counter = pa.Array.from_buffers(pa.int64(), 1, [None, pa.py_buffer(bytes(8))])
    t = pa.Table.from_arrays([counter], names=["counter"])
    print(duckdb.connect().execute("SELECT counter FROM t").fetchall()[0], flush=True)
    """
)


def first_line_after(argv: list[str]) -> float:
    """Seconds from spawning ``argv`` to its first line of stdout; the process is then ended."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        elapsed = time.perf_counter() - started
        if not line:
            raise SystemExit(f"{argv[:3]} printed nothing")
        return elapsed
    finally:
        proc.terminate()
        proc.wait(10)


def first_line_cpu(argv: list[str]) -> tuple[float, float]:
    """Wall seconds from spawning ``argv`` to its first line of stdout (the process is ended
    right after that line), and the CPU seconds it used meanwhile: on a shared, loaded
    machine the CPU time is about what the wall time would be on an idle one."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    elapsed = first_line_after(argv)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def compile_package() -> None:
    """Write arroyo-lite's bytecode cache, as ``pip install`` does: with
    ``PYTHONDONTWRITEBYTECODE`` set (as on the development machine) an editable checkout is
    otherwise compiled from source on every spawn (~0.2 CPU s that no installed copy pays)."""
    import compileall

    import arroyo_lite

    compileall.compile_dir(Path(arroyo_lite.__file__).parent, quiet=1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--source", choices=("polling_http", "impulse"), default="polling_http")
    args = parser.parse_args(argv)
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE)
    try:
        assert server.stdout is not None
        url = f"http://127.0.0.1:{int(server.stdout.readline())}/t"
        with tempfile.TemporaryDirectory() as tmp:
            sql = Path(tmp) / "first.sql"
            if args.source == "impulse":
                sql.write_text(
                    "CREATE TABLE t WITH (connector = 'impulse', event_rate = 10);\n"
                    "SELECT counter FROM t;\n"
                )
            else:
                sql.write_text(
                    "CREATE TABLE t (seq BIGINT, sent BIGINT) WITH (connector = 'polling_http', "
                    f"endpoint = '{url}', format = 'json', poll_interval_ms = 1000);\n"
                    "SELECT seq, sent FROM t;\n"
                )
            cli = Path(sys.executable).with_name("arroyo-lite")
            ours_argv = [str(cli), "run", "--format", "jsonl", "--no-progress", str(sql)]
            bare_argv = [sys.executable, "-c", BARE, url]
            floor_argv = [sys.executable, "-c", FLOOR]
            ours, bare, floor = [], [], []
            compile_package()
            first_line_after(ours_argv)  # warm the file cache
            first_line_after(floor_argv)
            for _ in range(args.repeat):
                ours.append(first_line_cpu(ours_argv))
                bare.append(first_line_cpu(bare_argv))
                floor.append(first_line_cpu(floor_argv))
    finally:
        server.terminate()
        server.wait(10)
    label = f"arroyo-lite run ({args.source}), spawn to first row:"
    print(f"{label} {_summary(ours)} (median of {args.repeat})")
    print(f"bare python + aiohttp GET + print:   {_summary(bare)}")
    print(f"floor: pyarrow + duckdb, one query:  {_summary(floor)}")
    wall, cpu = _medians(ours)
    bare_wall, bare_cpu = _medians(bare)
    floor_wall, floor_cpu = _medians(floor)
    verdict = "PASS" if wall <= TARGET_S else "FAIL"
    print(f"ratio {wall / bare_wall:.2f}x bare wall, {cpu / bare_cpu:.2f}x bare CPU; "
          f"target <= {TARGET_S} s wall: {verdict}")  # fmt: skip
    print(f"above the floor: {wall - floor_wall:+.3f} s wall, {cpu - floor_cpu:+.3f} CPU s "
          f"({wall / floor_wall:.2f}x floor wall, {cpu / floor_cpu:.2f}x floor CPU)")  # fmt: skip
    return 0 if wall <= TARGET_S else 1


def _medians(samples: list[tuple[float, float]]) -> tuple[float, float]:
    """Median wall and median CPU seconds of ``samples``."""
    return statistics.median(t for t, _ in samples), statistics.median(c for _, c in samples)


def _summary(samples: list[tuple[float, float]]) -> str:
    walls, cpus = sorted(t for t, _ in samples), sorted(c for _, c in samples)
    return (
        f"{statistics.median(walls):.3f} s wall ({walls[0]:.3f}-{walls[-1]:.3f}), "
        f"{statistics.median(cpus):.3f} CPU s ({cpus[0]:.3f}-{cpus[-1]:.3f})"
    )


if __name__ == "__main__":
    sys.exit(main())
