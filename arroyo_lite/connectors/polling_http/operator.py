"""The running ``polling_http`` source: poll on a schedule, decode, emit, survive failures.

:class:`PollingHttpOperator` is one asyncio task per table (whose plain one-page polls are
made by event-loop callbacks while it waits, :mod:`.callback_polls`). Each poll runs the table's
:class:`~.poll.PollStep` (the requests of its paginator, sent through its auth: the same
step ``arroyo-lite test`` runs), decodes each 2xx body with the table's decoder
(:mod:`arroyo_lite.formats`) and emits one RecordBatch per page whose ``_timestamp`` is the
arrival time. Scheduling and backoff rules live in :mod:`.backoff`, the ``changed``
comparison in :mod:`.changes`, ``dedup``'s key state in :mod:`.keys`, the metadata columns in
:mod:`.metadata`. Per page, off the loop when the body is big: compare (``changed``), decode
(through ``records.path``), fill metadata columns, drop rows already emitted (``dedup``);
then, on the loop, emit the rows and record the state that describes them in one step (so
``--state-dir`` saves rows and key state together).

Failures never stop the polling: each is counted in :attr:`status`, kept (masked) as
``last_error``, logged, and followed by another poll (after a backoff for transient ones).
Only a :class:`~arroyo_lite.errors.FatalSourceError` leaves :meth:`PollingHttpOperator.run`:
bad data with ``bad_data = 'fail'``, or a header naming an unset variable.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Hashable, MutableMapping
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pyarrow as pa

from arroyo_lite.clock import SystemClock
from arroyo_lite.connectors.base import Emit, SourceOperator, SourceState
from arroyo_lite.connectors.polling_http import keys, snapshot
from arroyo_lite.connectors.polling_http.backoff import BackoffPolicy, next_tick
from arroyo_lite.connectors.polling_http.callback_polls import (
    CallbackPolls,
    Handoff,
    request_of,
)
from arroyo_lite.connectors.polling_http.changes import (
    ROWS_STATE_KEY,
    ChangeTracker,
    body_digest,
    poll_digest,
    rows_digest,
)
from arroyo_lite.connectors.polling_http.client import SharedSession, shared_session
from arroyo_lite.connectors.polling_http.coalesce import Coalescer, Continuation, coalescer
from arroyo_lite.connectors.polling_http.conditional import Validators
from arroyo_lite.connectors.polling_http.early import EarlyDecodes
from arroyo_lite.connectors.polling_http.h1 import RawResponse
from arroyo_lite.connectors.polling_http.http import (
    HttpError,
    HttpResponse,
    HttpSession,
    TransientHttpError,
)
from arroyo_lite.connectors.polling_http.metadata import MetadataColumns, PageInfo
from arroyo_lite.connectors.polling_http.options import PollingHttpOptions
from arroyo_lite.connectors.polling_http.poll import PollReport, PollStep, poll_step
from arroyo_lite.connectors.polling_http.poll_state import PollMemory
from arroyo_lite.connectors.polling_http.ratelimit import RateGate, host_pace
from arroyo_lite.connectors.polling_http.scheduling import PollSlots, admission
from arroyo_lite.errors import ArroyoLiteError, FatalSourceError, SourceError
from arroyo_lite.formats.records import RecordPath
from arroyo_lite.formats.together import together_key
from arroyo_lite.secrets import Secrets

if TYPE_CHECKING:
    from arroyo_lite.config import TableConfig
    from arroyo_lite.connectors.polling_http.templates import PollValues
    from arroyo_lite.formats import Decoder, DecodeResult

logger = logging.getLogger("arroyo_lite.polling_http")
_T = TypeVar("_T")

#: Statuses that mean "credentials rejected" (state ``unauthorized``, polled with backoff).
REJECTED_STATUSES = frozenset({401, 403})
#: Bodies larger than this are hashed and decoded on a worker thread; smaller ones inline,
#: where a thread hop would cost more than the work. A decoder that runs DuckDB queries
#: (virtual or JSON columns) always runs on a worker thread: a query must not block the loop.
OFFLOAD_BYTES = 256 * 1024


def page_decoder(config: TableConfig, options: PollingHttpOptions) -> Decoder:
    """The decoder of one page's body: the table's format, through ``records.path``."""
    from arroyo_lite.formats import make_decoder

    records = RecordPath.parse(options.records_path) if options.records_path else None
    return make_decoder(config, records=records)


@dataclass(frozen=True, slots=True)
class _Page:
    """What the off-loop work made of one page. ``result`` is ``None`` for an unchanged page
    (``changed``); ``batch`` is what to emit; ``key_state`` the key state after it."""

    digest: bytes | None
    result: DecodeResult | None
    batch: pa.RecordBatch | None = None
    skipped: int = 0
    key_state: bytes | None = None


@dataclass
class _PollOutput:
    """The rows and source state of one poll's pages, committed together once every page
    is in: readers see a poll's rows as one batch (never the first pages without the rest),
    and the state that describes them (seen keys) changes in the same step (see persist)."""

    batches: list[pa.RecordBatch] = field(default_factory=list)
    state: dict[str, bytes] = field(default_factory=dict)
    #: The pages' row digests (``changed.compare = 'rows'`` over several pages).
    digests: list[bytes] = field(default_factory=list)

    def commit(self, emit: Emit, state: MutableMapping[str, bytes]) -> int:
        """Emit the poll's rows and update ``state``; return how many rows were emitted."""
        if len(self.batches) == 1:
            emit(self.batches[0])
        elif self.batches:
            (batch,) = pa.Table.from_batches(self.batches).combine_chunks().to_batches()
            emit(batch)
        state.update(self.state)
        return sum(b.num_rows for b in self.batches)


