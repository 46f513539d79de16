"""Running an ``arroyo-lite`` command in this process, from async tests, off the event loop.

:func:`invoke` runs the command through click's ``CliRunner`` on a worker thread, so a server
on the test's loop keeps answering while the command (which runs its own ``asyncio.run``)
talks to it. It skips a Python start-up per call; commands that install signal handlers
(``run``, ``demo``, ``repl``) need the main thread: run those with :func:`tests.support.cli.run`.
"""

from __future__ import annotations

import asyncio

from click.testing import CliRunner

from arroyo_lite.cli import main
from tests.support.cli import Finished


async def invoke(*args: str, **env: str) -> Finished:
    """Run ``arroyo-lite ARGS`` with ``env`` added to the environment; wait off the loop."""
    runner = CliRunner(env={"COLUMNS": "160", **env})
    result = await asyncio.to_thread(runner.invoke, main, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return Finished(result.exit_code, result.stdout, result.stderr)
