"""``benchmarks/poll_step.py`` still runs end to end (tiny: figures are not judged here)."""

from __future__ import annotations

import re

import pytest

from tests.support.benchmarks import run_benchmark


@pytest.mark.timeout(120)
def test_poll_step_benchmark_reports_every_phase() -> None:
    out = run_benchmark(
        "poll_step.py", "--polls", "40", "--rounds", "1", "--tables", "3", "--interval-ms", "50"
    ).stdout
    phases = ("bare aiohttp", "fetch (aiohttp)", "fetch (lean)", "whole poll", "whole, aiohttp")
    for phase in phases:
        line = rf"^{re.escape(phase)} +[\d.]+ us/poll +[\d.]+x bare aiohttp$"
        assert re.search(line, out, re.M), out
