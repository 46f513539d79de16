"""Running the ``arroyo-lite`` command in a subprocess, from async tests (no blocking waits).

The command runs as ``python -c 'from arroyo_lite.cli import main; main()'`` with the test's
interpreter, so it is the installed package and never a stale script on PATH.
"""

from __future__ import annotations

import asyncio
import os
import sys
from dataclasses import dataclass

CLI = [sys.executable, "-c", "from arroyo_lite.cli import main; main()"]


@dataclass
class Finished:
    code: int
    stdout: str
    stderr: str


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    # A fixed width, whatever the test runner's terminal: rich reads COLUMNS first.
    env["COLUMNS"] = "160"
    env.pop("LINES", None)
    env.update(extra)
    return env


async def start(*args: str, **extra_env: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *CLI,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=cli_env(**extra_env),
    )


async def run(*args: str, within: float = 90.0, **extra_env: str) -> Finished:
    """Run the command to completion; fail (killing it) if it takes longer than ``within``."""
    proc = await start(*args, **extra_env)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), within)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"arroyo-lite {args} did not finish within {within}s") from None
    assert proc.returncode is not None
    return Finished(proc.returncode, out.decode(), err.decode())
