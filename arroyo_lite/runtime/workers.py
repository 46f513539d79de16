"""``--workers N`` (an arroyo-lite extension): sources run in N worker processes, one session.

One event loop cannot make 10,000 polls a second on a small machine (each costs a couple of
hundred microseconds of CPU), so a session may run its source operators in worker processes
(:mod:`.worker_process`) and keep everything else: the store, queries, sinks, ``--state-dir``.

In the session, each table a worker runs is a :class:`RemoteOperator`: a source operator like
any other to the :class:`~arroyo_lite.runtime.loop.Runtime`, the
:class:`~arroyo_lite.runtime.supervisor.Supervisor` and the
:class:`~arroyo_lite.runtime.persist.Persister`, whose ``run`` starts the real operator in
its worker and then delivers what arrives from there:

* rows, as Arrow record batches rebuilt over the received IPC bytes, to the same ``emit``
  (the store), and with them the source-state changes made in the same step of the worker,
  applied to this operator's ``context.state`` in one step here: the state the persister
  saves is always the one describing the rows stored, as in one process;
* status: counters, ``last_error`` (masked in the worker), lag, and the reported state
  (``running``, ``backoff``, ``rate_limited``, ``unauthorized``); ``failed`` and
  ``finished`` end ``run`` here, so this process's supervisor records them as usual;
* log records (masked) and lag warnings (naming the worker's own CPU use).

Stopping (Ctrl-C, SIGTERM, ``--for``, ``DROP TABLE``, ``\\pause``) cancels ``run``, which asks
the worker to stop the operator and waits (bounded) for its last rows. A paused table's
operator is kept in its worker and resumed there.

A worker process that dies (killed, out of memory) is reported as an error, and started
again; its tables start again from the state this process stored, so a row it had sent but
this process had not stored is polled again, never lost, and one it had stored is not
emitted twice (for sources that keep state, as ``emit_behavior = 'changed'``). Each table
counts the loss as a failure with a ``last_error`` saying so. A worker dying
:data:`MAX_RESTARTS` times within :data:`RESTART_WINDOW` seconds fails its tables instead.

Which tables run in workers: sources whose connector is in :data:`WORKER_CONNECTORS`
(their operators need nothing from the session's process but their config, variables and
state). Others (websocket, sse, webhook, single_file, filesystem, plugins) stay in the
session's process. Tables are assigned to the worker with the fewest.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from arroyo_lite.connectors.base import (
    Emit,
    SourceContext,
    SourceOperator,
    SourceState,
    SourceStatus,
)
from arroyo_lite.errors import ArroyoLiteError, SourceError
from arroyo_lite.runtime import worker_wire as wire
from arroyo_lite.runtime.supervisor import FINAL, REPORTABLE

if TYPE_CHECKING:
    import pyarrow as pa

    from arroyo_lite.config import TableConfig

log = logging.getLogger("arroyo_lite.workers")

#: Connectors whose tables may run in a worker process.
WORKER_CONNECTORS = frozenset({"polling_http", "impulse"})
#: A worker that dies this many times within :data:`RESTART_WINDOW` seconds fails its tables.
MAX_RESTARTS = 3
RESTART_WINDOW = 60.0
#: How long a stopping table waits for its worker to confirm (seconds).
STOP_ACK_TIMEOUT = 5.0
#: How long closing waits for a worker process to exit before killing it (seconds).
EXIT_TIMEOUT = 5.0
#: The most read from a worker's socket at once (bytes; a read holds many frames).
READ_SIZE = 1 << 20
#: Status counters that add up over a table's runs in successive worker processes.
ADDITIVE = (
    "polls",
    "failures",
    "rows",
    "bytes",
    "dropped_rows",
    "unchanged_polls",
    "deduplicated_rows",
    "updated_rows",
    "deleted_rows",
)

_ERROR_INDEX = wire.STATUS_FIELDS.index("last_error")


class WorkerError(SourceError):
    """A worker process could not be started, or died too often (its tables fail)."""


class RemoteOperator(SourceOperator):
    """A source table whose real operator runs in a worker process (see the module docstring).

    ``context`` is the session's: its ``state`` is the copy the persister saves, kept equal
    to the state of the rows stored.
    """

    #: Its worker watches its lag (and knows that process's CPU): the runtime here does not.
    lag_watched_elsewhere: ClassVar[bool] = True

    def __init__(self, config: TableConfig, context: SourceContext, pool: WorkerPool) -> None:
        #: The latest status values from the worker not yet copied into the status.
        self._unread: tuple[Any, ...] | None = None
        super().__init__(config, context)
        self.tid = next(_ids)
        self.pool = pool
        self.worker: _Worker | None = None
        self._emit: Emit | None = None
        self._ended: asyncio.Future[tuple[str, str | None, str | None]] | None = None
        self._stop_ack: asyncio.Future[None] | None = None
        #: Counters of earlier worker processes (after a worker died).
        self._base: dict[str, int] = {}
        #: Whether ``run`` is running (a paused or stopped table is not started again when
        #: its worker is, and takes no rows).
        self.running = False

    async def run(self, emit: Emit) -> None:
        loop = asyncio.get_running_loop()
        self._emit = emit
        self._ended = loop.create_future()
        self.running = True
        try:
            worker = await self.pool.attach(self)
            worker.send_start(self)
            how, message, hint = await self._ended
        except asyncio.CancelledError:
            await self._stop_in_worker()
            loop.call_soon(self._release_if_final)
            raise
        finally:
            self.running = False  # (rows that come later are not this run's: dropped)
        self.pool.detach(self)
        if how == "failed":
            raise SourceError(message or "failed in its worker process", hint=hint)

    async def _stop_in_worker(self) -> None:
        """Ask the worker to stop the operator; wait (bounded) for its last rows."""
        worker = self.worker
        if worker is None or not worker.alive:
            return
        ack = self._stop_ack = asyncio.get_running_loop().create_future()
        worker.send(wire.STOP, self.tid)
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            await asyncio.wait_for(asyncio.shield(ack), STOP_ACK_TIMEOUT)

    def _release_if_final(self) -> None:
        # Called once the supervisor has set the state: a paused table keeps its operator
        # in the worker (to resume it there), a stopped one does not.
        if self.status.state in FINAL:
            self.pool.detach(self, forget=True)

    # --- what the worker sends ----------------------------------------------------------

    def deliver(
        self,
        batch: pa.RecordBatch | None,
        changed: dict[str, bytes] | None,
        deleted: list[str] | None,
    ) -> None:
        """Store one batch (if any) and apply the state changes made with it, in one step."""
        if self._emit is None or not self.running:
            return
        try:
            if batch is not None:
                self._emit(batch)
        except Exception as e:  # as an emit failing in one process: this table stops
            message = e.message if isinstance(e, ArroyoLiteError) else f"{type(e).__name__}: {e}"
            self.ended("failed", message, getattr(e, "hint", None))
            if self.worker is not None:
                self.worker.send(wire.STOP, self.tid)
            return
        if changed:
            self.context.state.update(changed)
        if deleted:
            state = self.context.state
            for key in deleted:
                state.pop(key, None)

    @property
    def status(self) -> SourceStatus:
        """The table's status, with the latest values its worker sent copied in."""
        if self._unread is not None:
            self._apply(self._unread)
        return self._status

    @status.setter
    def status(self, value: SourceStatus) -> None:
        self._status = value

    def apply_status(self, values: tuple[Any, ...]) -> None:
        """Take the status fields the worker sent (every table's, once a second).

        When only counters and times moved (the state is the one here, and the error is
        none or the one here: nearly always; an operator keeps its last error), the values
        are kept as they came and copied into the status when it is next read
        (:attr:`status`): 10,000 tables' statuses a second arrive, and are read only when
        someone asks (``arroyo_status``, the supervisor). Each values tuple is a whole
        status, so keeping only the latest loses nothing."""
        status = self._status
        error = values[1 + _ERROR_INDEX]
        if values[0] == status.state and (error is None or error == status.last_error):
            self._unread = values
            return
        self._apply(values)

    def _apply(self, values: tuple[Any, ...]) -> None:
        self._unread = None
        status = self._status
        fields = vars(status)
        error, error_at = status.last_error, status.last_error_at_ns
        fields.update(zip(wire.STATUS_FIELDS, values[1:], strict=True))
        if error is not None and values[1 + _ERROR_INDEX] is None:
            status.last_error, status.last_error_at_ns = error, error_at  # the last one stays
        if self._base:
            for name, base in self._base.items():
                fields[name] += base
        if self.worker is not None:
            status.extra["worker"] = self.worker.index
        if status.state == values[0]:
            return  # what reporting it again would leave as it is
        state = SourceState(values[0])
        if state in REPORTABLE:
            self.report(state)
        elif state is SourceState.UNAUTHORIZED and status.state not in FINAL:
            status.state = state  # as the operator itself sets it

    def ended(self, how: str, message: str | None, hint: str | None) -> None:
        if self._stop_ack is not None and not self._stop_ack.done():
            self._stop_ack.set_result(None)
        if how != "stopped" and self._ended is not None and not self._ended.done():
            self._ended.set_result((how, message, hint))

    def rebase(self) -> None:
        """Its operator is gone with its worker: the counters of the next one add up."""
        self._base = {name: getattr(self.status, name) for name in ADDITIVE}

    def worker_lost(self, message: str, *, restarted: bool) -> None:
        """Its worker died while it ran: count it, say it; with ``restarted``, later
        counters add up."""
        status = self.status
        status.failures += 1
        status.last_error = message
        status.last_error_at_ns = time.time_ns()
        self.rebase()
        if self._stop_ack is not None and not self._stop_ack.done():
            self._stop_ack.set_result(None)
        if not restarted:
            self.ended("failed", message, "see the error above about the worker process")


