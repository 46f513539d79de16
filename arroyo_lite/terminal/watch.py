"""Live output of continuous queries: what ``run``, ``demo`` and the REPL's ``\\watch`` share.

:func:`run_queries` turns every query into a continuous query (``Session.stream``) consumed on
its own thread, which hands batches to the calling thread through a queue. Only the calling
thread writes output, so lines never interleave, and it alone handles the duration limit and
Ctrl-C (SIGINT) / SIGTERM, which end the loop cleanly. Source failures are reported on stderr
(each new message once) while the other sources go on; a progress line shows per-source
counters on a terminal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import IO, TYPE_CHECKING, Any, cast

import orjson
import pyarrow as pa
from rich.console import Console

from arroyo_lite.connectors.base import SourceState, SourceStatus
from arroyo_lite.errors import ArroyoLiteError, QueryError, SourcePosition
from arroyo_lite.sql.statements import Query
from arroyo_lite.terminal import render

if TYPE_CHECKING:
    from arroyo_lite.session import Session

#: How often the main thread wakes to refresh status and print coalesced aggregate updates.
TICK_SECONDS = 0.25


def short_sql(text: str, width: int = 72) -> str:
    """A query on one line, cut to ``width`` characters (for labels)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


class StatusLine:
    """A one-line progress display on a terminal (stderr), redrawn in place.

    Anything else written to the same terminal must call :meth:`clear` first.
    """

    def __init__(self, stream: IO[str], enabled: bool) -> None:
        self.stream = stream
        self.enabled = enabled
        self._shown = False

    def show(self, text: str) -> None:
        if not self.enabled:
            return
        width = max(20, Console(file=self.stream, emoji=False).width - 1)
        if len(text) > width:
            text = text[: width - 1] + "…"
        self.stream.write("\r\x1b[K" + text)
        self.stream.flush()
        self._shown = True

    def clear(self) -> None:
        if self.enabled and self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False


@dataclass
class _QueryState:
    index: int
    query: Query
    incremental: bool = True
    #: Latest full result of an aggregate not printed yet (coalesced to ``refresh`` seconds).
    pending: pa.Table | None = None
    last_printed: pa.Table | None = None
    last_print_at: float = float("-inf")
    rows_out: int = 0
    #: Whole results printed so far (numbers jsonl's ``_update`` field).
    updates: int = 0


@dataclass
class LivePrinter:
    """Writes continuous-query results in one of the output formats.

    Table mode labels each block with the query; jsonl/csv add a ``_query`` field (the
    1-based SELECT number) only when there are several SELECTs, so stdout stays pure data.
    In jsonl every row of a whole-result update carries ``_update`` (1, 2, ... per query),
    so a consumer knows where one result ends; an empty result is the line
    ``{"_update": n}``.
    """

    fmt: render.OutputFormat
    out: IO[bytes]
    console: Console
    several: bool
    _csv_header_for: int | None = field(default=None, init=False)

    def write(self, state: _QueryState, data: pa.Table, *, update: bool) -> None:
        extra: dict[str, int] | None = {"_query": state.index} if self.several else None
        if self.fmt == "jsonl":
            if update:
                state.updates += 1
                extra = {**(extra or {}), "_update": state.updates}
                if data.num_rows == 0:
                    self.out.write(orjson.dumps(extra) + b"\n")
            self.out.write(render.to_jsonl(data, extra=extra))
        elif self.fmt == "csv":
            # A header starts every block of another query and every aggregate update.
            header = update or self._csv_header_for != state.index
            self.out.write(render.to_csv(data, header=header, extra=extra))
            self._csv_header_for = state.index
        else:
            if update:
                suffix = f"  (updated {time.strftime('%H:%M:%S')})"
            else:
                suffix = f"  (+{data.num_rows} row{'s' if data.num_rows != 1 else ''})"
            prefix = f"[{state.index}] " if self.several else ""
            # The title fits one line of the terminal: the query is cut, never the suffix.
            budget = max(20, self.console.width - len(prefix) - len(suffix) - 1)
            title = prefix + short_sql(state.query.query, budget) + suffix
            self.console.print(render.rich_table(data, title=title))
        self.out.flush()


