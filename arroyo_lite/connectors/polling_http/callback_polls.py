"""A table's plain polls run as event-loop callbacks while its task sleeps (issue 16).

A poll made by the table's task costs two task wake-ups (the sleep's timer, then the answer),
each resuming a chain of a dozen coroutines (operator, poll step, auth, fetch, pool,
connection), with a future and a timer handle each: about a third of a small poll's CPU on
the development machine (``benchmarks/poll_step.py``). A plain poll needs none of that.
:class:`CallbackPolls` arms the table's timer; its callback sends the request on an idle
lean connection (:meth:`.h1.Pool.begin`); the answer's callback hands a 2xx body to the
operator's deferred decode (the coalescer's flush emits the rows, as for the task's polls)
and arms the next timer. The task waits on one future meanwhile.

A callback poll does what the task's poll does, in the same order, with the same schedule
(``next_tick``), status and hook (``poll_started``). Everything else stays the task's, which
takes over at the point where its own poll would be:

* before sending (the previous poll's rows not delivered yet or failed, the rate gate holds
  the request, validators to send, no free admission slot, no idle connection): the task
  makes that poll itself, from its start;
* after sending (any answer but a 2xx with a body of at most ``OFFLOAD_BYTES``, or an
  error): the task takes the outcome as its request's (``first`` of :func:`.http.fetch`), so
  errors, redirects, rate-limit answers, backoff and status go through the one code that
  handles them, the admission slot still held.

Only a table whose poll is one fixed lean request qualifies (:func:`request_of`): one page,
no per-poll values, a flow of one request (:meth:`.auth.Auth.alone`), decoded with other
tables' bodies, on the system clock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from arroyo_lite.connectors.base import Emit, SourceState, SourceStatus
from arroyo_lite.connectors.polling_http.backoff import next_tick
from arroyo_lite.connectors.polling_http.h1 import Callback, Pool, RawResponse
from arroyo_lite.connectors.polling_http.http import HttpRequest, HttpResponse, lean_answer
from arroyo_lite.connectors.polling_http.poll import PollStep
from arroyo_lite.connectors.polling_http.ratelimit import RateGate
from arroyo_lite.connectors.polling_http.scheduling import PollSlots

if TYPE_CHECKING:
    from arroyo_lite.connectors.polling_http.coalesce import Continuation
    from arroyo_lite.connectors.polling_http.conditional import Validators
    from arroyo_lite.connectors.polling_http.templates import PollValues


class PollOwner(Protocol):
    """What callback polls read and call of the table's operator
    (:class:`~arroyo_lite.connectors.polling_http.operator.PollingHttpOperator`): its polls,
    made another way, share its status, its deferred decode and its pending state. Declared
    here so this module does not import the operator that imports it."""

    status: SourceStatus
    _pending: Continuation | None
    _fatal: Exception | None
    _validators: Validators | None

    def report(self, state: SourceState) -> None: ...

    def _deferred(
        self, response: HttpResponse, poll: int, values: PollValues | None, emit: Emit
    ) -> None: ...


@dataclass(slots=True)
class Handoff:
    """Why the task is woken: the poll due at ``due`` (starting at ``scheduled``) is its.

    ``outcome`` is that poll's answer or error when it was sent already (at ``started``,
    its admission slot held); ``None``: the task makes the whole poll. ``polled``: a callback
    poll succeeded since the task parked (a failure streak ended)."""

    due: float
    scheduled: float
    polled: bool
    started: float = 0.0
    outcome: RawResponse | BaseException | None = None


def request_of(step: PollStep) -> HttpRequest | None:
    """The one request every poll of ``step`` sends, when the lean client can send it from a
    callback (one page, no per-poll values, a flow of one request); else ``None``."""
    if not step.single_page or (step.template is not None and step.template.uses):
        return None
    request = step.auth.alone(step.request)
    if request is None or request._lean_head is None:
        return None
    return request


class CallbackPolls:
    """One table's callback polls (see the module docstring); made once per run of its
    task, which calls :meth:`park` instead of sleeping and :meth:`stop` once woken."""

    def __init__(
        self,
        operator: PollOwner,
        pool: Pool,
        request: HttpRequest,
        emit: Emit,
        slots: PollSlots,
        gate: RateGate,
        loop: asyncio.AbstractEventLoop,
        interval: float,
        hook: Callable[[float, float], None] | None,
        inline_bytes: int,
    ) -> None:
        assert request._lean_head is not None
        self._operator = operator
        self._pool = pool
        self._request = request
        self._head = request._lean_head
        url = request._url
        self._key = (url.raw_host or "", url.port or 80)
        self._emit = emit
        self._slots = slots
        self._gate = gate
        self._loop = loop
        self._interval = interval
        self._hook = hook
        #: The largest body decoded on the loop (``operator.OFFLOAD_BYTES``).
        self._inline_bytes = inline_bytes
        self._waker: asyncio.Future[Handoff] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._exchange: Callback | None = None
        self._due = self._scheduled = self._started = self._sent_at = 0.0
        self._polled = False
        self._poll = 0
        #: Statistics (tests, benchmarks): polls made by callbacks, and handed to the task.
        self.made = 0
        self.handed = 0

    def park(self, due: float, scheduled: float, delay: float) -> asyncio.Future[Handoff]:
        """Make the polls from the one due at ``due`` (to start at ``scheduled``, ``delay``
        seconds from now) by callbacks; the future gives the :class:`Handoff` once a poll
        is the task's."""
        waker: asyncio.Future[Handoff] = self._loop.create_future()
        self._waker = waker
        self._polled = False
        self._due, self._scheduled = due, scheduled
        self._timer = self._loop.call_later(delay, self._fire)
        return waker

    def stop(self) -> None:
        """The task is awake (woken, failed or cancelled): no timer stays armed, and a poll
        still in flight is abandoned (its connection closed, its slot given back) and not
        counted, as a poll the task stops mid-way."""
        self._waker = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        exchange = self._exchange
        if exchange is not None:
            self._exchange = None
            exchange.cancel()
            self._slots.release()
            self._operator.status.polls -= 1

    def _hand_over(self, outcome: RawResponse | BaseException | None) -> None:
        self.handed += 1
        waker = self._waker
        if waker is not None and not waker.done():
            waker.set_result(
                Handoff(self._due, self._scheduled, self._polled, self._started, outcome)
            )

    def _fire(self) -> None:
        """The timer: send the poll's request, unless the poll is the task's."""
        self._timer = None
        operator = self._operator
        pending = operator._pending
        validators = operator._validators
        if (
            operator._fatal is not None
            or (pending is not None and not pending.done())
            or self._gate.holds(self._request)
            or (validators is not None and validators.headers())
            or not self._slots.try_take()
        ):
            self._hand_over(None)
            return
        started = time.monotonic()
        sent_at = time.perf_counter()
        request = self._request
        exchange = self._pool.begin(
            self._key, self._head, request.max_body_bytes, request.timeout_s, self._loop,
            self._answered,
        )  # fmt: skip
        if exchange is None:  # no idle connection: the task connects
            self._slots.release()
            self._hand_over(None)
            return
        status = operator.status
        status.lag_ms = max(started - self._due, 0.0) * 1000.0
        if self._hook is not None:  # (before the poll is counted, as the task calls it)
            try:
                self._hook(self._due, started)
            except Exception as e:  # the task raises it; this poll is not made
                exchange.cancel()
                self._slots.release()
                self._failed(e)
                return
        self._exchange = exchange
        status.polls += 1
        status.last_poll_at_ns = time.time_ns()
        self._poll = status.polls
        self._started, self._sent_at = started, sent_at

    def _failed(self, error: Exception) -> None:
        """A bug in a callback (not an answer's failure): the task raises ``error``."""
        waker = self._waker
        if waker is not None and not waker.done():
            waker.set_exception(error)

    def _answered(self, outcome: RawResponse | BaseException) -> None:
        """The answer (or the error) of the poll in flight."""
        self._exchange = None
        if not (
            isinstance(outcome, RawResponse)
            and 200 <= outcome.status < 300
            and len(outcome.body) <= self._inline_bytes
        ):
            self._hand_over(outcome)
            return
        self._slots.release()
        try:
            self._took(outcome)
        except Exception as e:  # a bug, not the answer's: the task raises it
            self._failed(e)

    def _took(self, raw: RawResponse) -> None:
        """What the task's poll does with a small 2xx answer (``_send_alone``, ``_one_page``
        and the rest of ``_polls``' round; its slot given back already), then the next
        poll's timer."""
        operator = self._operator
        status = operator.status
        response = lean_answer(self._request, raw, self._sent_at)
        assert isinstance(response, HttpResponse)  # (a 2xx)
        self._gate.observe(response.headers)
        status.extra["pages"] = 1
        operator._deferred(response, self._poll, None, self._emit)
        self._polled = True
        self.made += 1
        if status.state is not SourceState.RUNNING:
            operator.report(SourceState.RUNNING)
        started, interval = self._started, self._interval
        self._due = started + interval
        now = time.monotonic()
        self._scheduled = next_tick(started, interval, now)
        delay = self._scheduled - now
        status.next_poll_at_ns = time.time_ns() + int(max(delay, 0.0) * 1e9)
        self._timer = self._loop.call_later(delay, self._fire)