_ids = itertools.count(1)


class ChildProcess:
    """A worker's OS process: started by CPython's own fork and exec, awaited through a pidfd.

    Not ``asyncio.create_subprocess_exec``: on uvloop (the runtime's loop when installed) that
    forks through libuv and runs Python's after-fork hooks in the child before it execs. In a
    process whose other threads are running (DuckDB's, Arrow's, the store's compaction) the
    child can then crash before it becomes a worker: under load the workers were "killed by
    SIGSEGV" at start, their faulthandler stack in ``create_subprocess_exec``.
    :class:`subprocess.Popen` forks and execs in C with no Python in the child.
    """

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self._popen = popen
        self.pid = popen.pid

    @classmethod
    def start(cls, argv: list[str], pass_fds: tuple[int, ...]) -> ChildProcess:
        return cls(
            subprocess.Popen(
                argv,
                pass_fds=pass_fds,
                stdin=subprocess.DEVNULL,
                # Nothing of a worker's may reach stdout: it holds the session's rows (jsonl).
                stdout=subprocess.DEVNULL,
                # Its own session: a Ctrl-C at the terminal goes to the session's process,
                # which stops the workers in order (their last rows are stored).
                start_new_session=True,
            )
        )

    @property
    def returncode(self) -> int | None:
        """The exit code (negative: the signal that killed it), or None while it runs."""
        return self._popen.poll()

    def kill(self) -> None:
        self._popen.kill()

    async def wait(self) -> int:
        """Wait, without blocking the loop, until the process exits; its exit code."""
        code = self._popen.poll()
        if code is not None:
            return code
        try:
            pidfd = os.pidfd_open(self.pid)
        except OSError:  # a kernel before 5.3: a thread waits instead
            return await asyncio.to_thread(self._popen.wait)
        loop = asyncio.get_running_loop()
        exited: asyncio.Future[None] = loop.create_future()

        def readable() -> None:
            if not exited.done():
                exited.set_result(None)

        loop.add_reader(pidfd, readable)
        try:
            await exited
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)
        return self._popen.wait()


