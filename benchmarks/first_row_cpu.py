"""CPU to the first row of ``arroyo-lite run`` (issue 16 §5), read inside the process.

:mod:`first_row` times the spawn to the first line from outside, and its CPU figure is the
child's whole life (its shutdown too). On a loaded machine both mostly measure the load.
This script runs ``run --format jsonl`` on a local ``impulse`` table through a wrapper that,
when the first row is written, reads the process's CPU (all threads) and its main thread's
CPU, then exits at once. The main thread's CPU is the closest load-proof figure of the
critical path: work moved to another thread (the engine's DuckDB connection opening while
the SQL compiles) leaves it, work merely reordered does not. The baseline, timed alternately
in the same run, is :mod:`first_row`'s floor (a fresh interpreter importing pyarrow and
DuckDB, one query over a one-row Arrow table) read the same way.

``--against DIR`` (repeatable) also times the ``arroyo_lite`` package in DIR (put first on
``PYTHONPATH``; e.g. main's tree from ``git archive``), alternating with this checkout's.

    .venv/bin/python benchmarks/first_row_cpu.py [--repeat 15] [--against /tmp/main-tree]...
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from first_row import FLOOR  # noqa: E402  (benchmarks/ is on sys.path when run as a script)

#: Runs the CLI in-process; at the first write to stdout prints "process_cpu main_cpu" to
#: the real stdout and exits (no shutdown: its cost is not the first row's).
WRAPPER = """
import io, os, sys, threading, time
MAIN = time.pthread_getcpuclockid(threading.main_thread().ident)
class FirstRow(io.RawIOBase):
    def writable(self):
        return True
    def write(self, data):
        os.write(1, f"{time.process_time()} {time.clock_gettime(MAIN)}\\n".encode())
        os._exit(0)
sys.stdout = io.TextIOWrapper(FirstRow(), write_through=True)
sys.argv = ["arroyo-lite", *sys.argv[1:]]
from arroyo_lite.cli import main
main()
"""

#: The floor, reporting its CPU the same way once its row is printed (a last line).
FLOOR_CPU = FLOOR + (
    "import os, time\n"
    "os.write(1, f'{time.process_time()} {time.thread_time()}\\n'.encode())\n"
)


def cpu_at_first_row(argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """(wall seconds from the spawn, process CPU, main-thread CPU) at the first row."""
    started = time.perf_counter()
    done = subprocess.run(
        argv, capture_output=True, text=True, env=env, cwd=tempfile.gettempdir(), timeout=120
    )
    wall = time.perf_counter() - started
    lines = done.stdout.strip().splitlines()
    fields = lines[-1].split() if lines else []
    if len(fields) < 2:
        raise SystemExit(f"{argv[:3]} reported nothing: {done.stderr[-500:]}")
    return wall, float(fields[0]), float(fields[1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--against", type=Path, action="append", default=[], metavar="DIR")
    args = parser.parse_args(argv)
    import arroyo_lite

    here = Path(arroyo_lite.__file__).parent
    trees: dict[str, Path | None] = {"this checkout": None}
    for tree in args.against:
        trees[str(tree)] = tree
    for tree in trees.values():  # bytecode, as an installed copy has (see first_row.py)
        compileall.compile_dir(here if tree is None else tree / "arroyo_lite", quiet=1)
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in trees}
    samples["floor"] = []
    with tempfile.TemporaryDirectory() as tmp:
        sql = Path(tmp) / "first.sql"
        sql.write_text(
            "CREATE TABLE t WITH (connector = 'impulse', event_rate = 10);\n"
            "SELECT counter FROM t;\n"
        )
        run = [sys.executable, "-c", WRAPPER, "run", "--format", "jsonl", "--no-progress"]
        for _ in range(args.repeat):
            for name, tree in trees.items():
                env = dict(os.environ)
                if tree is not None:
                    env["PYTHONPATH"] = str(tree)
                samples[name].append(cpu_at_first_row([*run, str(sql)], env))
            floor = [sys.executable, "-c", FLOOR_CPU]
            samples["floor"].append(cpu_at_first_row(floor, dict(os.environ)))
    load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
    print(f"CPU at the first row, medians of {args.repeat} (load average after: {load})")
    floor_main = statistics.median(m for _, _, m in samples["floor"])
    for name, rows in samples.items():
        wall = statistics.median(w for w, _, _ in rows)
        cpu = statistics.median(c for _, c, _ in rows)
        main_cpu = statistics.median(m for _, _, m in rows)
        lowest = min(m for _, _, m in rows)
        above = f"; main thread {main_cpu - floor_main:+.3f} s above the floor"
        above = "" if name == "floor" else above
        print(f"{name:>24}: main thread {main_cpu:.3f} CPU s (least {lowest:.3f}), "
              f"process {cpu:.3f} CPU s, wall {wall:.3f} s{above}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
