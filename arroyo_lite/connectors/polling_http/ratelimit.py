"""Rate limits of a ``polling_http`` table: the budget a server announces, and a per-host pace.

Two things slow a table down, both here:

* **The server's budget.** :func:`read_budget` reads what a response says is left, in the
  three spellings APIs use (first found wins):

  - the IETF ``RateLimit`` header (draft-ietf-httpapi-ratelimit-headers, a Structured Field
    list of policies: ``RateLimit: "default";r=0;t=30`` -- ``r`` remaining, ``t`` seconds
    to the reset), with ``RateLimit-Policy`` (``"default";q=100;w=60``: the window ``w``
    stands in for a missing ``t``); its earlier dictionary form ``limit=100, remaining=0,
    reset=30`` too;
  - the older draft's ``RateLimit-Remaining`` / ``RateLimit-Reset`` (delta seconds);
  - ``X-RateLimit-Remaining`` / ``X-RateLimit-Reset``: GitHub, Twitter and most others send
    the reset as epoch seconds; a value below :data:`EPOCH_THRESHOLD` is read as delta
    seconds (what a few APIs send).

  When the remaining budget is 0, :class:`RateGate` holds the table's next request until the
  reset (between polls and between the pages of one poll), instead of letting it fail. A
  ``403``/``429`` that says the budget is exhausted is waited out and sent again (GitHub
  answers 403 with ``X-RateLimit-Remaining: 0``); a 403 with ``Retry-After`` (GitHub's
  secondary limit) is a transient failure honouring it, as a 429 is (not "unauthorized").

* **A per-host pace** (``rate_limit.requests_per_second``): one :class:`HostPace` per
  origin and event loop, shared by every table of the session that sets the option for that
  host (the strictest rate declared wins), spacing their requests ``1 / rate`` apart.

Times: resets are turned into wall-clock nanoseconds (``until_ns``, what the status shows)
and waited with the table's clock (:mod:`arroyo_lite.clock`), so tests can drive them.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from yarl import URL

from arroyo_lite.clock import Clock
from arroyo_lite.connectors.polling_http.backoff import MAX_RETRY_AFTER, parse_retry_after
from arroyo_lite.connectors.polling_http.http import HttpError, HttpRequest

#: An ``X-RateLimit-Reset`` at or above this is epoch seconds (2001-09-09); below, a delta.
EPOCH_THRESHOLD = 1_000_000_000
#: How often one request is sent again after answers saying the budget is exhausted.
MAX_EXHAUSTED_RETRIES = 3


@dataclass(frozen=True, slots=True)
class Budget:
    """What one response says about the rate-limit budget.

    ``reset_s`` is seconds from the response until the budget is back (``None``: not said);
    ``header`` names the header it came from (for the status and ``test``)."""

    remaining: int | None
    reset_s: float | None
    header: str

    @property
    def exhausted(self) -> bool:
        """Nothing left, and a known time until there is: worth waiting for."""
        return self.remaining is not None and self.remaining <= 0 and self.reset_s is not None


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if value >= 0 and value == value else None  # no negatives, no NaN


def _split_members(text: str) -> list[str]:
    """A Structured Field list or dictionary split on its top-level commas (not in quotes)."""
    members: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\" and quoted:
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            members.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    members.append("".join(current).strip())
    return [m for m in members if m]


_PARAM = re.compile(r";\s*([a-z*][a-z0-9_.*-]*)(?:=(\"(?:[^\"\\]|\\.)*\"|[^;]*))?")


def _item(member: str) -> tuple[str, dict[str, str]]:
    """``"name";r=0;t=30`` -> ``("name", {"r": "0", "t": "30"})`` (the bare item unquoted)."""
    head, _, rest = member.partition(";")
    params = {m.group(1): (m.group(2) or "?1").strip() for m in _PARAM.finditer(";" + rest)}
    return head.strip().strip('"'), params


def _ietf(headers: Mapping[str, str]) -> Budget | None:
    """The ``RateLimit`` header: a list of policies (draft 08 on) or a dictionary (earlier)."""
    text = headers.get("RateLimit")
    if text is None:
        return None
    windows = {}
    for member in _split_members(headers.get("RateLimit-Policy", "")):
        name, params = _item(member)
        windows[name] = _number(params.get("w"))
    members = _split_members(text)
    if members and all(re.match(r"^[a-z][a-z0-9_-]*=", m) for m in members):
        # The dictionary form: limit=100, remaining=0, reset=30.
        fields = dict(m.split("=", 1) for m in members)
        remaining = _number(fields.get("remaining"))
        return Budget(
            None if remaining is None else int(remaining), _number(fields.get("reset")),
            "RateLimit",
        )  # fmt: skip
    lowest: int | None = None
    reset: float | None = None
    for member in members:
        name, params = _item(member)
        remaining = _number(params.get("r"))
        if remaining is None:
            continue
        lowest = int(remaining) if lowest is None else min(lowest, int(remaining))
        if remaining <= 0:
            # Every exhausted policy must reset before a request may go: wait for the last.
            wait = _number(params.get("t"))
            wait = wait if wait is not None else windows.get(name)
            if wait is not None:
                reset = wait if reset is None else max(reset, wait)
    if lowest is None:
        return None
    return Budget(lowest, reset, "RateLimit")


def says_budget(headers: Mapping[str, str]) -> bool:
    """Whether ``headers`` hold any header :func:`read_budget` reads a budget from (three
    lookups: what an answer without rate-limit headers costs the gate)."""
    return (
        "RateLimit" in headers
        or "RateLimit-Remaining" in headers
        or "X-RateLimit-Remaining" in headers
    )


def read_budget(headers: Mapping[str, str], now_wall: float) -> Budget | None:
    """The budget ``headers`` announce (``now_wall``: Unix seconds, for epoch resets), or
    ``None`` when they say nothing readable."""
    budget = _ietf(headers)
    if budget is not None:
        return budget
    for prefix in ("RateLimit-", "X-RateLimit-"):
        remaining = _number(headers.get(prefix + "Remaining"))
        if remaining is None:
            continue
        reset = _number(headers.get(prefix + "Reset"))
        if reset is not None and prefix == "X-RateLimit-" and reset >= EPOCH_THRESHOLD:
            reset = max(reset - now_wall, 0.0)
        return Budget(int(remaining), reset, prefix + "Remaining")
    return None


class RateLimitWaitTooLongError(HttpError):
    """The budget resets later than the caller is willing to wait (``arroyo-lite test``)."""


class HostPace:
    """Requests to one origin at most ``rate`` per second, across the tables that share it.

    Reservations: each request takes the next free moment (``interval`` after the one
    before) and sleeps until it, so concurrent tables interleave without a burst."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next_free: float | None = None

    def tighten(self, rate: float) -> None:
        """Another table declared ``rate`` for this host: the strictest one applies."""
        self.interval = max(self.interval, 1.0 / rate)

    def reserve(self, now: float) -> float:
        """The moment (monotonic seconds) the caller may send; later callers go after it."""
        start = now if self._next_free is None else max(now, self._next_free)
        self._next_free = start + self.interval
        return start


