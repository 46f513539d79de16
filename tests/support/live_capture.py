"""A text capture of the live view: ``run``/``demo`` driven through a pseudo-terminal, and the
frame a person sees at the end. ``python -m tests.support.live_capture`` prints the one the
README shows (``demo --for 5`` in a 100x40 terminal); tests use the same functions.
"""

from __future__ import annotations

import re
import signal
import sys
import time
from collections.abc import Callable

import pexpect

from tests.support.cli import CLI, cli_env

#: What rich's Live writes to move back over its previous frame: erase a line, go up one.
_REDRAW = re.compile(r"(?:\r?\x1b\[2K(?:\x1b\[1A\x1b\[2K)+)")
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def run_in_pty(
    args: list[str],
    *,
    rows: int = 40,
    cols: int = 100,
    timeout: float = 60,
    until: Callable[[str], bool] | None = None,
) -> str:
    """Run ``arroyo-lite ARGS`` in a ``rows`` x ``cols`` pty until it exits; its raw output.

    With ``until``, the command is stopped (SIGTERM, a clean stop) as soon as its output so
    far satisfies it, so a test does not depend on ``--for N`` being long enough on a busy
    machine; it fails if that takes longer than ``timeout``."""
    child = pexpect.spawn(
        CLI[0],
        CLI[1:] + args,
        env=cli_env(TERM="xterm", COLUMNS=str(cols), LINES=str(rows)),
        encoding="utf-8",
        timeout=timeout,
        dimensions=(rows, cols),
    )
    raw = ""
    if until is not None:
        deadline = time.monotonic() + timeout
        while not until(raw):
            if time.monotonic() > deadline:
                child.terminate(force=True)
                raise AssertionError(
                    f"arroyo-lite {args}: not there in {timeout}s: {raw[-2000:]!r}"
                )
            try:
                raw += child.read_nonblocking(65536, timeout=0.5)
            except pexpect.TIMEOUT:
                continue
            except pexpect.EOF:
                break
        child.kill(signal.SIGTERM)
    child.expect(pexpect.EOF)
    child.close()
    return raw + str(child.before)


def redraws(raw: str) -> int:
    """How many times the live view moved back over its frame to draw it again."""
    return len(_REDRAW.findall(raw))


def final_frame(raw: str) -> str:
    """The last frame the live view drew, as plain text (no escapes, no trailing blanks)."""
    last = _REDRAW.split(raw)[-1]
    text = _ANSI.sub("", last).replace("\r", "")
    return "\n".join(line.rstrip() for line in text.strip("\n").split("\n"))


if __name__ == "__main__":
    sys.stdout.write(final_frame(run_in_pty(["demo", "--for", "5", "--port", "0"])) + "\n")
