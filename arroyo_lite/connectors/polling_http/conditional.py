"""Conditional requests: ``If-None-Match`` / ``If-Modified-Since`` from the last answer.

When the first page of a successful poll carried an ``ETag`` or a ``Last-Modified`` header,
:class:`Validators` keeps them under its keys of the operator's durable state (so they survive
a restart with a state directory) and the next poll's first request sends them back
(RFC 9110 section 13.1). A ``304 Not Modified`` answer is an unchanged poll: no rows, no
failure, counted in ``unchanged_polls``. Turned off by ``conditional_requests = false``.
"""

from __future__ import annotations

from collections.abc import MutableMapping

from arroyo_lite.connectors.polling_http.http import HttpResponse

ETAG_KEY = "polling_http.etag"
LAST_MODIFIED_KEY = "polling_http.last_modified"


class Validators:
    def __init__(self, state: MutableMapping[str, bytes]) -> None:
        self._state = state

    def headers(self) -> tuple[tuple[str, str], ...]:
        """The conditional headers for the next poll's first request (none at first)."""
        sent = []
        etag = self._state.get(ETAG_KEY)
        if etag is not None:
            sent.append(("If-None-Match", etag.decode("latin-1")))
        modified = self._state.get(LAST_MODIFIED_KEY)
        if modified is not None:
            sent.append(("If-Modified-Since", modified.decode("latin-1")))
        return tuple(sent)

    def remember(self, first: HttpResponse) -> None:
        """Keep the validators of a successful poll's first page (a 304 keeps the old ones
        unless it sends new ones, as RFC 9110 allows)."""
        for key, name in ((ETAG_KEY, "ETag"), (LAST_MODIFIED_KEY, "Last-Modified")):
            value = first.headers.get(name)
            if value:
                encoded = value.encode("latin-1", "replace")
                if self._state.get(key) != encoded:  # write (and persist) only a change
                    self._state[key] = encoded
            elif first.status != 304:
                self._state.pop(key, None)
