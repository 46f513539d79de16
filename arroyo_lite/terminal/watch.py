"""Live output of continuous queries: what ``run``, ``demo`` and the REPL's ``\\watch`` share.

:func:`run_queries` turns every query into a continuous query (``Session.stream``) consumed on
its own thread, which hands batches to the calling thread through a queue. Only the calling
thread writes output, so lines never interleave, and it alone handles the duration limit and
Ctrl-C (SIGINT) / SIGTERM, which end the loop cleanly. Source failures are reported on stderr
(each new message once) while the other sources go on; a progress line shows per-source
counters on a terminal.

On a terminal (``live=True``: ``run`` and ``demo`` without ``--format``, the REPL's
``\\live``), the output is a *live view* instead of a log: :class:`_LiveView` redraws, in
place, one table per query (an aggregate's current result; the latest rows of an append-only
query with a running count) above the sources' status line. On a pipe or with ``--format``
the rows are printed as a log (:class:`_LiveOutput`), exactly as before the live view.

The parts, one job each: :class:`_QueryState` (one query's coalescing of whole results),
:class:`LivePrinter` (rows in an output format), :class:`_Streams` (the consumer threads and
their inbox), :class:`_LiveOutput` / :class:`_LiveView` (everything the loop writes: rows,
errors, source status), and :func:`_watch`, the loop that moves items from the first to the
last.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, cast

import orjson
import pyarrow as pa

from arroyo_lite.connectors.base import SourceState
from arroyo_lite.errors import ArroyoLiteError, QueryError
from arroyo_lite.formats.encode import prepare_json_output
from arroyo_lite.query.connection import open_in_order
from arroyo_lite.sql.statements import Query, Statement
from arroyo_lite.terminal import render
from arroyo_lite.terminal.diagnostics import render_error
from arroyo_lite.terminal.progress import SourceReporter, StatusLine, failed_sources
from arroyo_lite.terminal.signals import StopRequested, stop_on_signals

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from arroyo_lite.query.continuous import ContinuousQuery
    from arroyo_lite.session import Session

#: How often the main thread wakes to refresh status and print coalesced aggregate updates.
TICK_SECONDS = 0.25
#: How often the sources' status is read (failures reported, progress line redrawn).
STATUS_SECONDS = 0.5


def stderr_console(stream: IO[str]) -> Console:
    """The console errors and source messages are printed on (rich is imported here, when
    something is to be printed: a jsonl or csv run prints its rows without it)."""
    from rich.console import Console

    return Console(file=stream, emoji=False, highlight=False, soft_wrap=True)


def short_sql(text: str, width: int = 72) -> str:
    """A query on one line, cut to ``width`` characters (for labels)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


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

    def due(self, now: float, refresh: float, *, force: bool = False) -> pa.Table | None:
        """The pending whole result to print now, or ``None``.

        A result waits until ``refresh`` seconds after the last print (unless ``force``); one
        equal to the last printed result is dropped, and so is an empty one before anything was
        printed (a table that has no rows yet has not changed anything a reader has seen).
        Taking it marks it printed at ``now``.
        """
        if self.pending is None or (not force and now - self.last_print_at < refresh):
            return None
        result, self.pending = self.pending, None
        if self.last_printed is None and result.num_rows == 0:
            return None
        if self.last_printed is not None and result.equals(self.last_printed):
            return None
        self.last_printed = result
        self.last_print_at = now
        return result


@dataclass
class LivePrinter:
    """Writes continuous-query results in one of the output formats.

    Table mode labels each block with the query; jsonl/csv add a ``_query`` field (the
    1-based SELECT number) only when there are several SELECTs, so stdout stays pure data.
    ``console`` (rich's, over ``out``) is what table mode prints with; jsonl and csv need
    none.
    In jsonl every row of a whole-result update carries ``_update`` (1, 2, ... per query),
    so a consumer knows where one result ends; an empty result is the line
    ``{"_update": n}``.
    """

    fmt: render.OutputFormat
    out: IO[bytes]
    console: Console | None
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
            assert self.console is not None, "table output needs a console"
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


