"""Ctrl-C (SIGINT) and SIGTERM for the terminal front ends: what ``run``, ``demo``, the live
watch loop and the REPL do when a stop is asked for.

Signal handlers can only be installed on the main thread; every helper here is a no-op
elsewhere (a watch loop run from a test's thread, say), so callers need not check.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from types import FrameType


class StopRequested(BaseException):
    """Raised by the SIGTERM handler to leave the main loop like Ctrl-C does.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` on the way
    swallows it.
    """


def _on_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def stop_on_signals(stopping: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM end the loop: they set ``stopping`` and raise.

    SIGINT raises ``KeyboardInterrupt``, SIGTERM :class:`StopRequested`. The flag is what the
    loop checks, so even a raise that lands somewhere that swallows it (a library's broad
    except, a cleanup block) still stops the loop at its next turn. The previous handlers are
    back on exit.
    """
    if not _on_main_thread():
        yield
        return

    def on_term(signum: int, frame: FrameType | None) -> None:
        stopping.set()
        raise StopRequested()

    def on_int(signum: int, frame: FrameType | None) -> None:
        stopping.set()
        raise KeyboardInterrupt

    previous_term = signal.signal(signal.SIGTERM, on_term)
    previous_int = signal.signal(signal.SIGINT, on_int)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)


@contextlib.contextmanager
def sigint_blocked() -> Iterator[None]:
    """Hold SIGINT back (``pthread_sigmask``) on the main thread; delivered on exit.

    A thread started inside inherits the mask, so a Ctrl-C that arrives meanwhile lands on
    the main thread once the block ends, never on the new thread.
    """
    previous = None
    if _on_main_thread():
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        if previous is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT (``SIG_IGN``) on the main thread; the previous handler is back on exit.

    The REPL reads a line under it: in raw mode Ctrl-C is a keystroke (the prompt clears the
    line), but a SIGINT can still come in the instant after Enter, when the terminal is back
    in cooked mode and the prompt has not returned; ignored, it cannot drop the accepted
    statement (press Ctrl-C again to cancel it once it runs).
    """
    if not _on_main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
