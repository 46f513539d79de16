"""Ctrl-C (SIGINT) and SIGTERM for the terminal front ends: what ``run``, ``demo``, the live
watch loop and the REPL do when a stop is asked for, and how a blocking call (a DuckDB query)
stays cancellable with Ctrl-C (:func:`run_interruptibly`).

Signal handlers can only be installed on the main thread; every helper here is a no-op
elsewhere (a watch loop run from a test's thread, say), so callers need not check.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")


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


def run_interruptibly(fn: Callable[[], T], interrupt: Callable[[], object] | None) -> T:
    """``fn()`` run on a worker thread, so that Ctrl-C reaches the calling thread meanwhile.

    On Ctrl-C, ``interrupt`` (a DuckDB interrupt, say) is called until the worker is done
    (bounded to 30 s), and ``KeyboardInterrupt`` propagates; the caller can then use what
    ``fn`` used again, since the worker has finished. Returns what ``fn`` returned, or raises
    what it raised.
    """
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # handed to the calling thread below
            box["error"] = e
        finally:
            done.set()

    worker = threading.Thread(target=target, name="repl-query", daemon=True)
    try:
        # SIGINT is held back while the thread starts: a Ctrl-C inside Thread.start() would
        # leave a thread that runs the query with nobody waiting to interrupt it. The
        # worker inherits the mask, so the signal always lands here, on the calling thread.
        with sigint_blocked():
            worker.start()
        while not done.wait(0.1):
            pass
    except KeyboardInterrupt:
        _interrupt_until(done, interrupt)
        raise
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def _interrupt_until(done: threading.Event, interrupt: Callable[[], object] | None) -> None:
    # Repeated, because a Ctrl-C can come before DuckDB has started the query, when there is
    # nothing to interrupt yet.
    deadline = time.monotonic() + 30
    while not done.is_set() and time.monotonic() < deadline:
        if interrupt is not None:
            with contextlib.suppress(Exception):
                interrupt()
        done.wait(0.1)
