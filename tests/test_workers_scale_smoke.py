"""``benchmarks/scale.py --workers 2`` still runs end to end (tiny and short: figures are not
judged here)."""

from __future__ import annotations

import re

import pytest

from tests.support.benchmarks import run_benchmark


@pytest.mark.timeout(300)
def test_scale_with_workers_runs_and_reports_every_measure() -> None:
    out = run_benchmark(
        "scale.py", "--workers", "2", "--tables", "6", "--seconds", "1.5", "--interval-ms",
        "200", "--warmup", "0", "--server", "fast", "--servers", "2", timeout=280,
    ).stdout  # fmt: skip
    assert "baseline (bare aiohttp loop in 2 processes)" in out, out
    for measure in (
        "polls done / due", "p99 poll-start lateness", "CPU per poll", "CPU the schedule needs",
        "memory",
    ):  # fmt: skip
        assert re.search(rf"^{re.escape(measure)} .* (PASS|FAIL)$", out, re.M), out
    assert re.search(r"^  worker 1: .* polls/s", out, re.M) and "worker 2:" in out, out
    assert re.search(r"failed polls 0, failed tables 0", out), out
    assert re.search(r"^  server process\(es\): .* us per request$", out, re.M), out