#: What a consumer thread hands over: a batch or whole result, an error, or ``None`` (ended).
_Item = pa.Table | pa.RecordBatch | ArroyoLiteError | None


def _consume(index: int, stream: Any, inbox: queue.Queue[tuple[int, _Item]]) -> None:
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


class _Streams:
    """The running continuous queries: one consumer thread each, all feeding one inbox."""

    def __init__(self) -> None:
        self.inbox: queue.Queue[tuple[int, _Item]] = queue.Queue()
        self._streams: list[ContinuousQuery] = []
        self._threads: list[threading.Thread] = []
        #: Streams whose end marker has not been received yet.
        self.open = 0

    def start(self, index: int, stream: ContinuousQuery) -> None:
        """Consume ``stream`` on a new daemon thread; its items arrive tagged with ``index``."""
        self._streams.append(stream)
        thread = threading.Thread(
            target=_consume, args=(index, stream, self.inbox), name=f"query-{index}", daemon=True
        )
        thread.start()
        self._threads.append(thread)
        self.open += 1

    def receive(self, timeout: float) -> tuple[int, _Item] | None:
        """The next ``(index, item)``, or ``None`` after ``timeout`` seconds without one."""
        try:
            index, item = self.inbox.get(timeout=max(0.0, timeout))
        except queue.Empty:
            return None
        if item is None:
            self.open -= 1
        return index, item

    def ended(self) -> bool:
        """Every stream has ended and everything it sent was received."""
        return self.open == 0 and self.inbox.empty()

    def finish(self) -> None:
        """Let every stream yield what the (finished) sources produced, then end."""
        for stream in self._streams:
            stream.finish(end_of_input=True)

    def close(self) -> None:
        """Close every stream (errors ignored: we are leaving)."""
        for stream in self._streams:
            with contextlib.suppress(Exception):
                stream.close()

    def join(self) -> None:
        """Wait (bounded) for the consumer threads, once the streams are closed."""
        for thread in self._threads:
            thread.join(timeout=5)


_output_prepared = threading.Event()


def prepare_output(fmt: render.OutputFormat) -> None:
    """Start making what printing rows in ``fmt`` needs, in the background; at most once a
    process.

    ``jsonl``: DuckDB writes the JSON lines, in a small database of their own (~15-25 ms CPU
    to make, mostly without the GIL), opened on the thread that opens the engine's
    (:func:`~arroyo_lite.query.connection.open_in_order`). ``run`` calls this before it
    compiles its SQL, so both are made while the compiler is imported, one after the
    other, not while the first row waits; :class:`_LiveOutput` calls it too (a no-op then).
    Other formats need nothing.
    """
    if fmt != "jsonl" or _output_prepared.is_set():
        return
    _output_prepared.set()
    open_in_order(prepare_json_output)


class _LiveOutput:
    """Everything the watch loop writes: rows on stdout, errors and source status on stderr.

    The progress line is cleared before anything else is written to the terminal.
    """

    def __init__(
        self,
        *,
        fmt: render.OutputFormat,
        out: IO[bytes],
        err_stream: IO[str],
        progress: bool,
        several: bool,
        source: str | None,
    ) -> None:
        self._err_stream = err_stream
        self._err: Console | None = None
        console = None
        if fmt == "table":
            from rich.console import Console

            console = Console(
                file=cast(IO[str], _TextAdapter(out)),
                emoji=False,
                highlight=False,
                soft_wrap=False,
            )
        prepare_output(fmt)
        self.printer = LivePrinter(fmt=fmt, out=out, console=console, several=several)
        self.status_line = StatusLine(err_stream, progress)
        self.reporter = SourceReporter()
        self.source = source

    @property
    def err(self) -> Console:
        """stderr's console, made when the first message is printed."""
        if self._err is None:
            self._err = stderr_console(self._err_stream)
        return self._err

    def rows(self, state: _QueryState, data: pa.Table, *, update: bool) -> None:
        self.status_line.clear()
        self.printer.write(state, data, update=update)
        state.rows_out += data.num_rows

    def error(self, error: ArroyoLiteError, query: Query) -> None:
        """Print a query's error, pointed into the user's file."""
        self.status_line.clear()
        text = render_error(relocate(error, query), self.source, file=query.position.file)
        self.err.print(text, markup=False)

    def sources(self, session: Session) -> None:
        """Report new source failures and redraw the progress line."""
        statuses = session.status()
        messages = self.reporter.check(statuses)
        if messages:
            self.status_line.clear()
        for text, style in messages:
            self.err.print(text, style=style, markup=False)
        self.status_line.show(render.status_line(statuses))

    def close(self) -> None:
        self.status_line.clear()


