"""When a push source reconnects: one rule for ``sse`` and ``websocket``.

Arroyo's sources give up on a dropped connection with a "retry with backoff" error and the
engine restarts them; arroyo-lite reconnects inside the source, by these rules:

* A connection that delivered at least one message and then ended (the server closed it, the
  stream hit EOF, a read failed) is followed by a reconnect after the base delay: the table's
  ``reconnect_delay_ms``, or for SSE the server's ``retry:`` value once it sent one (as the
  WHATWG spec says).
* A connection attempt that fails (refused, a timeout, a non-2xx answer, a failed handshake)
  or ends before any message doubles the delay per failure in a row, up to ``max_backoff_ms``,
  and waits at least as long as a ``Retry-After`` header asks (429/503).

The arithmetic is :class:`~arroyo_lite.connectors.polling_http.backoff.BackoffPolicy`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

from arroyo_lite.connectors.polling_http.backoff import BackoffPolicy


@dataclass
class Reconnects:
    """The failure streak of one source; :meth:`delay` says how long to wait before the next
    attempt (seconds)."""

    base_s: float
    max_s: float
    streak: int = 0

    def connected(self) -> None:
        """A connection delivered a message: the next drop waits only the base delay."""
        self.streak = 0

    def delay(self, *, failed: bool, retry_after: float | None = None) -> float:
        """Seconds before reconnecting after a connection ended (``failed``: it never
        delivered a message, or could not be made)."""
        self.streak = self.streak + 1 if failed else 1
        return BackoffPolicy(self.base_s, self.max_s).delay(self.streak, retry_after)
