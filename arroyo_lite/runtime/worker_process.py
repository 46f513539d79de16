"""The child side of ``--workers N``: a process that runs source operators for one session.

Started by :mod:`arroyo_lite.runtime.workers` as ``python -m arroyo_lite.runtime.worker_process
FD``, where ``FD`` is its end of a Unix socket pair; everything else (the session's variables,
the tables) comes over that socket (:mod:`.worker_wire`), never in the command line or the
environment, so no secret shows in ``ps``.

Each table runs here exactly as in the session's process: its connector builds the operator,
which polls and decodes on this process's event loop (uvloop when installed). What it emits,
and its source state as it is after those rows, are sent together between two event-loop
steps, within :data:`FLUSH_DELAY` (:class:`_Outbox`), so the session stores a table's rows
and the state that describes them in one step too. The operator's own status (counters,
``last_error``, reported state) is compared with the one sent once every
:data:`STATUS_EVERY` seconds and sent when it changed (with the table's rows when it has
some then, else within a quarter of that); its end (finished, failed: the message masked)
at once, after its last rows. Log records are forwarded, masked;
a lag warning names this worker's own CPU use.

The process ignores SIGINT (the session decides when to stop), and exits when the session
says so or when the socket closes (the session's process is gone).
"""

from __future__ import annotations

import asyncio
import collections
import gc
import logging
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING, Any

from arroyo_lite.clock import SystemClock
from arroyo_lite.connectors.base import SourceContext, SourceOperator, SourceState
from arroyo_lite.errors import SourceError
from arroyo_lite.runtime import worker_wire as wire
from arroyo_lite.runtime.loop import (
    LAG_CHECK_EVERY,
    LAG_WARN_EVERY,
    lag_warning,
    new_event_loop,
    tune_gc,
)
from arroyo_lite.secrets import Secrets

if TYPE_CHECKING:
    import pyarrow as pa

    from arroyo_lite.config import TableConfig

log = logging.getLogger("arroyo_lite.workers")

#: Seconds between two status messages (only tables whose status changed are sent).
STATUS_EVERY = 1.0
#: Seconds between two :class:`~.worker_wire.WorkerStats` messages.
STATS_EVERY = 1.0
#: The longest a table's rows wait in a worker before they are sent (seconds). Each message
#: costs a write here, a read in the session and a wake-up of each process: at 5,000 polls
#: a second, 20 ms makes ~100 tables' polls one message (5 ms, ~25, cost 5-10 % more CPU
#: per poll in both processes in alternated runs of ``scale.py --workers 2``); short
#: against any interval.
FLUSH_DELAY = 0.02
#: Poll lateness at or above this (ms) is counted in one bucket.
LATENESS_CAP_MS = 10_000
#: Seconds after the last table was started (or dropped) here before the live objects are
#: frozen out of the cyclic collector's sight (:meth:`Worker.settle_gc`): tables arrive in
#: many ``START`` messages while the session creates them, and are frozen once, together.
GC_SETTLE_AFTER = 1.0
#: The young generation's threshold in a worker (the session's is ``tune_gc``'s 50,000).
#: A worker's young passes each walk the objects its tables replace as they poll (a new
#: timer, future, status tuple per poll, the old one freed: no net allocation, so the
#: young generation holds ~170,000 of them at 5,000 tables), and each pass stalled the loop
#: 60-110 ms: at 50,000 one every ~15 s per worker, and in ``scale.py --workers 2
#: --timeline`` nearly every poll more than 100 ms late came in the second of one. At
#: 200,000 a pass comes every minute or so in steady polling (none is useful then: each
#: found no garbage); cyclic garbage, when some path makes it, waits for at most this many
#: allocations (tens of MB) before it is collected.
GC_GEN0_THRESHOLD = 200_000


def _tune_gc() -> None:
    """:func:`tune_gc`, with this process's young-generation threshold
    (:data:`GC_GEN0_THRESHOLD`)."""
    tune_gc()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(GC_GEN0_THRESHOLD, middle, oldest)


