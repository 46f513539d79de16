"""Running the ``arroyo-lite`` command in a subprocess, from async tests (no blocking waits).

The command runs as ``python -c 'from arroyo_lite.cli import main; main()'`` with the test's
interpreter, so it is the installed package and never a stale script on PATH.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable
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


async def run_until(
    *args: str,
    until: Callable[[str], bool] | None = None,
    until_stderr: Callable[[str], bool] | None = None,
    within: float = 90.0,
    **extra_env: str,
) -> Finished:
    """Run the command until its stdout so far satisfies ``until`` (and its stderr so far
    ``until_stderr``), then stop it with SIGTERM (a clean stop: exit 0) and collect the rest.
    Unlike ``--for N``, this holds however slow the machine is; it fails (killing the
    command) if the conditions are not met within ``within`` seconds. A command that ends by
    itself first is returned as it ended."""
    proc = await start(*args, **extra_env)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = bytearray(), bytearray()

    async def collect(stream: asyncio.StreamReader, into: bytearray) -> None:
        while chunk := await stream.read(65536):
            into.extend(chunk)

    readers = [
        asyncio.ensure_future(collect(proc.stdout, out)),
        asyncio.ensure_future(collect(proc.stderr, err)),
    ]
    ended = asyncio.ensure_future(proc.wait())

    def met() -> bool:
        return (until is None or until(out.decode(errors="replace"))) and (
            until_stderr is None or until_stderr(err.decode(errors="replace"))
        )

    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    try:
        while not met():
            if ended.done():
                break
            if loop.time() >= deadline:
                raise TimeoutError
            await asyncio.sleep(0.05)
        else:
            proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(asyncio.gather(ended, *readers), 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(
            f"arroyo-lite {args}: condition not met within {within}s; "
            f"stdout so far: {bytes(out[-2000:])!r}; stderr: {bytes(err[-2000:])!r}"
        ) from None
    assert proc.returncode is not None
    return Finished(proc.returncode, out.decode(), err.decode())
