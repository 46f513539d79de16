"""The per-poll values a table remembers between polls: last success and cursor.

:class:`PollMemory` keeps them under its keys of the operator's durable
``SourceContext.state`` (the runtime persists it with ``--state-dir``, so a restarted table
resumes from the same cursor and time window). :meth:`values` gives the
:class:`~.templates.PollValues` of a poll about to start; :meth:`succeeded` records a poll
once all of its rows were emitted, so a failed poll never moves the cursor.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass

from arroyo_lite.connectors.polling_http.http import HttpResponse
from arroyo_lite.connectors.polling_http.templates import PollValues
from arroyo_lite.formats.json_path import JsonPath, as_text

LAST_SUCCESS_KEY = "polling_http.last_success_ns"
CURSOR_KEY = "polling_http.cursor"


@dataclass(frozen=True, slots=True)
class CursorSource:
    """Where ``[[ cursor ]]`` is read from in a successful poll's last response."""

    path: JsonPath | None = None
    header: str | None = None
    initial: str | None = None

    def read(self, response: HttpResponse) -> str | None:
        if self.header is not None:
            return response.headers.get(self.header)
        if self.path is not None:
            return as_text(self.path.find_in(response.body))
        return None


class PollMemory:
    """Remembers only what the table's request names (``uses``): a table without per-poll
    values writes no state on a poll."""

    def __init__(
        self,
        state: MutableMapping[str, bytes],
        cursor: CursorSource,
        interval_ns: int,
        uses: frozenset[str],
    ) -> None:
        self._state = state
        self._cursor = cursor
        self._interval_ns = interval_ns
        self._uses = uses

    def values(self, now_ns: int) -> PollValues:
        """This poll's values: before any success, ``last_success`` is one interval ago."""
        last = self._state.get(LAST_SUCCESS_KEY)
        cursor = self._state.get(CURSOR_KEY)
        return PollValues(
            now_ns=now_ns,
            last_success_ns=int(last) if last is not None else now_ns - self._interval_ns,
            cursor=cursor.decode("utf-8") if cursor is not None else self._cursor.initial,
        )

    def succeeded(self, values: PollValues | None, last: HttpResponse | None) -> None:
        """Record a successful poll started at ``values.now_ns`` whose last page was ``last``
        (``None``: unchanged, 304); a response without a cursor keeps the previous one.
        ``values`` are what :meth:`values` gave for the poll (``None`` if it was not asked:
        the request names no per-poll value)."""
        if values is not None and "last_success" in self._uses:
            self._state[LAST_SUCCESS_KEY] = str(values.now_ns).encode()
        if last is not None and "cursor" in self._uses:
            cursor = self._cursor.read(last)
            if cursor is not None:
                self._state[CURSOR_KEY] = cursor.encode("utf-8")