class _TrackedState(MutableMapping[str, bytes]):
    """A table's source state that remembers which keys changed since it was last sent."""

    def __init__(self, initial: dict[str, bytes], on_change: Any) -> None:
        self._data = dict(initial)
        self._changed: set[str] = set()
        self._deleted: set[str] = set()
        self._on_change = on_change

    def __getitem__(self, key: str) -> bytes:
        return self._data[key]

    def get(self, key: str, default: Any = None) -> Any:
        # The mixin's get goes through a KeyError per missing key: twice a poll.
        return self._data.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def pop(self, key: str, *default: Any) -> Any:
        # The mixin's pop goes through a KeyError per missing key: twice a poll
        # (conditional requests forget validators a response did not send).
        if key in self._data:
            value = self._data[key]
            del self[key]
            return value
        if default:
            return default[0]
        raise KeyError(key)

    @property
    def dirty(self) -> bool:
        """Whether a key was set or deleted since the last :meth:`take_changes`."""
        return bool(self._changed or self._deleted)

    def __setitem__(self, key: str, value: bytes) -> None:
        self._data[key] = value
        self._changed.add(key)
        self._deleted.discard(key)
        self._on_change()

    def __delitem__(self, key: str) -> None:
        del self._data[key]
        self._deleted.add(key)
        self._changed.discard(key)
        self._on_change()

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def take_changes(self) -> tuple[dict[str, bytes] | None, list[str] | None]:
        """The keys set (with their values) and deleted since the last call."""
        changed = {k: self._data[k] for k in self._changed} if self._changed else None
        deleted = sorted(self._deleted) if self._deleted else None
        self._changed.clear()
        self._deleted.clear()
        return changed, deleted


class _Hosted:
    """One table run here: its operator, secrets, task and what was last sent of it."""

    def __init__(
        self, tid: int, operator: SourceOperator, secrets: Secrets, state: _TrackedState
    ) -> None:
        self.tid = tid
        self.operator = operator
        self.secrets = secrets
        #: Its operator's ``context.state``.
        self.state = state
        self.task: asyncio.Task[None] | None = None
        #: The schema of its latest batch, and that schema's IPC bytes (its group's key).
        self.schema: pa.Schema | None = None
        self.schema_ipc = b""
        self.status_sent: tuple[Any, ...] | None = None
        #: When its status is next compared with the one sent (``time.monotonic``).
        self.status_due = 0.0

    def mask(self, text: str) -> str:
        return (self.secrets | self.operator.learned_secrets).mask(text)


