"""The running ``polling_http`` source: poll on a schedule, decode, emit, survive failures.

:class:`PollingHttpOperator` is one asyncio task per table. Each poll runs the table's
:class:`~.poll.PollStep` (the requests of its paginator, sent through its auth: the same
step ``arroyo-lite test`` runs), decodes each 2xx body with the table's decoder
(:mod:`arroyo_lite.formats`) and emits one RecordBatch per page whose ``_timestamp`` is the
arrival time (one page today). Scheduling and backoff rules live in :mod:`.backoff`, the
``changed`` comparison in :mod:`.changes`.

Failures never stop the polling: each is counted in :attr:`status`, kept (masked) as
``last_error``, logged, and followed by another poll (after a backoff for transient ones).
Only a :class:`~arroyo_lite.errors.FatalSourceError` leaves :meth:`PollingHttpOperator.run`:
bad data with ``bad_data = 'fail'``, or a header naming an unset variable.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import aclosing
from typing import TYPE_CHECKING

import aiohttp

from arroyo_lite.connectors.base import Emit, SourceOperator, SourceState
from arroyo_lite.connectors.polling_http.backoff import BackoffPolicy, next_tick
from arroyo_lite.connectors.polling_http.changes import ChangeTracker, body_digest
from arroyo_lite.connectors.polling_http.http import (
    HttpError,
    HttpResponse,
    TransientHttpError,
    shared_session,
)
from arroyo_lite.connectors.polling_http.options import PollingHttpOptions
from arroyo_lite.connectors.polling_http.poll import PollStep, poll_step
from arroyo_lite.errors import ArroyoLiteError, FatalSourceError, SourceError

if TYPE_CHECKING:
    from arroyo_lite.formats import Decoder, DecodeResult

logger = logging.getLogger("arroyo_lite.polling_http")

#: Statuses that mean "credentials rejected" (state ``unauthorized``, polled with backoff).
REJECTED_STATUSES = frozenset({401, 403})
#: Bodies larger than this are hashed and decoded on a worker thread; smaller ones inline,
#: where a thread hop would cost more than the work. A decoder that runs DuckDB queries
#: (virtual or JSON columns) always runs on a worker thread: a query must not block the loop.
OFFLOAD_BYTES = 256 * 1024


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
    #: Whether the previous decoded poll dropped records (to log a streak of them once).
    _dropping: bool = False

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
            step = poll_step(options, self.context.env)
            self._step = step
            # Imported here: the formats package is a sibling subsystem, loaded on first use.
            from arroyo_lite.formats import make_decoder

            try:
                self._decoder = make_decoder(self.config)
            except ArroyoLiteError as e:
                # An undecodable format or a bad virtual column: no retry can fix the config.
                raise FatalSourceError(e.message, hint=e.hint) from e
            self._tracker = (
                ChangeTracker(self.context.state) if options.emit_behavior == "changed" else None
            )
            async with shared_session() as session:
                await self._loop(session, step, options, emit)
        except FatalSourceError as e:
            # The supervisor records and reports the failure; here it is only a trace.
            logger.debug("source %s failed: %s", self.config.name, e.message)
            raise

    async def _loop(
        self,
        session: aiohttp.ClientSession,
        step: PollStep,
        options: PollingHttpOptions,
        emit: Emit,
    ) -> None:
        clock = self.context.clock
        interval = options.poll_interval_ms / 1000.0
        policy = BackoffPolicy(interval=interval, max_backoff=options.max_backoff_ms / 1000.0)
        transient_streak = 0
        # ``due`` is when the schedule wanted this poll (one interval after the previous start);
        # ``scheduled`` is when it will actually start (``due``, or at once after an overrun).
        due = scheduled = clock.monotonic()
        self.report(SourceState.RUNNING)
        while True:
            delay = scheduled - clock.monotonic()
            self.status.next_poll_at_ns = clock.time_ns() + int(max(delay, 0.0) * 1e9)
            if delay > 0:
                await clock.sleep(delay)
            started = clock.monotonic()
            self.poll_started(due, started)
            failure = await self._poll(session, step, emit)
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
                self.report(SourceState.RUNNING)
                due = started + interval
                scheduled = next_tick(started, interval, now)

    async def _poll(
        self, session: aiohttp.ClientSession, step: PollStep, emit: Emit
    ) -> SourceError | None:
        """One poll: every page of the step. Returns the (already recorded) failure, or None
        on success; a failed page ends the poll (the pages before it are emitted)."""
        clock = self.context.clock
        self.status.polls += 1
        self.status.last_poll_at_ns = clock.time_ns()
        try:
            async with aclosing(step.pages(session)) as pages:
                async for response in pages:
                    await self._take(response, emit)
        except (TransientHttpError, HttpError) as e:
            self._record_failure(e, e.status_code, e.body_excerpt)
            return e
        return None

    async def _take(self, response: HttpResponse, emit: Emit) -> None:
        """Count, decode and emit one page's body (skipped if unchanged)."""
        status = self.status
        received_at_ns = self.context.clock.time_ns()
        body = response.body
        status.last_status_code = response.status
        status.bytes += len(body)
        status.consecutive_failures = 0
        if len(body) > OFFLOAD_BYTES or self._decoder.runs_queries:
            digest, result = await asyncio.to_thread(self._digest_and_decode, body, received_at_ns)
        else:
            digest, result = self._digest_and_decode(body, received_at_ns)
        if digest is not None and result is None:
            status.unchanged_polls += 1
            return
        assert result is not None
        if result.dropped:
            status.dropped_rows += result.dropped
            detail = "; ".join(result.errors) or "bad data"
            # As with failures: warn once per run of polls with bad records, then quietly.
            level = logging.DEBUG if self._dropping else logging.WARNING
            self._note_error(f"dropped {result.dropped} bad record(s): {detail}", level=level)
        self._dropping = bool(result.dropped)
        if result.batch is not None and result.batch.num_rows:
            status.rows += result.batch.num_rows
            emit(result.batch)
        if digest is not None and self._tracker is not None:
            self._tracker.remember(digest)

    def _digest_and_decode(
        self, body: bytes, received_at_ns: int
    ) -> tuple[bytes | None, DecodeResult | None]:
        """Hash (in ``changed`` mode) and decode; ``(digest, None)`` means unchanged.

        Runs inline or on a worker thread: touches no operator state except reading the tracker.
        Decode failures with ``bad_data = 'fail'`` surface as a masked FatalSourceError.
        """
        digest = None
        if self._tracker is not None:
            digest = body_digest(body)
            if self._tracker.is_unchanged(digest):
                return digest, None
        try:
            return digest, self._decoder.decode(body, received_at_ns)
        except FatalSourceError as e:
            # A body may echo request headers (httpbin's /headers does): mask before it escapes.
            masked = self._step.secrets.mask(e.message)
            raise FatalSourceError(masked, hint=e.hint) from e

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
