"""A session in a child process, for tests that kill it with ``kill -9`` mid-run.

:func:`session_process` starts it, :func:`saved_bytes` tells when a table's state reached
the disk, :func:`kill_9` ends it without a clean shutdown (a crash)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def session_process(state_dir: Path, sql: str) -> subprocess.Popen[bytes]:
    """A child process running ``Session(state_dir=...)`` with ``sql`` executed, started:
    it has printed ``started`` (read here) and runs until killed."""
    script = textwrap.dedent(
        f"""
        import time
        from arroyo_lite import Session
        s = Session(state_dir={str(state_dir)!r}, flush_interval=0.05)
        s.execute({sql!r})
        print("started", flush=True)
        while True:
            time.sleep(1)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != b"started":
        proc.kill()
        proc.wait(30)
        raise AssertionError(f"the session process did not start (it printed {line!r})")
    return proc


def saved_bytes(state_dir: Path, table: str) -> int:
    """Bytes of ``table``'s segments saved under ``state_dir`` so far."""
    return sum(p.stat().st_size for p in (state_dir / "tables" / table).glob("*.arrows"))


def kill_9(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL ``proc`` (no clean shutdown: a crash) and reap it."""
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
