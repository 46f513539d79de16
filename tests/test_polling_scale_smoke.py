"""``benchmarks/scale.py`` still runs end to end (tiny and short: figures are not judged here)."""

from __future__ import annotations

import re

import pytest

from tests.support.benchmarks import run_benchmark


@pytest.mark.timeout(120)
def test_scale_benchmark_runs_and_reports_every_measure() -> None:
    result = run_benchmark("scale.py", "--tables", "5", "--seconds", "1.5", "--interval-ms", "200")
    out = result.stdout
    for measure in ("polls done / due", "p99 poll-start lateness", "CPU s per wall s"):
        assert re.search(rf"^{re.escape(measure)} .* (PASS|FAIL)$", out, re.M), out
    rows = re.search(r"rows emitted (\d+), failed polls (\d+)", out)
    assert rows is not None and int(rows.group(1)) > 0 and rows.group(2) == "0", out
