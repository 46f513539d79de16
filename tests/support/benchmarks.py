"""Running a script of ``benchmarks/`` as the smoke tests do: in a fresh interpreter, tiny
arguments, its verdicts not judged."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def run_benchmark(
    script: str, *args: str, timeout: float = 100
) -> subprocess.CompletedProcess[str]:
    """Run ``benchmarks/<script>`` with ``args``; its output is text.

    Exit 1 only means a target was missed (a loaded machine may miss one), so 0 and 1 are
    both accepted; any other status (a crash, a usage error) fails the calling test with the
    script's stderr."""
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return result
