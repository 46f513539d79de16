"""``benchmarks/scale.py`` still runs end to end (tiny and short: figures are not judged here)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "scale.py"


@pytest.mark.timeout(120)
def test_scale_benchmark_runs_and_reports_every_measure() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--tables", "5", "--seconds", "1.5", "--interval-ms", "200"],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    # Exit 1 only means a target was missed (a loaded CI machine may miss one); 0 or 1 is fine.
    assert result.returncode in (0, 1), result.stderr
    out = result.stdout
    for measure in ("polls done / due", "p99 poll-start lateness", "CPU s per wall s"):
        assert re.search(rf"^{re.escape(measure)} .* (PASS|FAIL)$", out, re.M), out
    rows = re.search(r"rows emitted (\d+), failed polls (\d+)", out)
    assert rows is not None and int(rows.group(1)) > 0 and rows.group(2) == "0", out
