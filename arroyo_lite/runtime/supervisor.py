"""Supervision of one operator: its lifecycle policy, and the only writer of its lifecycle state.

An operator *reports* how it is doing (:meth:`~arroyo_lite.connectors.base.SourceOperator.report`:
running, backing off) and keeps its own counters (polls, rows, transient failures). Where it
stands in its life, ``status.state``, is written here and nowhere else:

* ``starting`` until the operator reports ``running`` (or ``backoff``);
* ``failed`` when a :class:`~arroyo_lite.errors.SourceError` escapes ``run`` (bad data with
  ``bad_data='fail'``, a bad config) with the error's message as ``last_error``; any other
  exception is a bug in the operator: logged with its traceback, ``failed`` with a one-line
  message. Either way only this operator stops;
* ``finished`` when ``run`` returns (a finite source such as an impulse with a
  ``message_count``);
* ``stopped`` when it is cancelled (:meth:`Runtime.stop_source`, :meth:`Runtime.close`);
* ``paused`` when it is cancelled after :meth:`Supervisor.pause` (:meth:`Runtime.pause_source`):
  not final, since the same operator, with its state and counters, runs again under a new
  supervisor when the source is resumed.

Failed, finished and stopped are final: later reports are ignored. Every message written is
masked of the table's secrets first.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable, Coroutine
from typing import Any

from arroyo_lite.clock import Clock, SystemClock
from arroyo_lite.connectors.base import Emit, Operator, SourceOperator, SourceState
from arroyo_lite.errors import SourceError
from arroyo_lite.secrets import Secrets

log = logging.getLogger(__name__)

#: States an operator may report while it runs; the others belong to the supervisor.
REPORTABLE = frozenset({SourceState.RUNNING, SourceState.BACKOFF, SourceState.RATE_LIMITED})
#: States after which nothing changes any more.
FINAL = frozenset({SourceState.FAILED, SourceState.FINISHED, SourceState.STOPPED})


class Supervisor:
    """Runs one operator (a source, or a sink's writing loop) and owns its ``status.state``.

    ``clock`` timestamps failures; ``secrets`` are masked in every message written or logged;
    ``on_exit`` is called (on the loop) when ``run`` ends for any reason.
    """

    def __init__(
        self,
        operator: Operator,
        *,
        clock: Clock | None = None,
        secrets: Secrets | None = None,
        on_exit: Callable[[Operator], None] | None = None,
    ) -> None:
        self.operator = operator
        self.clock: Clock = clock or SystemClock()
        self.secrets = secrets or Secrets()
        self.on_exit = on_exit
        #: The failure that stopped the operator, once it has (``status.last_error`` holds
        #: its masked message).
        self.error: SourceError | None = None
        self._pausing = False
        if operator.status.state is SourceState.PAUSED:
            operator.status.state = SourceState.STARTING  # a resumed run starts over
        operator.bind_reporter(self._on_report)

    @property
    def table(self) -> str:
        return self.operator.config.name

    def _on_report(self, state: SourceState) -> None:
        if state not in REPORTABLE:
            raise ValueError(f"an operator cannot report '{state}': the supervisor sets it")
        if self.operator.status.state not in FINAL:
            self.operator.status.state = state

    def pause(self) -> None:
        """Make the next cancellation a pause: the operator ends ``paused``, not ``stopped``."""
        self._pausing = True

    def _set_final(self, state: SourceState) -> None:
        status = self.operator.status
        if status.state not in FINAL:
            status.state = state
        status.next_poll_at_ns = None

    async def run(self, emit: Emit) -> SourceError | None:
        """Run a source operator to its end (see :meth:`supervise`)."""
        assert isinstance(self.operator, SourceOperator)
        return await self.supervise(self.operator.run(emit))

    async def supervise(self, body: Coroutine[Any, Any, None]) -> SourceError | None:
        """Await ``body`` (the operator's work); return the failure that stopped it, if any.

        Never raises but ``CancelledError`` (after marking the operator ``stopped``).
        """
        try:
            await body
        except asyncio.CancelledError:
            if self._pausing and self.operator.status.state not in FINAL:
                self.operator.status.state = SourceState.PAUSED
                self.operator.status.next_poll_at_ns = None
            else:
                self._set_final(SourceState.STOPPED)
            raise
        except SourceError as e:
            message = self._mask(e.message)
            self._fail(e, message)
            log.error("source '%s' failed: %s", self.table, message)
        except Exception as e:  # a bug in an operator must stop its table only
            trace = self._mask("".join(traceback.format_exception(e)))
            log.error("source '%s' crashed:\n%s", self.table, trace)
            message = self._mask(f"internal error: {type(e).__name__}: {e}")
            self._fail(SourceError(message), message)
        else:
            self._set_final(SourceState.FINISHED)
        finally:
            self._exited()
        return self.error

    def _mask(self, text: str) -> str:
        """``text`` without the config's secrets nor those the operator learned running."""
        return (self.secrets | self.operator.learned_secrets).mask(text)

    def _fail(self, error: SourceError, message: str) -> None:
        self.error = error
        status = self.operator.status
        status.failures += 1
        status.last_error = message
        status.last_error_at_ns = self.clock.time_ns()
        self._set_final(SourceState.FAILED)

    def _exited(self) -> None:
        if self.on_exit is None:
            return
        try:
            self.on_exit(self.operator)
        except Exception:
            log.exception("on_exit hook of source '%s' failed", self.table)
