"""Decoding a poll's pages while the next ones are fetched.

A paginated poll's rows reach the table together, once its last page is in (see
:class:`~.operator._PollOutput`), so its first row waits for every page. Decoding each page
only after the last one arrived puts the decodes after the fetches; :class:`EarlyDecodes`
starts decoding on a worker thread as soon as the poll is known to have several pages (its
second page arrived), so pyarrow's reader (which releases the GIL) works while the loop
fetches the next pages.

Decodes run one at a time, in page order, as they would on the loop, but not one per page:
each decode takes every page handed over since the previous one started, in one
:meth:`~arroyo_lite.formats.result.Decoder.decode_pages` call (for JSON arrays, one native
read of all of them: the read's set-up is paid once per group, not once per page). When
decoding keeps up with the fetches a group is a page or two; when it falls behind, groups
grow, and the pages still to decode when the last one arrives are read together on
pyarrow's threads. Each page's result (or its decode's error) is taken in order by the
operator, which does the rest of a page's work (compare, metadata, dedup, status) exactly
as before.

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
        #: One future per page handed over: its decode and arrival time, or its error.
        self._tasks: list[asyncio.Future[tuple[DecodeResult, int]]] = []
        #: Pages handed over and not decoding yet: (index, body, arrival time).
        self._waiting: list[tuple[int, bytes, int]] = []
        #: The task decoding groups of waiting pages until none is left.
        self._worker: asyncio.Task[None] | None = None

    @property
    def started(self) -> int:
        return len(self._tasks)

    def catch_up(self, bodies: Sequence[bytes]) -> None:
        """Hand over every body of ``bodies`` (the poll's pages so far) not handed over yet;
        they are decoded after the pages before them."""
        loop = asyncio.get_running_loop()
        while len(self._tasks) < len(bodies):
            index = len(self._tasks)
            self._tasks.append(loop.create_future())
            self._waiting.append((index, bodies[index], self._now_ns()))
        if self._worker is None and self._waiting:
            self._worker = loop.create_task(self._decode_waiting())

    async def _decode_waiting(self) -> None:
        try:
            while self._waiting:
                group, self._waiting = self._waiting, []
                try:
                    results = await asyncio.to_thread(
                        self._decoder.decode_pages,
                        [body for _, body, _ in group],
                        [at for _, _, at in group],
                    )
                except Exception as e:  # not a decode's error (decode_pages returns those)
                    for index, _, _ in group:
                        if not self._tasks[index].done():
                            self._tasks[index].set_exception(e)
                    continue
                for (index, _, at), result in zip(group, results, strict=True):
                    future = self._tasks[index]
                    if future.done():
                        continue  # abandoned
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result((result, at))
        finally:
            self._worker = None

    async def result(self, index: int) -> tuple[DecodeResult, int]:
        """Page ``index``'s decode and its arrival time; raises what its decode raised."""
        return await self._tasks[index]

    def abandon(self) -> None:
        """The poll ended (failed, cancelled or done): cancel the decodes not finished, and
        take the errors of finished ones nobody asked for (no "never retrieved" warnings)."""
        if self._worker is not None:
            self._worker.cancel()
        self._waiting = []
        for task in self._tasks:
            if not task.done():
                task.cancel()
            elif not task.cancelled():
                with contextlib.suppress(BaseException):
                    task.exception()
