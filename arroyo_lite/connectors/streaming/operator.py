"""The running side both push sources share: connect, read, reconnect, until cancelled.

:class:`PushOperator` owns the life of a push source: it resolves the table's request
(headers substituted, secrets remembered), runs the connection loop beside a
:class:`~.batcher.MessageBatcher` (:meth:`~.batcher.MessageBatcher.drive`), and after every
connection applies the reconnect rule of :mod:`.reconnect`, counting attempts in
``status.polls``, failures in ``status.failures``, and reconnects in ``extra['reconnects']``.
A subclass implements one connection (:meth:`PushOperator.read`): it returns when the server
ends the stream cleanly, and raises :class:`ConnectionEnded` for anything else.

Only a :class:`~arroyo_lite.errors.FatalSourceError` (bad data under ``bad_data = 'fail'``, an
unset ``{{ VAR }}``) leaves :meth:`PushOperator.run` with an error; a connection that ends
with ``stop`` (SSE's 204) returns, which finishes the table. As every operator, it reports
``running`` (connected) and ``backoff`` (waiting after a failure) and leaves the final states
to its supervisor.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from typing import Any, ClassVar, Protocol

import aiohttp

from arroyo_lite.config import TableConfig
from arroyo_lite.connectors.base import Emit, SourceContext, SourceOperator, SourceState
from arroyo_lite.connectors.streaming.batcher import MessageBatcher
from arroyo_lite.connectors.streaming.reconnect import Reconnects
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.secrets import Secrets


class PushOptions(Protocol):
    """What the loop reads of a push source's options."""

    @property
    def reconnect_delay_ms(self) -> int: ...
    @property
    def max_backoff_ms(self) -> int: ...


class ConnectionEnded(Exception):
    """How one connection ended, when not cleanly: ``failed`` means no message came (or it
    could not be made); ``retry_after`` is the server's wish; ``stop`` ends the table."""

    def __init__(
        self, message: str, *, failed: bool, retry_after: float | None = None, stop: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.failed = failed
        self.retry_after = retry_after
        self.stop = stop


class PushOperator(SourceOperator):
    """A push source's connection loop; subclasses implement :meth:`read` (one connection).

    ``options_type`` is the connector's options class; ``closed_message`` says how a clean end
    of a connection is logged. ``extra`` counters common to both sources: ``reconnects``,
    ``connected`` and (from the batcher) ``max_buffered_bytes``.
    """

    options_type: ClassVar[type]
    closed_message: ClassVar[str]
    logger: ClassVar[logging.Logger]

    def __init__(self, config: TableConfig, context: SourceContext) -> None:
        super().__init__(config, context)
        self.status.extra.update(reconnects=0, connected=False)
        self.secrets = Secrets()

    @property
    def options(self) -> Any:
        options = self.config.connector_options
        if not isinstance(options, self.options_type):
            raise FatalSourceError(
                f"table '{self.config.name}' has no {self.config.connector} options"
            )
        return options

    @abstractmethod
    def build_request(self) -> Any:
        """The resolved request (with a ``secrets`` attribute); ``FatalSourceError`` if it
        cannot be made (an unset variable)."""

    @abstractmethod
    async def read(
        self,
        session: aiohttp.ClientSession,
        request: Any,
        batcher: MessageBatcher,
        reconnects: Reconnects,
    ) -> None:
        """One connection, read to its clean end; :class:`ConnectionEnded` otherwise. Calls
        ``reconnects.connected()`` once the first message arrived."""

    def base_delay(self) -> float | None:
        """A reconnect delay the server asked for (SSE's ``retry:``), in seconds."""
        return None

    async def run(self, emit: Emit) -> None:
        """Connect, read, reconnect; returns only when a connection says ``stop``."""
        request = self.build_request()
        self.secrets = request.secrets
        batcher = MessageBatcher(
            self.config, self.context, self.status, emit, secrets=request.secrets
        )
        async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
            await batcher.drive(self._loop(session, request, batcher))

    async def _loop(
        self, session: aiohttp.ClientSession, request: Any, batcher: MessageBatcher
    ) -> None:
        clock = self.context.clock
        status = self.status
        options: PushOptions = self.options
        reconnects = Reconnects(options.reconnect_delay_ms / 1000, options.max_backoff_ms / 1000)
        while True:
            status.polls += 1
            status.last_poll_at_ns = clock.time_ns()
            status.next_poll_at_ns = None
            try:
                await self.read(session, request, batcher, reconnects)
                ended = ConnectionEnded(self.closed_message, failed=False)
            except ConnectionEnded as e:
                ended = e
            if ended.stop:
                return
            base = self.base_delay()
            if base is not None:
                reconnects.base_s = base
            delay = reconnects.delay(failed=ended.failed, retry_after=ended.retry_after)
            message = self.secrets.mask(ended.message)
            level = logging.INFO
            if ended.failed:
                status.failures += 1
                status.consecutive_failures += 1
                status.last_error = message
                status.last_error_at_ns = clock.time_ns()
                self.report(SourceState.BACKOFF)
                # Loud for the first failure of a streak, quiet for its repeats.
                level = logging.WARNING if status.consecutive_failures == 1 else logging.DEBUG
            status.extra["reconnects"] += 1
            status.extra["connected"] = False
            self.logger.log(level, "source %s: %s; reconnecting in %.1fs", self.config.name,
                            message, delay)  # fmt: skip
            status.next_poll_at_ns = clock.time_ns() + int(delay * 1e9)
            await clock.sleep(delay)
