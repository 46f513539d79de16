"""How arroyo-lite's log records reach a terminal user: one line each on stderr, at the level
``ARROYO_LITE_LOG`` asks for (the CLI's commands call :func:`configure_logging` once)."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from typing import IO

#: Environment variable choosing the CLI's log level (debug, info, warning, error).
LOG_ENV = "ARROYO_LITE_LOG"


class _OneLine(logging.Formatter):
    """``level: message`` on one line: tracebacks are for ``ARROYO_LITE_LOG=debug`` only."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


class _NotSourceFailures(logging.Filter):
    """Drops the runtime's "source 'x' failed/crashed" records: ``progress.SourceReporter``
    reports those from the status already (once, with the same message)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.name.startswith("arroyo_lite.runtime")
            and isinstance(record.msg, str)
            and record.msg.startswith("source '")
        )


#: The handler :func:`configure_logging` installed last (replaced when called again).
_cli_handler: logging.Handler | None = None


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time (the REPL swaps it during a prompt,
    so that a log line from a source prints above the prompt instead of through it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> IO[str]:
        return sys.stderr

    @stream.setter
    def stream(self, value: IO[str]) -> None:
        pass  # always the current sys.stderr


def configure_logging(
    stream: IO[str], env: Mapping[str, str] | None = None, *, reporter: bool = False
) -> None:
    """Send arroyo-lite's log records to ``stream`` the way a terminal user wants them.

    By default warnings and errors print as one line each, without tracebacks, and the
    polling source's own failure warnings are left out (``run`` reports source failures from
    the status instead, once per message). ``ARROYO_LITE_LOG=debug|info|warning|error`` sets
    the level; at ``debug`` records carry their tracebacks. With ``reporter`` (``run`` and
    ``demo``, whose ``progress.SourceReporter`` prints source failures), the runtime's records of
    the same failures are left out too.
    """
    env = os.environ if env is None else env
    wanted = env.get(LOG_ENV, "").strip().upper()
    level = logging.getLevelName(wanted) if wanted else logging.WARNING
    unknown = wanted if not isinstance(level, int) else ""
    if unknown:
        # A typo must not silently look like "no change": say so (once) and use the default.
        level, wanted = logging.WARNING, ""
    handler: logging.Handler
    handler = _StderrHandler() if stream is sys.stderr else logging.StreamHandler(stream)
    if level <= logging.DEBUG:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    else:
        handler.setFormatter(_OneLine())
    root = logging.getLogger("arroyo_lite")
    global _cli_handler
    if _cli_handler is not None:
        root.removeHandler(_cli_handler)
    _cli_handler = handler
    if reporter and not wanted:
        handler.addFilter(_NotSourceFailures())
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False
    polling = logging.getLogger("arroyo_lite.polling_http")
    polling.setLevel(level if wanted else logging.ERROR)
    if unknown:
        root.warning(
            "%s=%s is not a log level (debug, info, warning, error); using warning",
            LOG_ENV,
            env.get(LOG_ENV, "").strip(),
        )