class _Worker:
    """The session's handle on one worker process."""

    def __init__(self, pool: WorkerPool, index: int) -> None:
        self.pool = pool
        self.index = index
        self.remotes: dict[int, RemoteOperator] = {}
        self.process: ChildProcess | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.stats: wire.WorkerStats | None = None
        self.deaths: list[float] = []
        self._ready: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._outgoing: dict[str, list[Any]] = {}
        self._scheduled = False
        self._schemas: dict[bytes, pa.Schema] = {}

    @property
    def alive(self) -> bool:
        return self.writer is not None and not self.writer.is_closing()

    async def ready(self) -> None:
        if self._ready is None or (self._ready.done() and not self.alive):
            self._ready = asyncio.get_running_loop().create_task(self._spawn())
        await asyncio.shield(self._ready)

    async def _spawn(self) -> None:
        parent, child = socket.socketpair()
        try:
            self.process = ChildProcess.start(
                [sys.executable, "-m", "arroyo_lite.runtime.worker_process", str(child.fileno())],
                pass_fds=(child.fileno(),),
            )
        except OSError as e:
            parent.close()
            raise WorkerError(f"cannot start worker process {self.index}: {e}") from e
        finally:
            child.close()
        reader, self.writer = await asyncio.open_connection(sock=parent)
        levels = {
            name: logger.level
            for name, logger in logging.root.manager.loggerDict.items()
            if name.startswith("arroyo_lite")
            and isinstance(logger, logging.Logger)
            and logger.level != logging.NOTSET
        }
        self.writer.write(wire.frame((wire.HELLO, self.index, dict(self.pool.env), levels)))
        self._reader = asyncio.get_running_loop().create_task(self._read(reader))

    def send_start(self, remote: RemoteOperator) -> None:
        self.send(wire.START, (remote.tid, remote.config, dict(remote.context.state)))

    def send(self, kind: str, item: Any) -> None:
        """Queue ``item`` for a ``kind`` message; all queued in one step go in one frame."""
        self._outgoing.setdefault(kind, []).append(item)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        outgoing, self._outgoing = self._outgoing, {}
        if self.alive:
            assert self.writer is not None
            for kind, items in outgoing.items():
                self.writer.write(wire.frame((kind, items)))

    async def _read(self, reader: asyncio.StreamReader) -> None:
        frames = wire.FrameReader()
        try:
            while data := await reader.read(READ_SIZE):
                for message in frames.feed(data):
                    self._dispatch(message)
        except (OSError, ValueError, EOFError) as e:
            log.error("worker process %d: unreadable message (%s)", self.index, e)
        finally:
            if self.writer is not None:
                self.writer.close()
        await self._gone()

    def _dispatch(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        remotes = self.remotes
        if kind == wire.DATA:
            _, groups, alone, statuses = message
            for schema_ipc, batch_ipc, entries in groups:
                schema = self._schemas.get(schema_ipc)
                if schema is None:
                    schema = self._schemas[schema_ipc] = wire.read_schema(schema_ipc)
                batch = wire.read_batch(batch_ipc, schema)
                for tid, offset, rows, changed, deleted in entries:
                    if (remote := remotes.get(tid)) is not None:
                        remote.deliver(batch.slice(offset, rows), changed, deleted)
            for tid, changed, deleted in alone:
                if (remote := remotes.get(tid)) is not None:
                    remote.deliver(None, changed, deleted)
            for tid, values in statuses:
                if (remote := remotes.get(tid)) is not None:
                    remote.apply_status(values)
        elif kind == wire.STATUS:
            for tid, values in message[1]:
                if (remote := remotes.get(tid)) is not None:
                    remote.apply_status(values)
        elif kind == wire.ENDED:
            _, tid, how, text, hint = message
            if (remote := remotes.get(tid)) is not None:
                remote.ended(how, text, hint)
        elif kind == wire.LOG:
            _, level, name, text = message
            logging.getLogger(name).log(level, "%s", text)
        elif kind == wire.STATS:
            self.stats = message[1]

    async def _gone(self) -> None:
        """The socket closed: the process exited (closing) or died (restart, or fail)."""
        process = self.process
        code = None
        if process is not None:
            with contextlib.suppress(TimeoutError):
                code = await asyncio.wait_for(process.wait(), EXIT_TIMEOUT)
            if code is None:  # its socket is gone but it runs on: it must not poll twice
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self.pool.closing:
            return
        now = time.monotonic()
        self.deaths = [t for t in self.deaths if now - t < RESTART_WINDOW] + [now]
        pid = process.pid if process is not None else "?"
        how = _exit_description(code)
        restart = len(self.deaths) < MAX_RESTARTS
        running = [remote for remote in self.remotes.values() if remote.running]
        if restart:
            log.error(
                "worker process %d (pid %s) %s; starting it again, with its %d tables "
                "resuming from what the session stored",
                self.index, pid, how, len(running),
            )  # fmt: skip
        else:
            log.error(
                "worker process %d (pid %s) %s, the %d%s time in %.0f s; its %d tables stop",
                self.index, pid, how, len(self.deaths), _nth(len(self.deaths)),
                RESTART_WINDOW, len(running),
            )  # fmt: skip
        message = f"worker process {self.index} (pid {pid}) {how}" + (
            "; restarted from the rows stored" if restart else "; too often, not restarted"
        )
        for remote in self.remotes.values():
            if remote.running:
                remote.worker_lost(message, restarted=restart)
            else:
                remote.rebase()  # paused: resumed later in the new process
        if not restart:
            self.remotes.clear()
            return
        try:
            await self.ready()
        except WorkerError as e:
            log.error("%s", e.message)
            for remote in running:
                remote.worker_lost(e.message, restarted=False)
            return
        # Every table running on it now (one attached while it was down too: its start was
        # lost; a second start of a running table does nothing). A paused one starts when
        # it is resumed.
        for remote in list(self.remotes.values()):
            if remote.running:
                self.send_start(remote)

    async def close(self) -> None:
        if self.writer is None:
            return
        if self.alive:
            self.writer.write(wire.frame((wire.EXIT,)))
            with contextlib.suppress(OSError):
                await self.writer.drain()
        if self._reader is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._reader), EXIT_TIMEOUT)
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), EXIT_TIMEOUT)
            if process.returncode is None:
                process.kill()
                await process.wait()


