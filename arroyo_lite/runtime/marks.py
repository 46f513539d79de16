"""A table's batch boundaries: where each batch its source appended ended.

Compaction merges a table's small batches away, but event time needs the source's own
boundaries (each source batch advances the watermark once), so the store keeps them beside
the rows: one global row index per appended batch, ascending.

A table polled every second appends 86,400 of them a day, and every query snapshots them, so
the log is built for both: appending is O(1); a snapshot (:meth:`MarkLog.view`) shares the
log's sealed chunks instead of copying each mark (a tuple of 65,536 marks took ~330 us to
copy and held 40 bytes a mark, per snapshot; a chunk is an array of 8-byte integers); marks
at or below the table's first kept row are forgotten with the rows
(:meth:`MarkLog.forget_through`), so a table with a retention bound keeps marks only for the
rows it keeps; and :meth:`MarkView.between` finds the marks of a range by bisection, not by
walking every mark from the oldest.
"""

from __future__ import annotations

import array
import bisect
import collections
import itertools
from collections.abc import Iterator

#: Marks per sealed chunk: a snapshot copies at most this many (the open chunk) plus one
#: reference per sealed chunk.
CHUNK = 512


class MarkView:
    """An immutable snapshot of a :class:`MarkLog` (ascending row indexes)."""

    __slots__ = ("_chunks",)

    def __init__(self, chunks: tuple[array.array[int], ...] = ()) -> None:
        self._chunks = chunks

    def between(self, low: int, high: int) -> list[int]:
        """The marks ``m`` with ``low < m <= high``, ascending."""
        lasts = [chunk[-1] for chunk in self._chunks]  # (one per 512 marks)
        out: list[int] = []
        for index in range(bisect.bisect_right(lasts, low), len(self._chunks)):
            chunk = self._chunks[index]
            start = bisect.bisect_right(chunk, low)
            stop = bisect.bisect_right(chunk, high)
            out.extend(chunk[start:stop])
            if stop < len(chunk):
                break
        return out

    def __iter__(self) -> Iterator[int]:
        return itertools.chain.from_iterable(self._chunks)

    def __len__(self) -> int:
        return sum(len(chunk) for chunk in self._chunks)

    def __repr__(self) -> str:
        return f"MarkView({list(self)!r})"


class MarkLog:
    """The mutable log of one table (guarded by the store's lock, as the table is).

    Holds at most ``cap`` marks (rounded up to a whole chunk): past it the oldest chunk is
    forgotten, and rows older than the oldest mark kept read as one batch.
    """

    __slots__ = ("_sealed", "_open", "_cap", "_count")

    def __init__(self, cap: int) -> None:
        self._sealed: collections.deque[array.array[int]] = collections.deque()
        self._open = array.array("q")
        self._cap = cap
        self._count = 0  # marks in sealed chunks

    def append(self, mark: int) -> None:
        """Record a batch ending at global row ``mark`` (greater than every earlier one)."""
        self._open.append(mark)
        if len(self._open) == CHUNK:
            self._sealed.append(self._open)  # never written again: shared by views
            self._open = array.array("q")
            self._count += CHUNK
            while self._count > self._cap:
                self._count -= len(self._sealed.popleft())

    def forget_through(self, row: int) -> None:
        """Forget whole chunks of marks ``<= row`` (rows before ``row`` were dropped): no
        reader asks for a boundary at or before the first row kept."""
        while self._sealed and self._sealed[0][-1] <= row:
            self._count -= len(self._sealed.popleft())
        if not self._sealed and self._open and self._open[-1] <= row:
            self._open = array.array("q")

    def view(self) -> MarkView:
        """An immutable snapshot: the sealed chunks shared, the open one copied."""
        if self._open:
            return MarkView((*self._sealed, self._open[:]))
        return MarkView(tuple(self._sealed))

    def __len__(self) -> int:
        return self._count + len(self._open)
