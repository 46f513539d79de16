"""``benchmarks/filesystem_sink.py`` still runs end to end and judges both of the sink's cases
against the target, the steady one (every row acknowledged) included (tiny: figures are not
judged here)."""

from __future__ import annotations

import re

import pytest

from tests.support.benchmarks import run_benchmark


@pytest.mark.timeout(120)
def test_filesystem_sink_benchmark_gives_a_verdict_for_the_steady_and_the_burst_case() -> None:
    result = run_benchmark(
        "filesystem_sink.py", "--rows", "50000", "--batch", "1000", "--repeat", "1"
    )
    out = result.stdout
    verdicts = {}
    for case in ("steady", "burst"):
        line = re.search(rf"^{case} .* [\d.]+x +[\d.]+x +>= 0\.7x wall +(PASS|FAIL)$", out, re.M)
        assert line is not None, out
        verdicts[case] = line.group(1)
    assert "each acknowledgement awaited" in out, out  # (the steady case says what it is)
    assert result.returncode == (0 if set(verdicts.values()) == {"PASS"} else 1), out
