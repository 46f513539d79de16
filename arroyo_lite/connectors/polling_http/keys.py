"""Row identity for ``emit_behavior = 'dedup'`` and ``changed.compare = 'rows'``.

Two pieces, both vectorised (no Python per row):

* :class:`RowHasher` computes, per row of a batch, a 64-bit hash of its PRIMARY KEY columns
  and a 64-bit digest of its content (the decoded columns: never ``_timestamp`` or metadata
  columns, which differ on every poll), with one DuckDB ``hash()`` query.
* :class:`KeyState` is the set of keys seen and the digest each had when last emitted: three
  sorted numpy arrays (key hash, digest, when the key was last seen), 24 bytes per key.
  :meth:`KeyState.admit` decides which rows to emit exactly as if the rows were taken one by
  one in order (a row is emitted when its key is new or its digest differs from the one last
  emitted for that key, so a key repeated on two pages of one poll is emitted once), with a
  stable sort, a binary search and an ordered insert.

Bounded: at most ``max_keys`` keys are kept; beyond that, the least recently seen are
forgotten (a forgotten key that comes back is emitted again, never lost). With a time bound
(``dedup.ttl``), :meth:`KeyState.expire` also forgets the keys not seen since a given time.
"When" is the stamp the caller gives :meth:`KeyState.admit` (the operator: the poll's wall
clock time in nanoseconds; by default a poll counter). The state is
serialised to one bytes value of the operator's durable state, so ``--state-dir`` saves it
atomically with the rows it describes.

Hash collisions: two different keys with the same 64-bit hash (odds about n^2 / 2^65, 3e-8
for a million keys) look like one key whose content changes, so they make rows be emitted
again, never hidden; a revised row whose digest collides with its previous one (2^-64) would
be skipped.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

#: The key of the operator's durable state this module owns.
STATE_KEY = "polling_http.dedup.keys"
_MAGIC = b"ALK2"  # "seen" stamps are the caller's (the operator's: nanoseconds)
#: A state saved before stamps were times: its "seen" values are poll counts.
_MAGIC_TICKS = b"ALK1"
_Array = np.ndarray[Any, Any]
_HEADER = struct.Struct("<4sQQ")  # magic, number of keys, poll counter


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class RowHasher:
    """Per-row 64-bit hashes of ``keys`` (may be empty) and of ``content`` columns."""

    def __init__(self, keys: Sequence[str], content: Sequence[str]) -> None:
        parts = []
        if keys:
            parts.append(f"hash({', '.join(_quote(k) for k in keys)}) AS k")
        parts.append(f"hash({', '.join(_quote(c) for c in content)}) AS d")
        self._sql = f"SELECT {', '.join(parts)} FROM rows_to_hash"
        self._has_keys = bool(keys)

    def hashes(self, batch: pa.RecordBatch | pa.Table) -> tuple[_Array, _Array]:
        """``(key hashes, digests)`` as uint64 arrays, one per row (key hashes empty when no
        key columns were given). Blocks for a DuckDB query: call off the event loop for big
        batches."""
        from arroyo_lite.formats import duck

        cursor = duck.cursor()
        try:
            cursor.register("rows_to_hash", batch)
            result = cursor.sql(self._sql).to_arrow_table()
        finally:
            cursor.close()
        digests = result.column("d").to_numpy()
        keys = result.column("k").to_numpy() if self._has_keys else np.empty(0, np.uint64)
        return keys.astype(np.uint64, copy=False), digests.astype(np.uint64, copy=False)


class KeyState:
    """The keys seen and their last emitted digests (see the module docstring)."""

    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        self.keys = np.empty(0, np.uint64)
        self.digests = np.empty(0, np.uint64)
        self.seen = np.empty(0, np.uint64)
        #: Polls admitted so far (the default stamp of ``seen``).
        self.tick = 0
        #: Keys forgotten because of ``max_keys``, since this state was made.
        self.evicted = 0
        #: Keys forgotten by :meth:`expire`, since this state was made.
        self.expired = 0

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def nbytes(self) -> int:
        return int(self.keys.nbytes + self.digests.nbytes + self.seen.nbytes)

    def admit(self, keys: _Array, digests: _Array, seen_at: int | None = None) -> _Array:
        """Which rows to emit (a boolean mask in row order); records them as emitted, and
        their keys as seen at ``seen_at`` (a stamp that never decreases; default: the poll count).

        Call once per batch, in arrival order. Rows of one batch are judged in order too:
        a key repeated with the same content is emitted once; with new content, again.
        """
        n = len(keys)
        self.tick += 1
        stamp = np.uint64(self.tick if seen_at is None else seen_at)
        if n == 0:
            return np.zeros(0, np.bool_)
        # The default sort is several times faster than a stable one; order among equal keys
        # matters only when a key repeats within the batch, which is rare: sort again then.
        order = np.argsort(keys)
        ks = keys[order]
        first = np.ones(n, np.bool_)
        first[1:] = ks[1:] != ks[:-1]
        if not first.all():
            order = np.argsort(keys, kind="stable")
            ks = keys[order]
        ds = digests[order]
        last = np.ones(n, np.bool_)
        last[:-1] = first[1:]
        # The digest each row is compared with: the row before it with the same key, or
        # for a key's first row in the batch, the state's.
        previous = np.empty(n, np.uint64)
        previous[1:] = ds[:-1]
        known = ~first
        unique = ks[first]
        at = np.searchsorted(self.keys, unique)
        found = np.zeros(len(unique), np.bool_)
        if len(self.keys):
            clipped = np.minimum(at, len(self.keys) - 1)
            found = self.keys[clipped] == unique
            previous[first] = np.where(found, self.digests[clipped], 0)
        known[first] = found
        emit_sorted = ~known | (previous != ds)
        emit = np.empty(n, np.bool_)
        emit[order] = emit_sorted
        # The state after the batch: each key's last digest (equal to the last emitted one).
        final = ds[last]
        hit = at[found]
        self.digests[hit] = final[found]
        self.seen[hit] = stamp
        fresh = ~found
        if fresh.any():
            where = at[fresh]
            self.keys = np.insert(self.keys, where, unique[fresh])
            self.digests = np.insert(self.digests, where, final[fresh])
            self.seen = np.insert(self.seen, where, stamp)
        self._evict()
        return emit

    def expire(self, before: int) -> int:
        """Forget the keys last seen before stamp ``before``; return how many."""
        if not len(self.keys):
            return 0
        keep = self.seen >= np.uint64(max(before, 0))
        gone = len(keep) - int(keep.sum())
        if gone:
            self.keys, self.digests, self.seen = (
                self.keys[keep], self.digests[keep], self.seen[keep]
            )  # fmt: skip
            self.expired += gone
        return gone

    def _evict(self) -> None:
        excess = len(self.keys) - self.max_keys
        if excess <= 0:
            return
        victims = np.argpartition(self.seen, excess - 1)[:excess]
        keep = np.ones(len(self.keys), np.bool_)
        keep[victims] = False
        self.keys, self.digests, self.seen = self.keys[keep], self.digests[keep], self.seen[keep]
        self.evicted += excess

    def to_bytes(self) -> bytes:
        """The state as one bytes value (little-endian arrays after a small header)."""
        header = _HEADER.pack(_MAGIC, len(self.keys), self.tick)
        return b"".join(
            (header, self.keys.astype("<u8").tobytes(), self.digests.astype("<u8").tobytes(),
             self.seen.astype("<u8").tobytes())
        )  # fmt: skip

    @classmethod
    def from_bytes(cls, data: bytes, max_keys: int, now: int | None = None) -> KeyState:
        """A state saved by :meth:`to_bytes` (``max_keys`` applies at once if it shrank).

        A state saved before "seen" stamps were times has its keys stamped ``now`` (when
        given), so a time bound starts counting at the restart. Raises ``ValueError`` for
        bytes that are not such a state.
        """
        if len(data) < _HEADER.size:
            raise ValueError("key state too short")
        magic, count, tick = _HEADER.unpack_from(data)
        if magic not in (_MAGIC, _MAGIC_TICKS) or len(data) != _HEADER.size + 24 * count:
            raise ValueError("not a key state")
        state = cls(max_keys)
        arrays = np.frombuffer(data, "<u8", offset=_HEADER.size).astype(np.uint64)
        state.keys, state.digests, state.seen = (
            arrays[:count], arrays[count : 2 * count], arrays[2 * count :]
        )
        state.keys, state.digests, state.seen = (
            state.keys.copy(), state.digests.copy(), state.seen.copy()
        )
        state.tick = tick
        if magic == _MAGIC_TICKS and now is not None:
            state.seen[:] = np.uint64(now)
        state._evict()
        return state
