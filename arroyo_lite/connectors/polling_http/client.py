"""The HTTP client that every ``polling_http`` table on one event loop shares.

:func:`shared_session` gives every operator on a loop the same :class:`SharedSession`, closed
when the last user leaves: 1,000 tables polling one host reuse a handful of keep-alive
connections (one pool, one DNS cache) instead of opening 1,000 pools.

A :class:`SharedSession` holds the lean keep-alive pool of plain ``GET`` requests
(:mod:`.h1`) and makes an aiohttp session only when a request first needs one (TLS, another
method, a body, a header value the lean path leaves alone, or ``ARROYO_LITE_HTTP=aiohttp``;
:func:`.http.fetch` chooses). aiohttp is imported then too: its import alone
costs ~0.1 s (it builds two SSL contexts), which a run whose pages all go the lean path
never pays before its first row.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from arroyo_lite.connectors.polling_http import h1

if TYPE_CHECKING:
    import aiohttp


class SharedSession:
    """The lean pool of one loop's tables, and their aiohttp session once one is needed.

    ``lean`` is ``None`` when ``ARROYO_LITE_HTTP=aiohttp`` (read when the session is made).
    """

    def __init__(self) -> None:
        self.users = 0
        self.closed = False
        self.lean = h1.Pool() if h1.enabled() else None
        self._aiohttp: aiohttp.ClientSession | None = None

    def aiohttp_session(self) -> aiohttp.ClientSession:
        """The aiohttp session, made (and aiohttp imported) on the first call; must be called
        on the loop that uses it."""
        if self._aiohttp is None:
            import aiohttp

            self._aiohttp = aiohttp.ClientSession(
                # One pool for every table on the loop; no limit, like one reqwest client
                # per table.
                connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=60),
                # reqwest (so Arroyo) keeps no cookies; one table must never see another's.
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=True,
            )
        return self._aiohttp

    @property
    def has_aiohttp_session(self) -> bool:
        """Whether a request needed aiohttp (its session was made)."""
        return self._aiohttp is not None

    async def close(self) -> None:
        """Close the lean connections and the aiohttp session (if one was made)."""
        self.closed = True
        if self.lean is not None:
            self.lean.close()
        if self._aiohttp is not None:
            await self._aiohttp.close()


_sessions: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SharedSession] = (
    weakref.WeakKeyDictionary()
)


@asynccontextmanager
async def shared_session() -> AsyncIterator[SharedSession]:
    """The running loop's shared session; closed when its last user exits."""
    loop = asyncio.get_running_loop()
    shared = _sessions.get(loop)
    if shared is None or shared.closed:
        shared = _sessions[loop] = SharedSession()
    shared.users += 1
    try:
        yield shared
    finally:
        shared.users -= 1
        if shared.users == 0:
            if _sessions.get(loop) is shared:
                del _sessions[loop]
            await shared.close()
