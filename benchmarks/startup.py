"""Start-up benchmark: how long the CLI and ``Session()`` take before doing anything.

Every figure is the median of ``--repeat`` fresh interpreter runs, wall time and CPU time
(user + system), each next to its ratio to ``python -c pass`` measured in the same run (so a
busy machine moves both; CPU time is the steadier one when the cores are shared):

* ``arroyo-lite --help`` and ``--version``, and ``--help`` of ``run``, ``repl``, ``test``,
  ``demo``, ``validate`` (target: within 3x of ``python -c pass``),
* ``arroyo-lite validate`` of a one-table file (target: 0.4 s),
* ``import arroyo_lite; Session()`` without tables, then ``close()`` (target: 0.15 s),
* ``arroyo-lite infer --help``, for reference.

Commands run through the ``arroyo-lite`` script installed beside this interpreter (what a user
runs), with a bytecode cache as an installed package has one: each run's interpreter writes
and reads ``.pyc`` files in a private cache (``PYTHONPYCACHEPREFIX`` in a temporary
directory, ``PYTHONDONTWRITEBYTECODE`` unset), filled by a first, unmeasured run of each
command. ``--no-bytecode-cache`` measures with the caller's environment instead (with
``PYTHONDONTWRITEBYTECODE=1`` every module of arroyo-lite is compiled from source on every
run: ~0.1 s more for ``validate``). Find what to defer next with
``python -X importtime .venv/bin/arroyo-lite --help 2>&1 | sort -t'|' -k2 -n | tail`` (the
second column is the cumulative time in microseconds).

    .venv/bin/python benchmarks/startup.py [--repeat 15]
    PYTHONPATH=/path/to/other/checkout .venv/bin/python benchmarks/startup.py   # compare
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SMALL_FILE = """\
CREATE TABLE prices (symbol TEXT, price DOUBLE) WITH (
  connector = 'polling_http', endpoint = 'http://127.0.0.1:8765/prices',
  poll_interval_ms = '1000', format = 'json');
SELECT symbol, avg(price) FROM prices GROUP BY symbol;
"""

SESSION = "import arroyo_lite; s = arroyo_lite.Session(); s.close()"


class Failed(Exception):
    """A measured command exited non-zero (e.g. a command an older version lacks)."""


def median_run(argv: list[str], repeat: int) -> tuple[float, float]:
    """Median wall and CPU (user + system) seconds of ``repeat`` runs of ``argv``; raises
    :class:`Failed` if a run exits non-zero. CPU time moves less than wall time when other
    processes share the cores."""
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise Failed(f"exit {done.returncode}")
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def met(target: str, seconds: float, baseline: float) -> str:
    """``met`` or ``over`` for a ``"3x"`` (ratio to the baseline) or ``"0.4 s"`` target."""
    if target.endswith("x"):
        ok = seconds / baseline <= float(target[:-1])
    else:
        ok = seconds <= float(target.split()[0])
    return "met" if ok else "over"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=15, help="runs per figure (median)")
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="run with the caller's environment (no private .pyc cache)",
    )
    args = parser.parse_args()
    py = sys.executable
    script = Path(py).parent / "arroyo-lite"
    if not script.exists():
        raise SystemExit(f"no {script}: install the package first (pip install -e .)")
    cli = [str(script)]
    with tempfile.TemporaryDirectory() as tmp:
        if not args.no_bytecode_cache:
            os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
            os.environ["PYTHONPYCACHEPREFIX"] = str(Path(tmp, "pycache"))
        sql = Path(tmp, "small.sql")
        sql.write_text(SMALL_FILE)
        # (label, argv, target): a ratio to `python -c pass` ("3x"), seconds ("0.4 s"), or
        # none (shown for reference).
        cases: list[tuple[str, list[str], str]] = [
            ("arroyo-lite --help", [*cli, "--help"], "3x"),
            ("arroyo-lite --version", [*cli, "--version"], "3x"),
            *(
                (f"arroyo-lite {name} --help", [*cli, name, "--help"], "3x")
                for name in ("run", "repl", "test", "demo", "validate")
            ),
            ("arroyo-lite infer --help", [*cli, "infer", "--help"], ""),
            ("arroyo-lite validate small.sql", [*cli, "validate", str(sql)], "0.4 s"),
            ("Session() + close()", [py, "-c", SESSION], "0.15 s"),
        ]
        median_run([py, "-c", "pass"], 3)  # warm the page cache before measuring
        for _, argv, _ in cases:  # ... and fill the bytecode cache
            subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wall0, cpu0 = median_run([py, "-c", "pass"], args.repeat)
        load = os.getloadavg()[0]
        cache = "caller's environment" if args.no_bytecode_cache else "bytecode cache"
        print(
            f"median of {args.repeat} runs, load average {load:.1f}, {cache}; baseline python "
            f"-c pass: {wall0 * 1e3:.1f} ms wall, {cpu0 * 1e3:.1f} ms CPU"
        )
        print(
            f"{'command':32} {'wall ms':>8} {'ratio':>6} {'CPU ms':>8} {'ratio':>6}  "
            "target  (met? wall / CPU)"
        )
        for label, argv, target in cases:
            try:
                wall, cpu = median_run(argv, args.repeat)
            except Failed as e:
                print(f"{label:32} {'(' + str(e) + ')':>32}")
                continue
            verdict = ""
            if target:
                verdict = f"  ({met(target, wall, wall0)} / {met(target, cpu, cpu0)})"
            print(
                f"{label:32} {wall * 1e3:8.1f} {wall / wall0:5.1f}x "
                f"{cpu * 1e3:8.1f} {cpu / cpu0:5.1f}x  {target:6}{verdict}"
            )


if __name__ == "__main__":
    main()