def _consume(index: int, stream: Any, inbox: queue.Queue[tuple[int, Any]]) -> None:
    # Runs on its own thread: blocking iteration of one continuous query.
    try:
        for batch in stream:
            inbox.put((index, batch))
    except ArroyoLiteError as e:
        inbox.put((index, e))
    except Exception as e:  # an engine bug must not kill the others silently
        inbox.put((index, ArroyoLiteError(f"query stopped unexpectedly: {e}")))
    finally:
        inbox.put((index, None))


class StopRequested(BaseException):
    """Raised by the SIGTERM handler to leave the main loop like Ctrl-C does.

    A BaseException, like KeyboardInterrupt, so that no ``except Exception`` on the way
    swallows it.
    """


@contextlib.contextmanager
def _signals_stop(stopping: threading.Event) -> Iterator[None]:
    """SIGINT and SIGTERM end the loop: they set ``stopping`` and raise.

    The flag is what the loop checks, so even a raise that lands somewhere that swallows
    it (a library's broad except, a cleanup block) still stops the loop at its next turn.
    """
    if threading.current_thread() is not threading.main_thread():
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


class SourceReporter:
    """Decides which source failures to report: each new error message once, a stop always."""

    def __init__(self) -> None:
        self._reported: dict[str, str | None] = {}
        self._failed: set[str] = set()

    def check(self, statuses: Sequence[SourceStatus]) -> list[tuple[str, str]]:
        """The ``(message, rich style)`` pairs to print for these statuses (often none)."""
        messages: list[tuple[str, str]] = []
        for s in statuses:
            if s.state == SourceState.FAILED and s.table not in self._failed:
                self._failed.add(s.table)
                text = f"error: source '{s.table}' stopped: {s.last_error or 'failed'}"
                messages.append((text, "bold red"))
            elif s.failures and s.last_error and self._reported.get(s.table) != s.last_error:
                plural = "s" if s.failures != 1 else ""
                text = (
                    f"warning: source '{s.table}': {s.last_error} "
                    f"({s.failures} failed poll{plural} so far; retrying)"
                )
                messages.append((text, "yellow"))
            if s.last_error:
                self._reported[s.table] = s.last_error
        return messages


#: Environment variable choosing the CLI's log level (debug, info, warning, error).
LOG_ENV = "ARROYO_LITE_LOG"


class _OneLine(logging.Formatter):
    """``level: message`` on one line: tracebacks are for ``ARROYO_LITE_LOG=debug`` only."""

    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {record.getMessage()}"


