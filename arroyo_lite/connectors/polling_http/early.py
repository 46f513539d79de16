"""Decoding a poll's pages while the next ones are fetched.

A paginated poll's rows reach the table together, once its last page is in (see
:class:`~.operator._PollOutput`), so its first row waits for every page. Decoding each page
only after the last one arrived puts the decodes after the fetches; :class:`EarlyDecodes`
starts each page's decode on a worker thread as soon as the poll is known to have several
pages (its second page arrived), so pyarrow's reader (which releases the GIL) works while
the loop fetches the next page. Decodes run one at a time, in page order, as they would on
the loop; their results are taken in order by the operator, which does the rest of a page's
work (compare, metadata, dedup, status) exactly as before.

A one-page poll never uses it: its body is decoded as before (small bodies together with
other tables' polls, :mod:`.coalesce`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

from arroyo_lite.formats.result import Decoder, DecodeResult


class EarlyDecodes:
    """The decodes started so far for one poll's pages (index 0 = page 1).

    ``now_ns`` stamps each page as it is handed over (its rows' arrival time).
    """

    def __init__(self, decoder: Decoder, now_ns: Callable[[], int]) -> None:
        self._decoder = decoder
        self._now_ns = now_ns
        self._tasks: list[asyncio.Task[tuple[DecodeResult, int]]] = []

    @property
    def started(self) -> int:
        return len(self._tasks)

    def catch_up(self, bodies: Sequence[bytes]) -> None:
        """Start decoding every body of ``bodies`` (the poll's pages so far) not started yet."""
        while len(self._tasks) < len(bodies):
            body = bodies[len(self._tasks)]
            after = self._tasks[-1] if self._tasks else None
            self._tasks.append(asyncio.ensure_future(self._decode(body, self._now_ns(), after)))

    async def _decode(
        self, body: bytes, received_at_ns: int, after: asyncio.Task[object] | None
    ) -> tuple[DecodeResult, int]:
        if after is not None:
            await asyncio.wait([after])  # one at a time, in page order (whatever it gave)
        result = await asyncio.to_thread(self._decoder.decode, body, received_at_ns)
        return result, received_at_ns

    async def result(self, index: int) -> tuple[DecodeResult, int]:
        """Page ``index``'s decode and its arrival time; raises what its decode raised."""
        return await self._tasks[index]

    def abandon(self) -> None:
        """The poll ended (failed, cancelled or done): cancel the decodes not finished, and
        take the errors of finished ones nobody asked for (no "never retrieved" warnings)."""
        for task in self._tasks:
            if not task.done():
                task.cancel()
            elif not task.cancelled():
                with contextlib.suppress(BaseException):
                    task.exception()