class PollingHttpOperator(SourceOperator):
    """Polls ``config.connector_options.endpoint`` until cancelled.

    Contract: the first poll starts at once; the next starts ``poll_interval_ms`` after the
    previous start (an overrun is followed at once, without pile-up); transient failures back
    off exponentially up to ``max_backoff_ms`` and honour ``Retry-After``. ``run`` returns only
    by cancellation or raises ``FatalSourceError``; it reports ``running``/``backoff`` and its
    supervisor sets ``stopped``/``failed``. All times come from ``context.clock``; header
    secrets from ``context.env``.
    """

    @property
    def options(self) -> PollingHttpOptions:
        options = self.config.connector_options
        if not isinstance(options, PollingHttpOptions):
            raise FatalSourceError(
                f"table '{self.config.name}' has no polling_http options "
                f"(got {type(options).__name__})"
            )
        return options

    _step: PollStep
    _decoder: Decoder
    _tracker: ChangeTracker | None
    _metadata: MetadataColumns
    #: Row digests (``changed.compare = 'rows'``) and key hashes (``dedup``).
    _hasher: keys.RowHasher | None = None
    _memory: PollMemory
    _validators: Validators | None
    _compare_rows: bool = False
    _keys: keys.KeyState | None = None
    #: ``snapshot``: the rows of the last snapshot, by key.
    _snapshot: snapshot.SnapshotState | None = None
    #: Whether the previous decoded poll dropped records (to log a streak of them once).
    _dropping: bool = False
    _gate: RateGate | None = None
    #: The key under which inline pages are decoded together with other tables' (``None``:
    #: decoded alone), see :mod:`.coalesce`.
    _together: Hashable | None = None
    #: The loop's coalescer (:mod:`.coalesce`) when ``_together`` is set.
    _coalescer: Coalescer
    #: Whether the table's request names per-poll values (``[[ now ]]``, ...).
    _per_poll: bool = False
    #: Whether the table has metadata columns to fill (asked once, not per page).
    _has_metadata: bool = False
    #: Whether one-page polls are emitted from their decode's flush (:meth:`_deferred`).
    _defer: bool = False
    #: The last deferred poll's decode, until taken; a failure the task must raise.
    _pending: Continuation | None = None
    _fatal: Exception | None = None
    #: The future the task sleeps on between polls (:meth:`_sleep`, :meth:`_park`).
    _sleeper: asyncio.Future[Any] | None = None
    #: The report of one-page polls (no request lines, no page count: :meth:`_one_page`);
    #: shared, as nothing writes to a report that is not detailed.
    _quiet: PollReport = PollReport(detailed=False)
    #: The table's callback polls in its current run, when its polls qualify (tests and
    #: benchmarks read their statistics).
    callbacks: CallbackPolls | None = None

    @property
    def learned_secrets(self) -> Secrets:
        """The credentials the table sends now, an OAuth2 access token included."""
        step = getattr(self, "_step", None)
        return step.secrets if step is not None else Secrets()

    def poll_started(self, due: float, started: float) -> None:
        """Called as each poll starts, with its due and actual monotonic times.

        ``due`` is one interval after the previous start (or the end of a backoff): after an
        overrun the poll starts at once, but late against ``due``.

        Does nothing; an instrumentation hook (``benchmarks/scale.py`` measures lateness
        with it). Runs on the event loop: must be cheap and must not block.
        """

    async def run(self, emit: Emit) -> None:
        """Poll until cancelled, calling ``emit`` with each non-empty decoded batch."""
        try:
            options = self.options
            step = poll_step(options, self.context.env, now=self.context.clock.monotonic)
            self._step = step
            try:
                self._decoder = page_decoder(self.config, options)
            except (ArroyoLiteError, ValueError) as e:
                # An undecodable format or a bad virtual column: no retry can fix the config.
                raise FatalSourceError(str(e), hint=getattr(e, "hint", None)) from e
            self._setup_modes(options, step)
            rate = options.rate_limit_requests_per_second
            self._gate = RateGate(
                self.context.clock,
                pace=host_pace(options.endpoint, rate) if rate is not None else None,
                paced_origin=step.request.url,
                on_wait=self._rate_limited,
            )
            if self._snapshot is not None and (restored := self._snapshot.current()):
                emit(restored)  # the table starts empty: fill it with the resumed rows
            async with shared_session() as session:
                await self._loop(session, step, options, emit)
        except FatalSourceError as e:
            # The supervisor records and reports the failure; here it is only a trace.
            logger.debug("source %s failed: %s", self.config.name, e.message)
            raise

    def _setup_modes(self, options: PollingHttpOptions, step: PollStep) -> None:
        """Metadata columns, the ``changed`` tracker, ``dedup``'s key state (resumed), the
        per-poll values' memory and the conditional-request validators."""
        self._validators = (
            Validators(self.context.state) if options.conditional_requests else None
        )
        uses = step.template.uses if step.template is not None else frozenset()
        self._per_poll = bool(uses)
        interval_ns = options.poll_interval_ms * 1_000_000
        self._memory = PollMemory(self.context.state, step.cursor, interval_ns, uses)
        self._metadata = MetadataColumns(self.config, step.secrets)
        self._has_metadata = bool(self._metadata)
        content = self.config.decode_schema().names
        state = self.context.state
        self._compare_rows = (
            options.emit_behavior == "changed" and options.changed_compare == "rows"
        )
        self._tracker = None
        if options.emit_behavior == "changed":
            key = ROWS_STATE_KEY if self._compare_rows else None
            self._tracker = ChangeTracker(state, key) if key else ChangeTracker(state)
        if self._compare_rows:
            self._hasher = keys.RowHasher((), content)
        if options.emit_behavior == "dedup":
            self._hasher = keys.RowHasher(self.config.primary_key, content)
            max_keys, now = options.dedup_max_keys, self.context.clock.time_ns()
            self._keys = self._resumed(
                keys.STATE_KEY,
                "key state",
                lambda saved: keys.KeyState.from_bytes(saved, max_keys, now=now),
                keys.KeyState(max_keys),
            )
            self.status.state_keys = len(self._keys)
            self.status.state_bytes = self._keys.nbytes
        if options.emit_behavior == "snapshot":
            self._setup_snapshot(content)
        if self._tracker is None and self._hasher is None:
            self._together = together_key(self._decoder)
            self._coalescer = coalescer()

    def _setup_snapshot(self, content: list[str]) -> None:
        """``snapshot``'s hasher and rows of the last snapshot (resumed from the state)."""
        self._hasher = keys.RowHasher(self.config.primary_key, content)
        schema = self.config.output_schema()
        self._snapshot = self._resumed(
            snapshot.STATE_KEY,
            "snapshot",
            lambda saved: snapshot.SnapshotState.from_bytes(saved, schema),
            snapshot.SnapshotState(schema),
        )
        self.status.state_keys = len(self._snapshot)
        self.status.state_bytes = self._snapshot.nbytes

    def _resumed(self, key: str, what: str, load: Callable[[bytes], _T], fresh: _T) -> _T:
        """The state saved under ``key`` loaded with ``load``, or ``fresh`` when there is
        none or it is unreadable (a ``ValueError``: said in a warning, never fatal)."""
        saved = self.context.state.get(key)
        if saved is None:
            return fresh
        try:
            return load(saved)
        except ValueError as e:
            logger.warning(
                "source %s: saved %s unreadable (%s); starting without it",
                self.config.name, what, e,
            )  # fmt: skip
            return fresh

    async def _loop(
        self,
        session: HttpSession,
        step: PollStep,
        options: PollingHttpOptions,
        emit: Emit,
    ) -> None:
        clock = self.context.clock
        interval = options.poll_interval_ms / 1000.0
        policy = BackoffPolicy(interval=interval, max_backoff=options.max_backoff_ms / 1000.0)
        due = clock.monotonic()
        slots: PollSlots = admission()
        gate = self._gate
        loop = asyncio.get_running_loop()
        # The system clock's sleep is this operator's own timer (see _sleep); then a
        # one-page poll decoded with others is emitted from the decode itself (_deferred).
        own_sleep = type(clock) is SystemClock
        self._defer = own_sleep and self._together is not None
        self.report(SourceState.RUNNING)
        try:
            await self._polls(session, step, emit, slots, gate, loop, own_sleep, policy, due)
        except asyncio.CancelledError:
            pending = self._pending
            if pending is not None and not pending.done():
                # Stopped before the last poll's rows were taken: that poll was not made.
                pending.cancel()
                self.status.polls -= 1
            raise

    async def _polls(
        self,
        session: HttpSession,
        step: PollStep,
        emit: Emit,
        slots: PollSlots,
        gate: RateGate | None,
        loop: asyncio.AbstractEventLoop,
        own_sleep: bool,
        policy: BackoffPolicy,
        due: float,
    ) -> None:
        clock = self.context.clock
        interval = policy.interval
        transient_streak = 0
        # ``due`` is when the schedule wanted this poll (one interval after the previous start);
        # ``scheduled`` is when it will actually start (``due``, or at once after an overrun).
        scheduled = due
        # The instrumentation hook, when a subclass or the instance has one (a worker
        # process sets it on the instance); otherwise no call per poll.
        hook = self.poll_started
        hooked = getattr(hook, "__func__", None) is not PollingHttpOperator.poll_started
        # Plain polls are made by callbacks while the task waits (:mod:`.callback_polls`).
        callbacks = self.callbacks = self._callback_polls(
            session, step, emit, slots, gate, loop, own_sleep, interval, hook if hooked else None
        )
        while True:
            delay = scheduled - clock.monotonic()
            self.status.next_poll_at_ns = clock.time_ns() + int(max(delay, 0.0) * 1e9)
            handoff = None
            if delay > 0:
                if callbacks is not None:
                    handoff = await self._park(callbacks, due, scheduled, delay)
                    due, scheduled = handoff.due, handoff.scheduled
                    if handoff.polled:
                        transient_streak = 0
                elif own_sleep:
                    await self._sleep(loop, delay)
                else:
                    await clock.sleep(delay)
            sent = handoff.outcome if handoff is not None else None
            if sent is None:
                pending = self._pending
                if self._fatal is not None or (pending is not None and not pending.done()):
                    await self._settle()  # the previous poll's rows first (or its failure)
                if gate is not None and gate.blocked_until_ns is not None:
                    # Out of admission: a table waiting for its budget holds no poll slot.
                    await gate.wait_for_budget()
                if not slots.try_take():
                    await slots.take()
            try:
                if sent is None:
                    # The request (and its timeout) starts only once admitted: a poll that
                    # waited for a slot is late, never timed out for waiting.
                    started = clock.monotonic()
                    self.status.lag_ms = max(started - due, 0.0) * 1000.0
                    if hooked:
                        hook(due, started)
                else:
                    # Sent by a callback poll already (admitted, counted, hooked then).
                    assert handoff is not None
                    started = handoff.started
                try:
                    failure = await self._poll(session, step, emit, sent)
                except asyncio.CancelledError:
                    # Stopped mid-poll: that poll was not made (``run`` ending while a request
                    # is in flight must not make a source that never succeeded look as if
                    # one of its polls had).
                    self.status.polls -= 1
                    raise
            finally:
                slots.release()
            now = clock.monotonic()
            if isinstance(failure, TransientHttpError):
                transient_streak += 1
                self.report(SourceState.BACKOFF)
                due = scheduled = now + policy.delay(transient_streak, failure.retry_after)
            elif isinstance(failure, HttpError) and failure.status_code in REJECTED_STATUSES:
                # Credentials rejected: a state of its own, and no hammering at the interval
                # (the same request will be refused until someone fixes the credentials).
                transient_streak += 1
                self.status.state = SourceState.UNAUTHORIZED
                due = scheduled = now + policy.delay(transient_streak, None)
            else:
                transient_streak = 0
                if self.status.state is not SourceState.RUNNING:  # (reporting sets the state)
                    self.report(SourceState.RUNNING)
                due = started + interval
                scheduled = next_tick(started, interval, now)

    def _callback_polls(
        self,
        session: HttpSession,
        step: PollStep,
        emit: Emit,
        slots: PollSlots,
        gate: RateGate | None,
        loop: asyncio.AbstractEventLoop,
        own_sleep: bool,
        interval: float,
        hook: Callable[[float, float], None] | None,
    ) -> CallbackPolls | None:
        """The table's callback polls, if its polls qualify (:func:`.callback_polls.request_of`;
        decoded with others, on the system clock, through the lean client)."""
        if not (self._defer and own_sleep and not self._per_poll) or gate is None:
            return None
        pool = session.lean if isinstance(session, SharedSession) else None
        request = request_of(step)
        if pool is None or request is None:
            return None
        return CallbackPolls(
            self, pool, request, emit, slots, gate, loop, interval, hook, OFFLOAD_BYTES
        )

    async def _park(
        self, callbacks: CallbackPolls, due: float, scheduled: float, delay: float
    ) -> Handoff:
        """Wait while ``callbacks`` make the polls, until one is the task's; a deferred
        poll's failure wakes it too (:meth:`_failed_later`), raised here."""
        waker = callbacks.park(due, scheduled, delay)
        self._sleeper = waker
        try:
            return await waker
        finally:
            callbacks.stop()
            self._sleeper = None

    async def _poll(
        self,
        session: HttpSession,
        step: PollStep,
        emit: Emit,
        sent: RawResponse | BaseException | None = None,
    ) -> SourceError | None:
        """One poll: every page of the step. Returns the (already recorded) failure, or None
        on success. The pages are fetched first and emitted once the last one arrived: a page
        that fails fails the poll, and the retry cannot emit the rows of the pages before it
        a second time. From the second page on, each page is decoded on a worker thread while
        the next is fetched (:mod:`.early`). Cursor, last success and validators move only on
        success. ``sent``: the outcome of the poll's request, sent (and the poll counted) by
        a callback poll already (:mod:`.callback_polls`)."""
        clock = self.context.clock
        status = self.status
        if sent is None:
            status.polls += 1
            status.last_poll_at_ns = clock.time_ns()
        poll = status.polls
        # A request naming no per-poll value is the same on every poll: no values to build
        # (and a callback poll's has none).
        values = None
        if self._per_poll and status.last_poll_at_ns is not None:
            values = self._memory.values(status.last_poll_at_ns)
        validators = self._validators
        conditional = validators.headers() if validators is not None else ()
        if step.single_page:
            return await self._one_page(session, step, emit, poll, values, conditional, sent)
        assert sent is None  # (callback polls are one page)
        responses: list[HttpResponse] = []
        # The running source shows no request lines: count pages only.
        report = PollReport(detailed=False)
        # Pages decoded while the next ones are fetched (:mod:`.early`), unless 'changed'
        # may skip decoding an unchanged page by its digest.
        early = (
            EarlyDecodes(self._decoder, clock.time_ns)
            if self._tracker is None or self._compare_rows
            else None
        )
        try:
            pages_of_poll = step.pages(session, values, report, conditional, self._gate)
            async with aclosing(pages_of_poll) as pages:
                async for response in pages:
                    responses.append(response)
                    if early is not None and len(responses) > 1:
                        early.catch_up([r.body for r in responses])
            if responses[0].status == 304:
                self._not_modified()
            else:
                await self._take_poll(responses, poll, early, emit)
            self.status.extra["pages"] = report.pages
            if report.capped:
                self._capped(report.pages)
        except (TransientHttpError, HttpError) as e:
            self._record_failure(e, e.status_code, e.body_excerpt)
            return e
        finally:
            if early is not None:
                early.abandon()
        self._succeeded(responses, values)
        return None

    async def _one_page(
        self,
        session: HttpSession,
        step: PollStep,
        emit: Emit,
        poll: int,
        values: PollValues | None,
        conditional: tuple[tuple[str, str], ...],
        sent: RawResponse | BaseException | None = None,
    ) -> SourceError | None:
        """:meth:`_poll` of a one-page poll (Arroyo's one request per poll), the same steps
        in the same order without what only pages need (a page count, a response list,
        early decodes): sent as :meth:`.PollStep.one_page`, and a small body decoded with
        this loop turn's others and emitted by that flush (:meth:`_deferred`), so the task
        goes on to its next poll's schedule at once."""
        try:
            response = await step.one_page(
                session, self._quiet, values, conditional, self._gate, sent
            )
            if self._defer and response.status != 304 and len(response.body) <= OFFLOAD_BYTES:
                self.status.extra["pages"] = 1
                self._deferred(response, poll, values, emit)
                return None
            if response.status == 304:
                self._not_modified()
            else:
                await self._take_poll([response], poll, None, emit)
            self.status.extra["pages"] = 1
        except (TransientHttpError, HttpError) as e:
            self._record_failure(e, e.status_code, e.body_excerpt)
            return e
        self._succeeded([response], values)
        return None

    def _succeeded(self, responses: list[HttpResponse], values: PollValues | None) -> None:
        """What moves only on a successful poll: the validators and the per-poll values."""
        if self._validators is not None:
            self._validators.remember(responses[0])
        if self._per_poll:
            last = responses[-1] if responses[-1].status != 304 else None
            self._memory.succeeded(values, last)

    def _deferred(
        self, response: HttpResponse, poll: int, values: PollValues | None, emit: Emit
    ) -> None:
        """Take a one-page poll's answer without waiting for its decode: the coalescer's
        flush decodes it with the other bodies of its loop turn and then, in the same call,
        emits its rows and moves the validators and per-poll values (what ``_take_poll``
        and ``_poll`` do after the decode, in the same order). A failure there (a
        ``FatalSourceError`` under ``bad_data = 'fail'``) is raised by the table's task
        (:meth:`_settle`, or its sleep is woken with it)."""
        received_at_ns = self.context.clock.time_ns()
        self._received(response)

        def deliver(decoded: DecodeResult | BaseException) -> None:
            try:
                if isinstance(decoded, FatalSourceError):
                    raise self._masked(decoded) from decoded
                if isinstance(decoded, BaseException):
                    raise decoded
                # What _work, _took and commit do for a page of a table decoded together:
                # such a table has no 'changed' tracker, no key hasher and no key state
                # (together is set only then), so only metadata and bad records remain.
                batch = decoded.batch
                if batch is not None and self._has_metadata:
                    batch = self._metadata.fill(batch, PageInfo(response, poll, 1))
                if decoded.dropped or self._dropping:
                    self._count_dropped(decoded)
                if batch is not None and batch.num_rows:
                    emit(batch)
                    self.status.rows += batch.num_rows
                # _succeeded([response], values), without the list (once per poll).
                if self._validators is not None:
                    self._validators.remember(response)
                if self._per_poll:
                    self._memory.succeeded(values, response)
            except Exception as e:  # the task raises it: this table alone stops
                self._failed_later(e)

        self._pending = self._coalescer.then(
            self._together, self._decoder, response.body, received_at_ns, deliver
        )

    def _failed_later(self, error: Exception) -> None:
        """A deferred poll failed: the task raises ``error`` (at once if it sleeps)."""
        self._fatal = error
        sleeper = self._sleeper
        if sleeper is not None and not sleeper.done():
            sleeper.set_exception(error)

    async def _settle(self) -> None:
        """Wait for the previous poll's deferred decode and raise its failure, if any."""
        pending = self._pending
        if pending is not None and not pending.done():
            await pending.wait(self._coalescer.loop)
        if self._fatal is not None:
            raise self._fatal

    async def _sleep(self, loop: asyncio.AbstractEventLoop, seconds: float) -> None:
        """``asyncio.sleep(seconds)`` on a future this operator holds (a deferred poll's
        failure wakes it, see :meth:`_failed_later`), without asking for the running loop
        on every poll (a ``getpid`` system call in CPython 3.11)."""
        sleeper = loop.create_future()
        self._sleeper = sleeper
        timer = loop.call_later(seconds, _wake, sleeper)
        try:
            await sleeper
        finally:
            timer.cancel()
            self._sleeper = None

    async def _take_poll(
        self, responses: list[HttpResponse], poll: int, early: EarlyDecodes | None, emit: Emit
    ) -> None:
        """Decode the pages of one successful poll and emit their rows as one batch (or, for
        ``snapshot``, the changes they make to the last snapshot).

        ``changed`` over several pages compares the whole poll with the last one emitted
        (all its pages or none), never one page with the page before it: by the bodies
        before decoding, or (``changed.compare = 'rows'``) by the decoded rows after."""
        tracker = self._tracker if len(responses) > 1 else None
        digest = None
        if tracker is not None and not self._compare_rows:
            digest = poll_digest([r.body for r in responses])
            if tracker.is_unchanged(digest):
                for response in responses:
                    self._received(response)
                self.status.unchanged_polls += 1
                return
        # 'snapshot': the pages' rows are one snapshot, compared once all are in.
        pages_rows: list[pa.RecordBatch] | None = [] if self._snapshot is not None else None
        complete = True
        out = _PollOutput()
        for page, response in enumerate(responses, start=1):
            info = PageInfo(response, poll, page) if self._has_metadata else None
            decoded = None
            if early is not None and early.started >= page:
                try:
                    decoded = await early.result(page - 1)
                except FatalSourceError as e:
                    raise self._masked(e) from e
            complete &= await self._take(
                response, out, info, pages_rows, decoded, compare_page=tracker is None
            )
        if tracker is not None and self._compare_rows:
            digest = body_digest(b"".join(out.digests))
            if tracker.is_unchanged(digest):
                self.status.unchanged_polls += 1
                return
        self.status.rows += out.commit(emit, self.context.state)
        if tracker is not None and digest is not None:
            tracker.remember(digest)
        if pages_rows is not None:
            await self._take_snapshot(pages_rows, emit, complete=complete)

    def _received(self, response: HttpResponse) -> None:
        """Count one page that arrived (its status, its bytes; the failure run ends)."""
        status = self.status
        status.last_status_code = response.status
        status.bytes += len(response.body)
        status.consecutive_failures = 0

    def _rate_limited(self, until_ns: int | None, why: str) -> None:
        """The rate gate started (``until_ns``) or ended (``None``) a wait for a budget."""
        self.status.rate_limited_until_ns = until_ns
        if until_ns is None:
            self.report(SourceState.RUNNING)
            return
        self.report(SourceState.RATE_LIMITED)
        extra = self.status.extra
        extra["rate_limited_waits"] = extra.get("rate_limited_waits", 0) + 1
        level = logging.INFO if extra["rate_limited_waits"] == 1 else logging.DEBUG
        wait_s = max(until_ns - self.context.clock.time_ns(), 0) / 1e9
        logger.log(
            level, "source %s: rate limited (%s); waiting %.1f s for the budget to reset",
            self.config.name, why, wait_s,
        )  # fmt: skip

    def _not_modified(self) -> None:
        """A 304: an unchanged poll (no rows, no failure)."""
        status = self.status
        status.last_status_code = 304
        status.consecutive_failures = 0
        status.unchanged_polls += 1

    def _capped(self, pages: int) -> None:
        """The page cap stopped a poll: counted, kept in the status, logged once per run."""
        extra = self.status.extra
        extra["capped_polls"] = extra.get("capped_polls", 0) + 1
        extra["page_cap"] = (
            f"stopped after {pages} pages (pagination.max_pages); the server had more"
        )
        level = logging.WARNING if extra["capped_polls"] == 1 else logging.DEBUG
        logger.log(level, "source %s: %s", self.config.name, extra["page_cap"])

    async def _take(
        self,
        response: HttpResponse,
        out: _PollOutput,
        info: PageInfo | None,
        collect: list[pa.RecordBatch] | None = None,
        early: tuple[DecodeResult, int] | None = None,
        *,
        compare_page: bool = True,
    ) -> bool:
        """Count and decode one page's body (skipped if unchanged), its rows and key state
        added to the poll's ``out``; with ``collect`` (``snapshot``) the rows are added to it
        instead. ``early``: the page's decode and arrival time, when decoded already
        (:mod:`.early`). ``compare_page``: ``changed`` compares this page by itself (a poll of
        one page); otherwise the caller compares the whole poll, from ``out.digests``.
        Returns whether every record of the page decoded (none dropped as bad data)."""
        received_at_ns = self.context.clock.time_ns()
        body = response.body
        self._received(response)
        if early is not None:
            decoded, received_at_ns = early
            if len(body) > OFFLOAD_BYTES or self._hasher is not None:
                page = await asyncio.to_thread(
                    self._work, body, received_at_ns, info, decoded, compare_page
                )
            else:
                page = self._work(body, received_at_ns, info, decoded, compare_page)
        elif len(body) > OFFLOAD_BYTES or self._decoder.runs_queries or self._hasher is not None:
            page = await asyncio.to_thread(
                self._work, body, received_at_ns, info, None, compare_page
            )
        elif self._together is not None:
            try:
                decoded = await self._coalescer.add(
                    self._together, self._decoder, body, received_at_ns
                )
            except FatalSourceError as e:
                raise self._masked(e) from e
            page = self._work(body, received_at_ns, info, decoded, compare_page)
        else:
            page = self._work(body, received_at_ns, info, None, compare_page)
        return self._took(page, out, collect, compare_page=compare_page)

    def _count_dropped(self, result: DecodeResult) -> None:
        """Count a page's bad records (dropped under ``bad_data = 'drop'``) and say so: a
        warning for the first page of a run of pages with bad records, then quietly."""
        if result.dropped:
            self.status.dropped_rows += result.dropped
            detail = "; ".join(result.errors) or "bad data"
            level = logging.DEBUG if self._dropping else logging.WARNING
            self._note_error(f"dropped {result.dropped} bad record(s): {detail}", level=level)
        self._dropping = bool(result.dropped)

    def _took(
        self,
        page: _Page,
        out: _PollOutput,
        collect: list[pa.RecordBatch] | None,
        *,
        compare_page: bool,
    ) -> bool:
        """The rest of :meth:`_take` once the page's ``_work`` is done: its counts, its rows
        and state added to ``out`` (or to ``collect``). Returns whether every record of the
        page decoded."""
        status = self.status
        result = page.result
        if result is None:
            status.unchanged_polls += 1
            return True
        self._count_dropped(result)
        if collect is not None:
            if page.batch is not None:
                collect.append(page.batch)
            return not result.dropped
        # Rows and the state describing them change together, on the loop (see persist).
        if page.batch is not None and page.batch.num_rows:
            out.batches.append(page.batch)
        status.deduplicated_rows += page.skipped
        if page.key_state is not None and self._keys is not None:
            out.state[keys.STATE_KEY] = page.key_state
            status.state_keys = len(self._keys)
            status.state_bytes = self._keys.nbytes
        if page.digest is not None and self._tracker is not None:
            if compare_page:
                self._tracker.remember(page.digest)
            else:
                out.digests.append(page.digest)
        return not result.dropped

    async def _take_snapshot(
        self, pages: list[pa.RecordBatch], emit: Emit, *, complete: bool
    ) -> None:
        """Compare one poll's rows (all its pages) with the last snapshot and emit the
        changes. A snapshot with dropped bad records is not ``complete``: it deletes no key
        (a record that failed to decode is not a record that is gone)."""
        assert self._snapshot is not None and self._hasher is not None
        state, hasher = self._snapshot, self._hasher
        schema = self.config.output_schema()

        def compare() -> tuple[snapshot.SnapshotChanges, bytes | None]:
            rows = pa.Table.from_batches(pages, schema=schema)
            if rows.num_rows:
                key_hashes, digests = hasher.hashes(rows)
            else:
                key_hashes = digests = np.empty(0, np.uint64)
            changes = state.apply(rows, key_hashes, digests, deletes=complete)
            return changes, state.to_bytes() if changes.batch is not None else None

        changes, saved = await asyncio.to_thread(compare)
        status = self.status
        status.deduplicated_rows += changes.unchanged + changes.repeated
        status.state_keys = len(state)
        status.state_bytes = state.nbytes
        if changes.batch is None:
            return
        # The changes and the state after them, in one step on the loop (see persist).
        status.rows += changes.inserted + changes.updated
        status.updated_rows += changes.updated
        status.deleted_rows += changes.deleted
        emit(changes.batch)
        assert saved is not None
        self.context.state[snapshot.STATE_KEY] = saved

    def _work(
        self,
        body: bytes,
        received_at_ns: int,
        info: PageInfo | None,
        decoded: DecodeResult | None = None,
        compare_page: bool = True,
    ) -> _Page:
        """Compare, decode, fill metadata, deduplicate: one page, inline or on a worker thread.

        ``decoded`` is the body's decode when done already (:mod:`.coalesce`).
        ``compare_page``: an unchanged page (``changed``) is skipped here; otherwise only its
        rows' digest is taken (the caller compares the whole poll). Touches no
        operator state but the key state (polls are sequential, so one page at a time).
        Decode failures with ``bad_data = 'fail'`` surface as a masked FatalSourceError.
        """
        digest = None
        if self._tracker is not None and not self._compare_rows and compare_page:
            digest = body_digest(body)
            if self._tracker.is_unchanged(digest):
                return _Page(digest, None)
        try:
            result = decoded if decoded is not None else self._decoder.decode(body, received_at_ns)
        except FatalSourceError as e:
            raise self._masked(e) from e
        batch = result.batch
        if batch is not None and info is not None:  # only tables with metadata columns
            batch = self._metadata.fill(batch, info)
        if self._compare_rows:
            assert self._hasher is not None and self._tracker is not None
            row_digests = self._hasher.hashes(batch)[1] if batch is not None else None
            digest = rows_digest(
                b"" if row_digests is None else row_digests.tobytes(),
                0 if batch is None else batch.num_rows,
            )
            if compare_page and self._tracker.is_unchanged(digest):
                return _Page(digest, None)
        if self._keys is None or batch is None:
            return _Page(digest, result, batch)
        assert self._hasher is not None
        key_hashes, row_digests = self._hasher.hashes(batch)
        ttl = self.options.dedup_ttl
        if ttl is not None:
            self._keys.expire(received_at_ns - int(ttl * 1e9))
        mask = self._keys.admit(key_hashes, row_digests, received_at_ns)
        kept = int(mask.sum())
        if kept < batch.num_rows:
            batch = batch.filter(pa.array(mask, pa.bool_()))
        return _Page(digest, result, batch, len(mask) - kept, self._keys.to_bytes())

    def _masked(self, error: FatalSourceError) -> FatalSourceError:
        # A body may echo request headers (httpbin's /headers does): mask before it escapes.
        return FatalSourceError(self._step.secrets.mask(error.message), hint=error.hint)

    def _record_failure(
        self, error: SourceError, status_code: int | None, body_excerpt: str | None
    ) -> None:
        status = self.status
        status.failures += 1
        status.consecutive_failures += 1
        if status_code is not None:
            status.last_status_code = status_code
        # Log the first failure of a streak loudly, repeats quietly: 1,000 tables failing
        # every second must not flood the log.
        level = logging.WARNING if status.consecutive_failures == 1 else logging.DEBUG
        detail = f" (body: {body_excerpt})" if body_excerpt is not None else ""
        self._note_error(error.message, level=level, detail=detail)

    def _note_error(self, message: str, *, level: int, detail: str = "") -> None:
        """Keep ``message`` as the status's last error and log it with ``detail`` appended."""
        mask = self._step.secrets.mask
        message = mask(message)
        self.status.last_error = message
        self.status.last_error_at_ns = self.context.clock.time_ns()
        logger.log(level, "source %s: %s%s", self.config.name, message, mask(detail))


def _wake(sleeper: asyncio.Future[None]) -> None:
    if not sleeper.done():
        sleeper.set_result(None)