def _exit_description(code: int | None) -> str:
    if code is None:
        return "stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"was killed by {name}"
    return f"exited with code {code}"


def _nth(n: int) -> str:
    return {1: "st", 2: "nd", 3: "rd"}.get(n if n < 20 else n % 10, "th")


class WorkerPool:
    """N worker processes (started on first use) running source tables for one session.

    Its coroutines and callbacks run on the session's runtime loop. ``env`` is the session's
    variables (sent to each worker once, over its socket).
    """

    def __init__(self, size: int, *, env: Mapping[str, str]) -> None:
        if size < 2:
            raise ValueError("a worker pool has at least 2 workers (1 means none)")
        self.size = size
        self.env = env
        self.closing = False
        self._workers = [_Worker(self, i + 1) for i in range(size)]

    @staticmethod
    def hosts(config: TableConfig) -> bool:
        """Whether ``config``'s source may run in a worker process."""
        return (config.connector or "") in WORKER_CONNECTORS

    def remote(self, config: TableConfig, context: SourceContext) -> RemoteOperator:
        return RemoteOperator(config, context, self)

    async def attach(self, remote: RemoteOperator) -> _Worker:
        """The worker (started if need be) that runs ``remote``: the one it ran on before
        (a paused table resumes there), else the one with the fewest tables."""
        if self.closing:
            raise WorkerError("the session is closing")
        worker = remote.worker
        if worker is None or remote.tid not in worker.remotes:
            worker = min(self._workers, key=lambda w: len(w.remotes))
            worker.remotes[remote.tid] = remote
            remote.worker = worker
        await worker.ready()
        return worker

    def detach(self, remote: RemoteOperator, *, forget: bool = False) -> None:
        worker = remote.worker
        if worker is None:
            return
        worker.remotes.pop(remote.tid, None)
        remote.worker = None
        if forget and worker.alive:
            worker.send(wire.FORGET, remote.tid)

    def stats(self) -> list[wire.WorkerStats]:
        """The latest :class:`~.worker_wire.WorkerStats` of each started worker."""
        return [w.stats for w in self._workers if w.stats is not None]

    def pids(self) -> list[int]:
        return [w.process.pid for w in self._workers if w.process is not None]

    async def close(self) -> None:
        """Stop every worker process (its tables are stopped first by the runtime)."""
        self.closing = True
        await asyncio.gather(*(w.close() for w in self._workers))

