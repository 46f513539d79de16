"""A child process whose file writes fail like on a full disk (``RLIMIT_FSIZE``).

:func:`run_with_failing_writes` runs ``body`` (Python source, dedented) in a fresh
interpreter after this prologue: ``failures`` collects the state writer's warnings,
``SIGXFSZ`` is ignored (so a write past the limit fails with EFBIG instead of killing the
process) and ``hard`` is the hard limit; ``resource.setrlimit(resource.RLIMIT_FSIZE, (0,
hard))`` then makes every write fail, ``(hard, hard)`` lifts that again. The limit touches
nothing but the child.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

PROLOGUE = """
import logging, os, resource, signal, time
from arroyo_lite import Session

failures = []
class Catch(logging.Handler):
    def emit(self, record):
        failures.append(record.getMessage())
logging.getLogger("arroyo_lite.runtime.persist").addHandler(Catch())
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
"""


def run_with_failing_writes(body: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    script = PROLOGUE + textwrap.dedent(body)
    return subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
