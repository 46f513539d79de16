"""A sink file that a restarted pipeline writes again: kept where the new output matches it.

With ``--state-dir`` a restarted pipeline replays its restored tables through its queries
(:attr:`~arroyo_lite.connectors.base.SourceContext.replays_inputs`), so a sink is handed,
from its first byte on, the output that the run before it wrote, then what comes after.
:class:`ResumedFile` holds the file the last run left and compares the replayed bytes with
it: bytes that match are skipped (the file is not written again there); at the first byte
that differs (a batch whose rows come in another order, a line cut short by ``kill -9``, a
query changed meanwhile) the old rest is cut off and the new bytes are written from there.
Closing cuts off what the replay did not reach.

So the file always ends as the replayed run's own output, whatever the last run managed to
write or flush, and no decision rests on a record of how far the last run got: what is on
disk is checked, never trusted. When the replay is deterministic (the rows of every batch in
the same order, as for the source batches :mod:`arroyo_lite.runtime.persist` restores), a
restart writes no byte twice and a reader of the file sees it grow only.

Blocking file I/O: call every method on a worker thread, never on the loop.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO


def common_prefix(a: bytes | memoryview, b: bytes | memoryview) -> int:
    """The length of the longest common prefix of ``a`` and ``b`` (a binary search over
    slice comparisons: no loop per byte)."""
    a, b = memoryview(a), memoryview(b)
    low, high = 0, min(len(a), len(b))
    if a[:high] == b[:high]:
        return high
    while low < high:  # invariant: a[:low] == b[:low], a[:high] != b[:high]
        middle = (low + high + 1) // 2
        if a[low:middle] == b[low:middle]:
            low = middle
        else:
            high = middle - 1
    return low


class ResumedFile:
    """The file at ``path`` (created if missing) opened to be written again from its start,
    keeping what the new output repeats (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        self._file: IO[bytes] = os.fdopen(fd, "r+b")
        #: Bytes of the old content after the current position, not yet met again.
        self.unverified = self._file.seek(0, os.SEEK_END)
        self._file.seek(0)
        self.position = 0
        #: Bytes of the old content the replay repeated (kept, not written again).
        self.kept = 0

    def write(self, data: bytes) -> int:
        """Write ``data`` at the current position, skipping what the file already holds
        there; return the number of bytes actually written."""
        if self.unverified:
            n = min(len(data), self.unverified)
            old = self._file.read(n)
            same = common_prefix(old, memoryview(data)[:n])
            self.kept += same
            self.position += same
            if same == n and n == len(data):
                self.unverified -= n
                return 0
            # The replay departs from the old content here (or goes past its end).
            self._file.seek(self.position)
            self._file.truncate()
            self.unverified = 0
            data = data[same:]
        self._file.write(data)
        self.position += len(data)
        return len(data)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        """Cut off the old content the replay did not reach, and close the file."""
        try:
            if self.unverified:
                self._file.seek(self.position)
                self._file.truncate()
                self.unverified = 0
            self._file.flush()
        finally:
            self._file.close()