_paces: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, str, int | None], HostPace]
] = weakref.WeakKeyDictionary()


def _origin(url: str) -> tuple[str, str, int | None]:
    parsed = URL(url)
    return (parsed.scheme, parsed.host or "", parsed.port)


def host_pace(endpoint: str, rate: float) -> HostPace:
    """The running loop's pace for ``endpoint``'s origin, tightened to ``rate``."""
    loop = asyncio.get_running_loop()
    paces = _paces.setdefault(loop, {})
    origin = _origin(endpoint)
    pace = paces.get(origin)
    if pace is None:
        pace = paces[origin] = HostPace(rate)
    else:
        pace.tighten(rate)
    return pace


#: Called with the wall-clock nanoseconds a table waits until (``None``: it stopped waiting)
#: and what it waits for (``X-RateLimit-Remaining: 0``).
WaitHook = Callable[[int | None, str], None]


class RateGate:
    """One table's rate limits while it polls: send requests only when the budget allows.

    :meth:`before` waits (until the announced reset, then for the host's pace) before each
    request that :meth:`holds` (none while the budget is not spent and no pace applies: then
    the gate costs an attribute test per request); :meth:`observe` reads each answer's
    headers (three lookups when it has no rate-limit header). ``on_wait`` is told when a wait
    starts and ends (the status shows it). ``max_wait_s`` bounds a budget wait (``test``
    does not wait an hour): beyond it :meth:`before` raises
    :class:`RateLimitWaitTooLongError`. The state is in memory only: a restarted table reads
    the budget again from its first answer.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        pace: HostPace | None = None,
        paced_origin: str | None = None,
        on_wait: WaitHook | None = None,
        max_wait_s: float | None = None,
    ) -> None:
        self.clock = clock
        self.pace = pace
        self._paced = _origin(paced_origin) if paced_origin is not None else None
        self.on_wait = on_wait
        self.max_wait_s = max_wait_s
        #: Wall-clock ns until which the server said the budget is exhausted.
        self.blocked_until_ns: int | None = None
        self.blocked_by = ""

    def observe(self, headers: Mapping[str, str]) -> Budget | None:
        """Read an answer's budget; an exhausted one blocks requests until its reset."""
        if not says_budget(headers):
            return None
        now_ns = self.clock.time_ns()
        budget = read_budget(headers, now_ns / 1e9)
        if budget is not None and budget.exhausted:
            assert budget.reset_s is not None
            wait = min(budget.reset_s, MAX_RETRY_AFTER)
            self.blocked_until_ns = now_ns + int(wait * 1e9)
            self.blocked_by = f"{budget.header}: 0"
        return budget

    def exhausted_answer(self, headers: Mapping[str, str] | None) -> bool:
        """Whether a 403/429 answer with ``headers`` says the budget is spent (then it was
        observed, and :meth:`before` waits for the reset)."""
        if headers is None:
            return False
        budget = self.observe(headers)
        return budget is not None and budget.exhausted

    def delay_s(self) -> float:
        """Seconds until the announced budget is back (0 if it is not exhausted)."""
        if self.blocked_until_ns is None:
            return 0.0
        left = (self.blocked_until_ns - self.clock.time_ns()) / 1e9
        if left <= 0:
            self.blocked_until_ns = None
            return 0.0
        return left

    async def wait_for_budget(self) -> None:
        """Sleep until the announced reset, telling ``on_wait`` before and after."""
        delay = self.delay_s()
        if delay <= 0:
            return
        until = self.blocked_until_ns
        if self.max_wait_s is not None and delay > self.max_wait_s:
            raise RateLimitWaitTooLongError(
                f"rate limited ({self.blocked_by}): the budget resets in {delay:.0f} s, "
                f"longer than this waits ({self.max_wait_s:.0f} s)"
            )
        if self.on_wait is not None:
            self.on_wait(until, self.blocked_by)
        try:
            await self.clock.sleep(delay)
        finally:
            if self.on_wait is not None:
                self.on_wait(None, self.blocked_by)
        self.blocked_until_ns = None

    def holds(self, request: HttpRequest) -> bool:
        """Whether :meth:`before` may have to wait for ``request`` (a budget was spent, or
        the request goes to the paced host); when not, skipping it changes nothing."""
        return self.blocked_until_ns is not None or (
            self.pace is not None and _origin(request.url) == self._paced
        )

    async def before(self, request: HttpRequest) -> None:
        """Wait until ``request`` may be sent: the budget's reset, then the host's pace."""
        await self.wait_for_budget()
        if self.pace is not None and _origin(request.url) == self._paced:
            now = self.clock.monotonic()
            start = self.pace.reserve(now)
            if start > now:
                await self.clock.sleep(start - now)


def retry_after_of(headers: Mapping[str, str] | None, now_wall: float) -> float | None:
    """A ``Retry-After`` in ``headers`` (seconds), for a 403 that is a rate limit."""
    if headers is None:
        return None
    return parse_retry_after(headers.get("Retry-After"), now_wall)
