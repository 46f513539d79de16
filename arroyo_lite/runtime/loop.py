"""The asyncio runtime: one event loop on its own daemon thread, one task per source.

Sync callers (the :class:`~arroyo_lite.session.Session`, the REPL, the CLI) never run on this
loop, so a slow query never delays a poll. They hand work to it with :meth:`Runtime.call`
(run a coroutine there and wait for its result) and :meth:`Runtime.start_source`.

Each source runs under a :class:`~arroyo_lite.runtime.supervisor.Supervisor`, which owns its
lifecycle state (``failed``, ``finished``, ``stopped``) and its failure policy; this module only
owns the thread, the loop and the tasks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from arroyo_lite.clock import Clock, SystemClock
from arroyo_lite.connectors.base import (
    Emit,
    Operator,
    SinkOperator,
    SourceOperator,
    SourceState,
    SourceStatus,
)
from arroyo_lite.errors import ArroyoLiteError
from arroyo_lite.runtime.sinks import SinkFeed, SinkInput
from arroyo_lite.runtime.supervisor import Supervisor
from arroyo_lite.secrets import Secrets

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long :meth:`Runtime.close` waits for cancelled sources to finish (seconds).
STOP_TIMEOUT = 5.0


#: Generation-0 threshold used by :func:`tune_gc` (CPython's default is 700).
GC_GEN0_THRESHOLD = 50_000


def tune_gc() -> None:
    """Make garbage collection pauses small enough for many sources in one process.

    With CPython's defaults, full collections walk every object the tables and DuckDB keep
    alive and stall the event loop for 100-300 ms, which shows up as late polls (measured
    with ``benchmarks/scale.py --gc default``). This moves everything alive now into the
    permanent generation (``gc.freeze``) and collects the young generation less often.
    Process-wide: the CLI calls it once the tables exist; library users may call it too.

    Only the young generations are collected before freezing (~1 ms): the oldest holds what
    survived the collections made while importing, where a full collection at ``run``
    start-up found no garbage yet cost ~50 ms before the first row.
    """
    gc.collect(1)
    gc.freeze()
    gc.set_threshold(GC_GEN0_THRESHOLD, 20, 100)


#: Set to ``asyncio`` to keep the standard event loop even when uvloop is installed.
LOOP_ENV = "ARROYO_LITE_LOOP"


def new_event_loop() -> asyncio.AbstractEventLoop:
    """A new event loop: uvloop's when it is installed (the ``fast`` extra), else asyncio's.

    uvloop runs the same aiohttp code with less CPU per request (a libuv loop written in
    Cython: cheaper timers, socket reads and callbacks), which is most of a small poll's cost
    (``benchmarks/scale.py --loop``). ``ARROYO_LITE_LOOP=asyncio`` forces the standard loop.
    """
    if os.environ.get(LOOP_ENV, "").lower() != "asyncio":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


#: A poll that starts this much later than scheduled (milliseconds) counts as behind.
LAG_WARN_MS = 100.0
#: How often the runtime looks at the sources' lag (seconds), and the least time between two
#: warnings while the process stays behind.
LAG_CHECK_EVERY = 5.0
LAG_WARN_EVERY = 60.0


def lag_warning(
    lags_ms: list[float], *, cpu_per_wall: float, polls_per_s: float
) -> str | None:
    """A warning saying how far behind schedule the polls are and why, or ``None`` if they
    are not (no latest poll started :data:`LAG_WARN_MS` late).

    ``lags_ms`` are the sources' latest lags; ``cpu_per_wall`` is this process's CPU seconds
    per wall second over the last check, ``polls_per_s`` the polls it made per second.
    """
    late = sorted(lag for lag in lags_ms if lag > LAG_WARN_MS)
    if not late:
        return None
    ordered = sorted(lags_ms)
    median = ordered[len(ordered) // 2]
    if cpu_per_wall >= 0.8:
        why = (
            f"this process is CPU-bound ({cpu_per_wall:.2f} CPU s per s, {polls_per_s:.0f} "
            "polls/s): more polls are due than it can make; every table is still polled, each "
            "later. Raise poll_interval_ms or split the tables over several processes"
        )
    else:
        why = (
            f"this process used only {cpu_per_wall:.2f} CPU s per s ({polls_per_s:.0f} polls/s): "
            "the machine is busy with other work, or something blocked the event loop"
        )
    return (
        f"polling is behind schedule: {len(late)} of {len(lags_ms)} tables started their "
        f"latest poll more than {LAG_WARN_MS:.0f} ms late (worst {late[-1]:.0f} ms, median "
        f"{median:.0f} ms); {why}"
    )


class RuntimeClosedError(ArroyoLiteError):
    """The runtime was closed; no new work can be scheduled."""


@dataclass
class _Running:
    operator: Operator
    task: asyncio.Task[Any]
    #: What restarting a paused source needs (``None`` for sinks).
    supervisor: Supervisor | None = None
    emit: Emit | None = None
    on_exit: Callable[[Operator], None] | None = None
    secrets: Secrets | None = None


class Runtime:
    """An event loop thread running source operators.

    ``clock`` is only used to timestamp failures. Thread-safe: every public method may be
    called from any thread other than the loop's own (they block until the loop answers).
    """

    def __init__(self, *, clock: Clock | None = None, name: str = "arroyo-lite-runtime") -> None:
        self.clock: Clock = clock or SystemClock()
        self.loop = new_event_loop()
        self._sources: dict[str, _Running] = {}
        self._closed = False
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run_loop, name=name, daemon=True)
        self._thread.start()
        self._started.wait()
        self.submit(self._watch_lag())

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._started.set)
        try:
            self.loop.run_forever()
        finally:
            self.loop.close()

    # --- calling into the loop ----------------------------------------------------------

    def call(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        """Run ``coro`` on the loop and return its result (blocks the caller, not the loop)."""
        if self._closed:
            coro.close()
            raise RuntimeClosedError("the runtime is closed")
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            # Wait in slices: if the loop stops meanwhile (close() on another thread), the
            # coroutine may never run, and waiting on without a check would hang.
            slice_ = 0.1 if deadline is None else min(0.1, max(0.0, deadline - time.monotonic()))
            try:
                return future.result(slice_)
            except concurrent.futures.TimeoutError:
                if not self._thread.is_alive() or (self._closed and not self.loop.is_running()):
                    future.cancel()
                    raise RuntimeClosedError("the runtime is closed") from None
                if deadline is not None and time.monotonic() >= deadline:
                    future.cancel()
                    raise

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop without waiting."""
        if self._closed:
            coro.close()
            raise RuntimeClosedError("the runtime is closed")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run_sync(self, fn: Callable[[], T], timeout: float | None = None) -> T:
        """Run the plain function ``fn`` on the loop thread (to read loop-owned state)."""

        async def wrapper() -> T:
            return fn()

        return self.call(wrapper(), timeout)

    async def _watch_lag(self) -> None:
        """Warn (at most every :data:`LAG_WARN_EVERY` s) while polls run behind schedule."""
        cpu, wall = time.process_time(), time.monotonic()
        polls = 0
        warned_at: float | None = None
        while True:
            await asyncio.sleep(LAG_CHECK_EVERY)
            # A table run by a worker process is watched there, with that process's CPU.
            statuses = [
                s.operator.status
                for s in self._sources.values()
                if not getattr(s.operator, "lag_watched_elsewhere", False)
            ]
            lags = [s.lag_ms for s in statuses if s.lag_ms is not None]
            now_cpu, now_wall = time.process_time(), time.monotonic()
            now_polls = sum(s.polls for s in statuses)
            span = max(now_wall - wall, 1e-9)
            message = lag_warning(
                lags,
                cpu_per_wall=(now_cpu - cpu) / span,
                polls_per_s=(now_polls - polls) / span,
            )
            cpu, wall, polls = now_cpu, now_wall, now_polls
            if message is None:
                if warned_at is not None:
                    log.info("polling is back on schedule")
                warned_at = None
            elif warned_at is None or now_wall - warned_at >= LAG_WARN_EVERY:
                log.warning("%s", message)
                warned_at = now_wall

    # --- sources ------------------------------------------------------------------------

    def start_source(
        self,
        operator: SourceOperator,
        emit: Emit,
        *,
        on_exit: Callable[[Operator], None] | None = None,
        secrets: Secrets | None = None,
    ) -> None:
        """Start ``operator.run(emit)`` as a supervised task; returns once it is scheduled.

        ``on_exit`` is called on the loop when the task ends for any reason. ``secrets`` are
        masked in the status and log messages of unexpected failures.
        """
        name = operator.config.name.lower()

        async def start() -> None:
            if name in self._sources and not self._sources[name].task.done():
                raise ArroyoLiteError(f"source '{operator.config.name}' is already running")
            self._sources[name] = self._launch(operator, emit, on_exit, secrets)

        self.call(start())

    def _launch(
        self,
        operator: SourceOperator,
        emit: Emit,
        on_exit: Callable[[Operator], None] | None,
        secrets: Secrets | None,
    ) -> _Running:
        # On the loop: a new supervisor (one per run of the operator) and its task.
        supervisor = Supervisor(operator, clock=self.clock, secrets=secrets, on_exit=on_exit)
        task = self.loop.create_task(
            supervisor.run(emit), name=f"source:{operator.config.name.lower()}"
        )
        return _Running(operator, task, supervisor, emit, on_exit, secrets)

    def pause_source(self, name: str, timeout: float = STOP_TIMEOUT) -> bool:
        """Cancel a running source so that :meth:`resume_source` can start it again.

        The operator object is kept, and with it its durable state (``context.state``: a
        cursor, the last body's hash) and its counters; its status becomes ``paused``.
        Returns ``False`` (nothing done) if ``name`` is no source or has already ended.
        """
        source = self._sources.get(name.lower())
        if source is None or source.supervisor is None or source.task.done() or self._closed:
            return False
        source.supervisor.pause()
        self.call(_cancel_all([source.task], timeout), timeout + 1.0)
        return True

    def resume_source(self, name: str) -> bool:
        """Start a paused source again (same operator, state and counters); ``False`` if
        ``name`` is not a paused source."""
        key = name.lower()

        async def resume() -> bool:
            source = self._sources.get(key)
            if source is None or source.emit is None or not source.task.done():
                return False
            if source.operator.status.state is not SourceState.PAUSED:
                return False
            assert isinstance(source.operator, SourceOperator)
            self._sources[key] = self._launch(
                source.operator, source.emit, source.on_exit, source.secrets
            )
            return True

        return self.call(resume())

    def forget_source(self, name: str, timeout: float = STOP_TIMEOUT) -> None:
        """Stop a source (or sink) and drop it from :meth:`statuses` (``DROP TABLE``)."""
        self.stop_source(name, timeout)

        async def forget() -> None:
            self._sources.pop(name.lower(), None)

        if not self._closed:
            self.call(forget())

    def statuses(self) -> list[SourceStatus]:
        """A snapshot of every source's status, in start order (read on the loop)."""
        def take() -> list[SourceStatus]:
            return [s.operator.status.snapshot() for s in self._sources.values()]

        if not self._closed:
            try:
                return self.run_sync(take)
            except RuntimeClosedError:
                pass  # closed meanwhile: nothing mutates the statuses any more
        return take()

    def start_sink(self, sink: SinkOperator, *, secrets: Secrets | None = None) -> SinkInput:
        """Start ``sink`` as a supervised task; return the handle that feeds it batches.

        A sink shares the sources' table namespace (a table is one or the other), their
        statuses and :meth:`close`; :meth:`stop_all_sources` leaves it running, so what the
        sources produced can still be written (``SinkInput.finish`` ends it).
        """
        name = sink.config.name.lower()

        async def start() -> SinkInput:
            if name in self._sources and not self._sources[name].task.done():
                raise ArroyoLiteError(f"sink '{sink.config.name}' is already running")
            feed = SinkFeed(sink)
            supervisor = Supervisor(sink, clock=self.clock, secrets=secrets)
            task = self.loop.create_task(supervisor.supervise(feed.drive()), name=f"sink:{name}")
            self._sources[name] = _Running(sink, task)
            return SinkInput(self.call, lambda: self._closed, feed, task)

        return self.call(start())

    def operators(self) -> list[Operator]:
        return [s.operator for s in self._sources.values()]

    def stop_source(self, name: str, timeout: float = STOP_TIMEOUT) -> None:
        """Cancel one source and wait (bounded) for it to finish."""
        source = self._sources.get(name.lower())
        if source is None or self._closed:
            return
        self.call(_cancel_all([source.task], timeout))

    def stop_all_sources(self, timeout: float = STOP_TIMEOUT) -> None:
        """Cancel every source (not the sinks) at once; wait (bounded, in total) for them."""
        if self._closed:
            return
        tasks = [s.task for s in self._sources.values() if isinstance(s.operator, SourceOperator)]
        self.call(_cancel_all(tasks, timeout), timeout + 1.0)

    def wait_sources(self, timeout: float | None = None) -> bool:
        """Block until every source task has ended; ``True`` if they all did in time."""
        tasks = [s.task for s in self._sources.values()]

        async def wait() -> bool:
            if not tasks:
                return True
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            return not pending

        return self.call(wait())

    def close(self, timeout: float = STOP_TIMEOUT) -> None:
        """Cancel every task on the loop, wait up to ``timeout`` for them, stop the thread."""
        if self._closed:
            return

        async def shutdown() -> None:
            current = asyncio.current_task()
            tasks = [t for t in asyncio.all_tasks() if t is not current]
            await _cancel_all(tasks, timeout)

        try:
            self.call(shutdown(), timeout + 1.0)
        except concurrent.futures.TimeoutError:
            log.warning("some sources did not stop within %.1f s", timeout)
        finally:
            self._closed = True
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)

    @property
    def closed(self) -> bool:
        return self._closed


async def _cancel_all(tasks: list[asyncio.Task[Any]], bound: float) -> None:
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=bound)

