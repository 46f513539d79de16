"""When the next poll starts: the tick schedule, exponential backoff, and ``Retry-After``.

Pure functions and one small value class, no I/O and no clock of their own: the operator passes
monotonic seconds in and gets monotonic seconds out, so the rules are easy to test exhaustively.

The rules (Arroyo's timer, plus our backoff):

* Ticks follow tokio's ``MissedTickBehavior::Delay``: the next poll starts ``interval`` after the
  previous *start*; a poll that overruns its tick is followed at once by the next one, and the
  ticks after that are re-based on that moment. Polls never overlap and never pile up.
* After a *transient* failure (timeout, refused connection, 429, 5xx) the next poll waits
  ``interval * 2**(n-1)`` after the failed poll *ended* (``n`` = transient failures in a row),
  capped at ``max_backoff`` (but never shorter than ``interval``), and at least as long as the
  server's ``Retry-After``.
"""

from __future__ import annotations

import datetime
import email.utils
import math
from dataclasses import dataclass

#: Retry-After values beyond this (seconds) are treated as this: a sane upper bound on a wish.
MAX_RETRY_AFTER = 24 * 3600.0


def next_tick(previous_start: float, interval: float, now: float) -> float:
    """Start of the next regular poll: ``previous_start + interval``, or ``now`` if that passed.

    Returning ``now`` on an overrun is what re-bases later ticks (tokio's ``Delay``): the
    caller passes the returned value as ``previous_start`` next time.
    """
    return max(previous_start + interval, now)


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """Exponential backoff for transient failures, in seconds."""

    interval: float
    max_backoff: float

    def delay(self, consecutive: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the ``consecutive``-th transient failure in a row (1-based).

        ``interval``, doubling per failure, capped at ``max(max_backoff, interval)``; never less
        than ``retry_after`` (the server's wish) when one is given.
        """
        cap = max(self.max_backoff, self.interval)
        # Cap the exponent too: 2**1000 is a float overflow waiting to happen.
        exponent = min(max(consecutive, 1) - 1, 62)
        delay = min(cap, self.interval * math.ldexp(1.0, exponent))
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
        return delay


def parse_retry_after(value: str | None, now_wall: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value, or ``None`` if absent or malformed.

    Accepts delta-seconds (``"120"``) and an HTTP-date (``"Wed, 21 Oct 2015 07:28:00 GMT"``),
    the latter relative to ``now_wall`` (Unix seconds). A date in the past means 0.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        # RFC 9110 dates are always GMT; a zone-less parse result ("-0000") is UTC too.
        when = when.replace(tzinfo=datetime.UTC)
    return min(max(0.0, when.timestamp() - now_wall), MAX_RETRY_AFTER)