class _NotSourceFailures(logging.Filter):
    """Drops the runtime's "source 'x' failed/crashed" records: :class:`SourceReporter`
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
    ``demo``, whose :class:`SourceReporter` prints source failures), the runtime's records of
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


def run_queries(
    session: Session,
    queries: Sequence[Query],
    *,
    fmt: render.OutputFormat,
    duration: float | None,
    out: IO[bytes],
    err_stream: IO[str],
    progress: bool,
    refresh: float = 1.0,
    stop: threading.Event | None = None,
) -> int:
    """Print every query's results until ``duration`` passes or Ctrl-C/SIGTERM; return exit code.

    Incremental queries print each batch of new rows once. Aggregating queries print their
    whole current result when it changed, at most once per ``refresh`` seconds (the latest
    result wins). With no queries, the sources just run (status on stderr). ``stop``, when
    set from another thread, ends the loop like Ctrl-C does. Returns 1 if a query failed
    (its error is printed on stderr), else 0.
    """
    err = Console(file=err_stream, emoji=False, highlight=False, soft_wrap=True)
    text_out = _TextAdapter(out)
    console = Console(file=cast(IO[str], text_out), emoji=False, highlight=False, soft_wrap=False)
    printer = LivePrinter(fmt=fmt, out=out, console=console, several=len(queries) > 1)
    status_line = StatusLine(err_stream, progress)
    reporter = SourceReporter()
    inbox: queue.Queue[tuple[int, Any]] = queue.Queue()
    states: dict[int, _QueryState] = {}
    streams: list[Any] = []
    threads: list[threading.Thread] = []
    exit_code = 0
    deadline = None if duration is None else time.monotonic() + duration

    def emit(state: _QueryState, data: pa.Table, *, update: bool) -> None:
        status_line.clear()
        printer.write(state, data, update=update)
        state.rows_out += data.num_rows

    def flush_pending(state: _QueryState, now: float, *, force: bool = False) -> None:
        if state.pending is None or (not force and now - state.last_print_at < refresh):
            return
        result, state.pending = state.pending, None
        if state.last_printed is not None and result.equals(state.last_printed):
            return
        emit(state, result, update=True)
        state.last_printed = result
        state.last_print_at = now

    stopping = threading.Event()
    with _signals_stop(stopping):
        try:
            for i, q in enumerate(queries, start=1):
                try:
                    stream = session.stream(q.query)
                except ArroyoLiteError as e:
                    status_line.clear()
                    err.print(_positioned(e, q), markup=False)
                    exit_code = 1
                    continue
                states[i] = _QueryState(i, q, incremental=bool(stream.incremental))
                streams.append(stream)
                t = threading.Thread(
                    target=_consume, args=(i, stream, inbox), name=f"query-{i}", daemon=True
                )
                t.start()
                threads.append(t)
            if exit_code:
                return exit_code
            open_streams = len(streams)
            next_status = 0.0
            while True:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                if stopping.is_set() or (stop is not None and stop.is_set()):
                    break
                wait = TICK_SECONDS if deadline is None else min(TICK_SECONDS, deadline - now)
                try:
                    index, item = inbox.get(timeout=max(0.0, wait))
                except queue.Empty:
                    item = index = None
                if index is not None:
                    state = states[index]
                    if item is None:
                        open_streams -= 1
                    elif isinstance(item, ArroyoLiteError):
                        status_line.clear()
                        err.print(_positioned(item, state.query), markup=False)
                        exit_code = 1
                    elif state.incremental:
                        batch = _as_table(item)
                        if batch.num_rows:
                            emit(state, batch, update=False)
                    else:
                        state.pending = _as_table(item)
                now = time.monotonic()
                for state in states.values():
                    flush_pending(state, now)
                if now >= next_status:
                    next_status = now + 0.5
                    statuses = session.status()
                    messages = reporter.check(statuses)
                    if messages:
                        status_line.clear()
                    for text, style in messages:
                        err.print(text, style=style, markup=False)
                    status_line.show(render.status_line(statuses))
                if queries and open_streams == 0 and inbox.empty():
                    break  # every query ended (session closed or all errored)
        except (KeyboardInterrupt, StopRequested):
            pass
        except Exception:
            # A signal that lands inside DuckDB (rendering jsonl, say) interrupts the query,
            # and DuckDB raises its own "Query interrupted" instead of our exception. The
            # flag tells the two apart: a stop is a stop, anything else is a real error.
            if not stopping.is_set():
                raise
        finally:
            for stream in streams:
                with contextlib.suppress(Exception):
                    stream.close()
            # Print what arrived but was held back by the refresh interval.
            with contextlib.suppress(Exception):
                now = time.monotonic()
                for state in states.values():
                    flush_pending(state, now, force=True)
            status_line.clear()
            for t in threads:
                t.join(timeout=5)
    return exit_code


def _as_table(item: pa.Table | pa.RecordBatch) -> pa.Table:
    return item if isinstance(item, pa.Table) else pa.Table.from_batches([item])


def relocate(error: ArroyoLiteError, statement: Query) -> ArroyoLiteError:
    """``error`` pointed into the user's file, at or inside the SELECT it came from.

    The engine reports query errors relative to the query text (file ``<query>``); shifted by
    where the statement starts, they point at the user's own line and column. An error with
    no position gets the statement's.
    """
    where = error.position
    start = statement.position
    if where is None:
        where = start
    elif where.file == "<query>":
        col = where.col + start.col - 1 if where.line == 1 else where.col
        where = SourcePosition(start.file, start.line + where.line - 1, col, where.token)
    else:
        return error
    kind = QueryError if isinstance(error, QueryError) else ArroyoLiteError
    return kind(error.message, position=where, hint=error.hint)


def _positioned(error: ArroyoLiteError, query: Query) -> str:
    return relocate(error, query).format()


class _TextAdapter:
    """A text stream over a binary one (rich writes str; jsonl/csv write bytes to the same fd)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw

    def write(self, text: str) -> int:
        self.raw.write(text.encode("utf-8"))
        return len(text)

    def flush(self) -> None:
        self.raw.flush()

    def isatty(self) -> bool:
        return bool(getattr(self.raw, "isatty", lambda: False)())

    def fileno(self) -> int:
        return int(self.raw.fileno())