class _Outbox:
    """Rows and state changes waiting to be sent, at most :data:`FLUSH_DELAY` seconds.

    A flush runs between two event-loop steps, never inside one: an operator that emits
    and then updates its state (without awaiting in between) has done both by then, so each
    table's rows go with the state that describes them (its latest: later rows of the same
    table are in the same message). Waiting a little makes one message (one write here, one
    read in the session) of the polls of many tables instead of one per poll.
    """

    def __init__(self, send: Any, status: Any) -> None:
        self._send = send
        self._status = status
        self._batches: dict[_Hosted, list[pa.RecordBatch]] = {}
        self._touched: dict[_Hosted, None] = {}
        self._timer: asyncio.TimerHandle | None = None

    def batch(self, hosted: _Hosted, batch: pa.RecordBatch) -> None:
        batches = self._batches.get(hosted)
        if batches is None:
            self._batches[hosted] = [batch]
        else:
            batches.append(batch)
        self.touch(hosted)

    def touch(self, hosted: _Hosted) -> None:
        self._touched[hosted] = None
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_DELAY, self.flush)

    def flush(self) -> None:
        """Send what waits now (also called directly, between two steps)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._touched:
            return
        # Batches of the same schema (of any tables) are sent as one batch, which the
        # session cuts back into each table's batches (zero-copy slices). Per batch this
        # runs for every poll of the worker: dictionary lookups and a tuple, no more.
        groups: dict[bytes, _Group] = {}
        alone: list[tuple[Any, ...]] = []  # state changes without rows
        # The statuses due of the tables here ride along, while their objects are warm
        # (a pass over every table once a second was a burst of cache misses).
        statuses: list[tuple[Any, ...]] = []
        now = time.monotonic()
        pending = self._batches
        # A little early rather than late: a table polled every STATUS_EVERY seconds would
        # otherwise miss being due by a hair at each of its polls.
        early = now + STATUS_EVERY / 4
        for hosted in self._touched:
            if hosted.status_due <= early and (item := self._status(hosted, now)) is not None:
                statuses.append(item)
            changed = deleted = None
            if hosted.state.dirty:
                changed, deleted = hosted.state.take_changes()
            batches = pending.pop(hosted, None)
            if batches is None:
                if changed or deleted:
                    alone.append((hosted.tid, changed, deleted))
                continue
            last = len(batches) - 1
            for i, batch in enumerate(batches):
                schema = batch.schema
                if schema is not hosted.schema and not (
                    hosted.schema is not None and schema.equals(hosted.schema, check_metadata=True)
                ):
                    hosted.schema_ipc = wire.schema_bytes(schema)
                hosted.schema = schema
                group = groups.get(hosted.schema_ipc)
                if group is None:
                    group = groups[hosted.schema_ipc] = _Group()
                rows = batch.num_rows
                if i == last:
                    group.entries.append((hosted.tid, group.rows, rows, changed, deleted))
                else:
                    group.entries.append((hosted.tid, group.rows, rows, None, None))
                group.members.append(batch)
                group.rows += rows
        self._touched.clear()
        sent = [
            (schema, wire.batch_bytes(wire.concat(group.members)), group.entries)
            for schema, group in groups.items()
        ]
        if sent or alone or statuses:
            self._send((wire.DATA, sent, alone, statuses))


class _Group:
    """The batches of one schema in a ``DATA`` message being built, and their entries."""

    __slots__ = ("members", "entries", "rows")

    def __init__(self) -> None:
        self.members: list[pa.RecordBatch] = []
        self.entries: list[tuple[Any, ...]] = []
        self.rows = 0


class _Forward(logging.Handler):
    """Sends this process's log records to the session, masked of every table's secrets."""

    def __init__(self, worker: Worker) -> None:
        super().__init__()
        self.worker = worker

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
            if record.exc_info and record.exc_info[0] is not None:
                text += "\n" + "".join(traceback.format_exception(*record.exc_info)).rstrip()
            self.worker.send((wire.LOG, record.levelno, record.name, self.worker.mask(text)))
        except Exception:  # a log record must never break the worker
            self.handleError(record)


class Worker:
    """The tables of one worker process, and its side of the socket."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.index = 0
        self.env: dict[str, str] = {}
        self.tables: dict[int, _Hosted] = {}
        self.outbox = _Outbox(self.send, self.status_item)
        self.stats = wire.WorkerStats(index=0, pid=os.getpid())
        self._lateness: collections.Counter[int] = collections.Counter()
        self._config_secrets = Secrets()
        self._gc_started = 0.0
        self._gc_timer: asyncio.TimerHandle | None = None
        self._gc_dropped = False
        self._gc_started = 0.0

    # --- sending ------------------------------------------------------------------------

    def send(self, message: tuple[Any, ...]) -> None:
        if not self.writer.is_closing():
            self.writer.write(wire.frame(message))

    def mask(self, text: str) -> str:
        """``text`` without any secret of any table here (configured or learned)."""
        secrets = self._config_secrets
        for hosted in self.tables.values():
            secrets = secrets | hosted.operator.learned_secrets
        return secrets.mask(text)

    def _send_status(self, hosted: _Hosted) -> None:
        values = wire.status_values(hosted.operator.status)
        if values != hosted.status_sent:
            hosted.status_sent = values
            self.send((wire.STATUS, [(hosted.tid, values)]))

    def status_item(self, hosted: _Hosted, now: float) -> tuple[Any, ...] | None:
        """``hosted``'s status as an item of a ``STATUS`` list, if it changed since it was
        last sent; it is compared again :data:`STATUS_EVERY` after ``now``."""
        hosted.status_due = now + STATUS_EVERY
        values = wire.status_values(hosted.operator.status)
        if values == hosted.status_sent:
            return None
        hosted.status_sent = values
        return (hosted.tid, values)

    # --- messages from the session ------------------------------------------------------

    def hello(self, index: int, env: dict[str, str], levels: dict[str, int]) -> None:
        self.index = index
        self.env = env
        self.stats.index = index
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        root = logging.getLogger("arroyo_lite")
        root.addHandler(_Forward(self))
        root.propagate = False
        _tune_gc()  # as the session's process does: no long collector pauses between polls
        gc.callbacks.append(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        """Times each pass of the cyclic collector (reported in the stats: a pause here
        makes every poll due meanwhile late)."""
        if phase == "start":
            self._gc_started = time.perf_counter()
            return
        pause = time.perf_counter() - self._gc_started
        stats = self.stats
        stats.gc_count += 1
        stats.gc_s += pause
        if pause > stats.gc_max_s:
            stats.gc_max_s = pause

    def gc_later(self) -> None:
        """Freeze the live objects :data:`GC_SETTLE_AFTER` seconds from now (later, if a
        freeze was due already: tables come in many ``START`` messages)."""
        if self._gc_timer is not None:
            self._gc_timer.cancel()
        self._gc_timer = asyncio.get_running_loop().call_later(GC_SETTLE_AFTER, self.settle_gc)

    def settle_gc(self) -> None:
        """Move every object alive now out of the collector's sight (:func:`tune_gc`).

        Frozen only at start-up (in :meth:`hello`) the heap held no table yet: the objects
        of 5,000 tables (client, decoder, status, timers: ~550,000) aged into the oldest
        generation, and a full pass of the collector walked them all: 0.3 s of CPU with
        the loop stalled (measured), every poll due meanwhile late. Such a pass comes
        after 100 x 20 young passes (hours of polling, but it comes). A table lives as
        long as the process: frozen once built, it is never walked again.

        A frozen object in a reference cycle is never freed, so a table dropped here (see
        :meth:`dropped`) unfroze everything; then the next freeze collects in full first
        (one pass, only when tables are started after a drop).
        """
        self._gc_timer = None
        if self._gc_dropped:
            self._gc_dropped = False
            gc.collect()
        _tune_gc()

    def dropped(self) -> None:
        """A table's operator left this worker: let the collector see everything again (its
        objects may hold cycles), until the next freeze (:meth:`settle_gc`)."""
        if not self._gc_dropped:
            self._gc_dropped = True
            gc.unfreeze()

    def start(self, tid: int, config: TableConfig, state: dict[str, bytes]) -> None:
        hosted = self.tables.get(tid)
        if hosted is None:
            hosted = self._build(tid, config, state)
            if hosted is None:
                return
        if hosted.task is not None and not hosted.task.done():
            return  # running already
        hosted.task = asyncio.get_running_loop().create_task(
            self._run(hosted), name=f"source:{config.name.lower()}"
        )

    def _build(self, tid: int, config: TableConfig, state: dict[str, bytes]) -> _Hosted | None:
        from arroyo_lite.connectors.registry import get_connector

        connector = get_connector(config.connector or "")
        secrets = connector.secrets(config, self.env)
        self._config_secrets = self._config_secrets | secrets
        holder: list[_Hosted] = []
        tracked = _TrackedState(state, lambda: self.outbox.touch(holder[0]))
        context = SourceContext(clock=SystemClock(), state=tracked, env=self.env)
        try:
            operator = connector.make_operator(config, context)
        except Exception as e:
            message = secrets.mask(f"cannot start source '{config.name}': {e}")
            self.send((wire.ENDED, tid, "failed", message, getattr(e, "hint", None)))
            return None
        if not self.stats.rss_start_bytes:
            self.stats.rss_start_bytes = wire.resident_bytes()  # the connector's modules imported
        hosted = _Hosted(tid, operator, secrets, tracked)
        holder.append(hosted)
        if hasattr(operator, "poll_started"):
            # polling_http's instrumentation hook: poll-start lateness of this process.
            operator.poll_started = self._poll_started
        self.tables[tid] = hosted
        return hosted

    def _poll_started(self, due: float, started: float) -> None:
        self.stats.poll_starts += 1
        self._lateness[min(int((started - due) * 1000.0), LATENESS_CAP_MS)] += 1

    async def _run(self, hosted: _Hosted) -> None:
        """Run one operator; report how it ended (after its last rows and status)."""
        operator = hosted.operator
        status = operator.status

        def reporter(state: SourceState) -> None:
            status.state = state

        operator.bind_reporter(reporter)
        status.state = SourceState.STARTING
        how, message, hint = "finished", None, None
        try:
            await operator.run(lambda batch: self.outbox.batch(hosted, batch))
        except asyncio.CancelledError:
            how = "stopped"
        except SourceError as e:
            how, message, hint = "failed", hosted.mask(e.message), e.hint
        except Exception as e:  # a bug in an operator stops its table only, as in one process
            trace = hosted.mask("".join(traceback.format_exception(e)))
            log.error("source '%s' crashed:\n%s", operator.config.name, trace)
            how, message = "failed", hosted.mask(f"internal error: {type(e).__name__}: {e}")
        self.outbox.flush()
        self._send_status(hosted)
        self.send((wire.ENDED, hosted.tid, how, message, hint))
        if how != "stopped":
            self.tables.pop(hosted.tid, None)  # finished or failed: never started again
            self.dropped()

    async def stop(self, tids: list[int]) -> None:
        tasks = []
        for tid in tids:
            hosted = self.tables.get(tid)
            if hosted is None or hosted.task is None or hosted.task.done():
                self.send((wire.ENDED, tid, "stopped", None, None))
                continue
            hosted.task.cancel()
            tasks.append(hosted.task)
        if tasks:
            await asyncio.wait(tasks)

    def forget(self, tids: list[int]) -> None:
        for tid in tids:
            hosted = self.tables.pop(tid, None)
            if hosted is not None and hosted.task is not None:
                hosted.task.cancel()
        self.dropped()

    # --- periodic reports ---------------------------------------------------------------

    async def report_status(self) -> None:
        """Send the statuses due that no ``DATA`` message carried (tables without rows)."""
        while True:
            await asyncio.sleep(STATUS_EVERY / 4)  # so a status is never 1.25 s late
            now = time.monotonic()
            items = [
                item
                for hosted in self.tables.values()
                if hosted.status_due <= now and (item := self.status_item(hosted, now))
            ]
            if items:
                self.send((wire.STATUS, items))

    def current_stats(self) -> wire.WorkerStats:
        stats = self.stats
        stats.at = time.monotonic()
        stats.cpu_s = time.process_time()
        stats.rss_bytes = wire.resident_bytes()
        stats.tables = len(self.tables)
        stats.lateness_ms = dict(self._lateness)
        return stats

    async def report_stats(self) -> None:
        while True:
            self.send((wire.STATS, self.current_stats()))
            await asyncio.sleep(STATS_EVERY)

    async def watch_lag(self) -> None:
        """Warn (at most every ``LAG_WARN_EVERY`` s) while this worker's polls run late."""
        cpu, wall, polls = time.process_time(), time.monotonic(), 0
        warned_at: float | None = None
        while True:
            await asyncio.sleep(LAG_CHECK_EVERY)
            statuses = [h.operator.status for h in self.tables.values()]
            lags = [s.lag_ms for s in statuses if s.lag_ms is not None]
            now_cpu, now_wall = time.process_time(), time.monotonic()
            now_polls = sum(s.polls for s in statuses)
            span = max(now_wall - wall, 1e-9)
            message = lag_warning(
                lags, cpu_per_wall=(now_cpu - cpu) / span, polls_per_s=(now_polls - polls) / span
            )
            cpu, wall, polls = now_cpu, now_wall, now_polls
            if message is None:
                warned_at = None
            elif warned_at is None or now_wall - warned_at >= LAG_WARN_EVERY:
                log.warning("worker process %d: %s", self.index, message)
                warned_at = now_wall


async def serve(sock: socket.socket) -> None:
    """Take the session's messages until it says ``EXIT`` or goes away."""
    reader, writer = await asyncio.open_connection(sock=sock)
    worker = Worker(writer)
    background: list[asyncio.Task[None]] = []
    try:
        while (message := await wire.read_message(reader)) is not None:
            kind = message[0]
            if kind == wire.HELLO:
                worker.hello(*message[1:])
                background = [
                    asyncio.create_task(coro)
                    for coro in (worker.report_status(), worker.report_stats(), worker.watch_lag())
                ]
            elif kind == wire.START:
                for tid, config, state in message[1]:
                    worker.start(tid, config, state)
                worker.gc_later()
            elif kind == wire.STOP:
                # Not awaited here: other messages (more starts) keep being read meanwhile.
                background.append(asyncio.create_task(worker.stop(message[1])))
            elif kind == wire.FORGET:
                worker.forget(message[1])
            elif kind == wire.EXIT:
                break
    except Exception as e:  # a bug here: said (masked) to the session, which starts us again
        log.error(
            "worker process %d failed: %s",
            worker.index,
            worker.mask("".join(traceback.format_exception(e))),
        )
        raise SystemExit(1) from None
    finally:
        await worker.stop(list(worker.tables))
        for task in background:
            task.cancel()
        worker.send((wire.STATS, worker.current_stats()))
        if not writer.is_closing():
            try:
                await writer.drain()
                writer.close()
            except OSError:
                pass  # the session is gone: nobody to tell


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the session stops us (EXIT, or EOF)
    sock = socket.socket(fileno=int(argv[1]))
    loop = new_event_loop()
    try:
        loop.run_until_complete(serve(sock))
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