@dataclass
class _Panel:
    """What the live view shows of one query: its latest rows (append-only queries keep a
    bounded tail and a running count) or its current whole result."""

    rows: pa.Table | None = None
    total: int = 0
    updated: str | None = None


class _LiveView:
    """The live view (a terminal's stdout): every query's table redrawn in place with rich's
    ``Live``, the sources' status line below them; errors and source warnings print above.

    Redraws are coalesced to one per :data:`TICK_SECONDS` (and one when the status is read).
    What a query shows is cut to a share of the terminal's height, so the view never
    scrolls. A seam for later plans: a panel shows whatever whole result the query hands
    over, so a windowed plan that hands over still-open windows can label them here.
    """

    def __init__(
        self,
        *,
        out: IO[bytes],
        queries: Sequence[Query],
        source: str | None,
    ) -> None:
        from rich.console import Console
        from rich.live import Live

        self.console = Console(
            file=cast(IO[str], _TextAdapter(out)), emoji=False, highlight=False, soft_wrap=False
        )
        self.queries = list(queries)
        self.panels: dict[int, _Panel] = {i: _Panel() for i in range(1, len(queries) + 1)}
        self.reporter = SourceReporter()
        self.source = source
        self.status = "starting"
        self._dirty = False
        self._drawn_at = 0.0
        self._live = Live(
            console=self.console,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
            vertical_overflow="crop",
        )
        self._live.start()

    def _budget(self) -> int:
        """Rows each query may show: an equal share of the terminal, less titles and rules."""
        n = max(1, len(self.queries))
        return max(1, (self.console.height - 2) // n - 5)

    def rows(self, state: _QueryState, data: pa.Table, *, update: bool) -> None:
        panel = self.panels.setdefault(state.index, _Panel())
        if update:
            panel.rows, panel.total = data, data.num_rows
            panel.updated = time.strftime("%H:%M:%S")
            state.updates += 1
        else:
            tail = data if panel.rows is None else pa.concat_tables([panel.rows, data])
            keep = self._budget()
            panel.rows = tail.slice(max(0, tail.num_rows - keep))
            panel.total += data.num_rows
        state.rows_out += data.num_rows
        self._dirty = True
        if time.monotonic() - self._drawn_at >= TICK_SECONDS:
            self._draw()

    def error(self, error: ArroyoLiteError, query: Query) -> None:
        text = render_error(relocate(error, query), self.source, file=query.position.file)
        self._live.console.print(text, markup=False, style="red")

    def sources(self, session: Session) -> None:
        statuses = session.status()
        for text, style in self.reporter.check(statuses):
            self._live.console.print(text, style=style, markup=False)
        self.status = render.status_line(statuses)
        self._draw()

    def _render(self) -> RenderableType:
        from rich.console import Group
        from rich.text import Text

        several = len(self.queries) > 1
        budget = self._budget()
        parts: list[RenderableType] = []
        for index, query in enumerate(self.queries, start=1):
            panel = self.panels.get(index, _Panel())
            prefix = f"[{index}] " if several else ""
            if panel.rows is None:
                suffix = "  (waiting for rows)"
            elif panel.updated is not None:
                suffix = f"  (updated {panel.updated})"
            else:
                suffix = f"  ({panel.total} row{'s' if panel.total != 1 else ''} so far)"
            width = max(20, self.console.width - len(prefix) - len(suffix) - 1)
            title = prefix + short_sql(query.query, width) + suffix
            if panel.rows is None:
                parts.append(Text(title, style="bold"))
            elif panel.updated is not None:
                parts.append(render.rich_table(panel.rows, title=title, max_rows=budget))
            else:
                shown = min(panel.rows.num_rows, budget)
                count = (
                    f"latest {shown} of {panel.total} rows"
                    if shown < panel.total
                    else render.count_text(shown, panel.total)
                )
                parts.append(
                    render.rich_table(
                        panel.rows, title=title, max_rows=budget, tail=True, count=count
                    )
                )
            parts.append(Text(""))
        parts.append(Text(self.status, style="dim", no_wrap=True, overflow="ellipsis"))
        return Group(*parts)

    def _draw(self) -> None:
        self._live.update(self._render(), refresh=True)
        self._dirty = False
        self._drawn_at = time.monotonic()

    def close(self) -> None:
        """Draw the final state and leave it on the screen."""
        with contextlib.suppress(Exception):
            self._draw()
        self._live.stop()


def _as_table(item: pa.Table | pa.RecordBatch) -> pa.Table:
    return item if isinstance(item, pa.Table) else pa.Table.from_batches([item])


class _Watch:
    """One run of :func:`run_queries`: the queries' states, their streams, and the output."""

    def __init__(
        self,
        session: Session,
        output: _LiveOutput | _LiveView,
        refresh: float,
        *,
        changes: bool = False,
    ) -> None:
        self.session = session
        self.output = output
        self.refresh = refresh
        #: Updating queries yield their changes (shown with a ``_op`` column of + / -).
        self.changes = changes
        self.streams = _Streams()
        self.states: dict[int, _QueryState] = {}
        self.failed = False

    def start(self, queries: Sequence[Query]) -> None:
        """Start every query; one that cannot start is reported and marks the run failed."""
        for index, query in enumerate(queries, start=1):
            try:
                stream = self.session.stream(  # every digit
                    query.query, nanoseconds=True, changelog=self.changes
                )
            except ArroyoLiteError as e:
                self.output.error(e, query)
                self.failed = True
                continue
            self.states[index] = _QueryState(index, query, incremental=bool(stream.incremental))
            self.streams.start(index, stream)

    def receive(self, timeout: float) -> None:
        """Handle the next item from the streams, if one comes within ``timeout`` seconds.

        Incremental batches print at once; a whole result waits in its state for
        :meth:`flush`.
        """
        received = self.streams.receive(timeout)
        if received is None:
            return
        index, item = received
        if item is None:
            return  # that stream ended
        state = self.states[index]
        if isinstance(item, ArroyoLiteError):
            self.output.error(item, state.query)
            self.failed = True
        elif state.incremental:
            batch = render.change_kinds(_as_table(item))
            if batch.num_rows:
                self.output.rows(state, batch, update=False)
        else:
            state.pending = _as_table(item)

    def end_of_input(self) -> None:
        """Every source has ended: each query yields its last rows, then ends. A source that
        failed makes the run a failure (its input is incomplete)."""
        if any(s.state is SourceState.FAILED for s in self.session.status()):
            self.failed = True
        self.streams.finish()

    def flush(self, *, force: bool = False) -> None:
        """Print the whole results that are due (all held-back ones with ``force``)."""
        now = time.monotonic()
        for state in self.states.values():
            result = state.due(now, self.refresh, force=force)
            if result is not None:
                self.output.rows(state, result, update=True)

    def close(self) -> None:
        """Close the streams, print what was held back, clear the progress line."""
        self.streams.close()
        with contextlib.suppress(Exception):
            self.flush(force=True)
        self.output.close()
        self.streams.join()


def _watch(
    watch: _Watch,
    *,
    deadline: float | None,
    stopped: Callable[[], bool],
    has_queries: bool,
    end_with_sources: bool = True,
) -> None:
    """Move items from the streams to the output until the deadline, a stop, or every
    query has ended (session closed or all errored); read the sources' status meanwhile.
    With ``end_with_sources``, once every source has ended by itself (a bounded pipeline)
    each query gets its last rows (the end of input closes its windows), then it returns."""
    next_status = 0.0
    draining = False
    session = watch.session
    while True:
        if end_with_sources and not draining and session.sources_finished():
            draining = True
            watch.end_of_input()
            # The INSERTs write their last rows too: a failure there is the run's outcome.
            session.end_inserts()
        if draining and not has_queries and not session.inserts_running():
            return
        now = time.monotonic()
        if (deadline is not None and now >= deadline) or stopped():
            return
        watch.receive(TICK_SECONDS if deadline is None else min(TICK_SECONDS, deadline - now))
        watch.flush()
        now = time.monotonic()
        if now >= next_status:
            next_status = now + STATUS_SECONDS
            watch.output.sources(watch.session)
        if has_queries and watch.streams.ended() and not (draining and session.inserts_running()):
            return


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
    source: str | None = None,
    end_with_sources: bool = True,
    live: bool = False,
    changes: bool = False,
) -> int:
    """Print every query's results until ``duration`` passes or Ctrl-C/SIGTERM; return exit code.

    Incremental queries print each batch of new rows once. Aggregating queries print their
    whole current result when it changed, at most once per ``refresh`` seconds (the latest
    result wins). With no queries, the sources just run (status on stderr). When every
    source has ended by itself (a bounded pipeline), each query's last rows are printed and
    the loop ends (unless ``end_with_sources`` is false: then it goes on, e.g. to show what
    retention removes later). ``stop``, when
    set from another thread, ends the loop like Ctrl-C does. Returns 1 if a query failed
    (its error is printed on stderr, with an excerpt of ``source``, the SQL text the queries
    come from, when given) or a source failed for good or never succeeded (each listed on
    stderr, then a last line ``run ended with N failed source(s): 'a', ...``), else 0.
    ``live`` (a terminal, table format, with queries) shows the live view (see the module
    docstring) instead of a log of tables. ``changes``: an updating query prints its
    changes as they come, each row with its kind in a first column ``_op`` (``+`` added,
    ``-`` retracted), instead of whole results.
    """
    output: _LiveOutput | _LiveView
    if live and queries:
        # A live view only exists while it is shown: refresh on every update, not per second.
        output, refresh = _LiveView(out=out, queries=queries, source=source), TICK_SECONDS
    else:
        output = _LiveOutput(
            fmt=fmt,
            out=out,
            err_stream=err_stream,
            progress=progress,
            several=len(queries) > 1,
            source=source,
        )
    watch = _Watch(session, output, refresh, changes=changes)
    deadline = None if duration is None else time.monotonic() + duration
    stopping = threading.Event()

    def stopped() -> bool:
        return stopping.is_set() or (stop is not None and stop.is_set())

    with stop_on_signals(stopping):
        try:
            watch.start(queries)
            if not watch.failed:
                _watch(
                    watch,
                    deadline=deadline,
                    stopped=stopped,
                    has_queries=bool(queries),
                    end_with_sources=end_with_sources,
                )
        except (KeyboardInterrupt, StopRequested):
            pass
        except Exception:
            # A signal that lands inside DuckDB (rendering jsonl, say) interrupts the query,
            # and DuckDB raises its own "Query interrupted" instead of our exception. The
            # flag tells the two apart: a stop is a stop, anything else is a real error.
            if not stopping.is_set():
                raise
        finally:
            watch.close()
    failed = failed_sources(session.status())
    if failed:
        # The last line says it: a run whose tables never delivered is not a success.
        err = stderr_console(err_stream)
        for line in failed:
            err.print(f"error: source {line}", style="bold red", markup=False)
        plural = "s" if len(failed) != 1 else ""
        names = ", ".join(line.split(" ", 1)[0] for line in failed)
        err.print(
            f"run ended with {len(failed)} failed source{plural}: {names}",
            style="bold red",
            markup=False,
        )
    broken = session.insert_failures()
    if broken:
        err = stderr_console(err_stream)
        for line in broken:
            err.print(f"error: {line}", style="bold red", markup=False)
    return 1 if watch.failed or failed or broken else 0


def relocate(error: ArroyoLiteError, statement: Statement) -> ArroyoLiteError:
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
        where = start.shift(where.line, where.col, where.token)
    else:
        return error
    kind = QueryError if isinstance(error, QueryError) else ArroyoLiteError
    return kind(error.message, position=where, hint=error.hint)


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
