"""``emit_behavior = 'snapshot'``: each poll is the whole current state of a collection.

The table holds the latest row per PRIMARY KEY; each poll's rows (all its pages) are compared
with the rows held, and the source emits the difference as one change batch
(:mod:`arroyo_lite.runtime.updating`: the table's columns plus ``_retract``): a new key is
added, a key whose content changed is retracted (its old row) and added (its new one), a
key missing from the snapshot is retracted, and an unchanged row emits nothing. A row that
is unchanged keeps the row emitted for it before (its ``_timestamp`` and metadata columns
say when it last changed).

:class:`SnapshotState` holds the current rows sorted by key hash, with the key hashes and
content digests (from :class:`~.keys.RowHasher`) as numpy arrays beside them; a poll's
changes come from a stable sort, one binary search and two ``take``\\ s (no Python per row).
Within one snapshot a key that repeats keeps its last row. Its bytes (:meth:`to_bytes`: the
arrays, then the rows as Arrow IPC) are the operator's durable state, so ``--state-dir``
resumes it after a restart; the table's content is not saved separately.

Memory: the rows are held by this state and by the table (about twice the Arrow size of the
collection), plus their serialised copy in the durable state, plus 16 bytes per key.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from arroyo_lite.config import RETRACT_COLUMN
from arroyo_lite.formats.pandas_free import empty_table

#: The key of the operator's durable state this module owns.
STATE_KEY = "polling_http.snapshot"
_MAGIC = b"ALS1"
_HEADER = struct.Struct("<4sQ")  # magic, number of keys
_Array = np.ndarray[Any, Any]
_RETRACT_FIELD = pa.field(RETRACT_COLUMN, pa.bool_(), nullable=False)


@dataclass(frozen=True, slots=True)
class SnapshotChanges:
    """What one snapshot changed: the change batch to emit (``None`` when nothing changed)
    and counts of keys inserted, updated, deleted and unchanged, and of rows that repeated a
    key within the snapshot."""

    batch: pa.RecordBatch | None
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    repeated: int = 0


def change_batch(retracted: pa.Table, added: pa.Table) -> pa.RecordBatch:
    """One change batch: ``retracted``'s rows retracted, then ``added``'s rows added."""
    flags = np.concatenate(
        [np.ones(retracted.num_rows, np.bool_), np.zeros(added.num_rows, np.bool_)]
    )
    both = pa.concat_tables([retracted, added]).combine_chunks()
    table = both.append_column(_RETRACT_FIELD, pa.array(flags, pa.bool_()))
    batches = table.to_batches()
    if len(batches) == 1:
        return batches[0]
    return pa.concat_batches(batches)  # type: ignore[attr-defined,no-any-return]


class SnapshotState:
    """The rows of the last snapshot, by key (see the module docstring)."""

    def __init__(self, schema: pa.Schema) -> None:
        self.schema = schema
        self.keys = np.empty(0, np.uint64)
        self.digests = np.empty(0, np.uint64)
        self.rows: pa.Table = empty_table(schema)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def nbytes(self) -> int:
        """Bytes held: the arrays and the rows."""
        return int(self.keys.nbytes + self.digests.nbytes + self.rows.nbytes)

    def current(self) -> pa.RecordBatch | None:
        """The rows held, as one change batch adding them all (``None`` when empty): what a
        restarted source emits first, to fill its (empty) table."""
        if not len(self):
            return None
        return change_batch(empty_table(self.schema), self.rows)

    def apply(
        self, rows: pa.Table, keys: _Array, digests: _Array, *, deletes: bool = True
    ) -> SnapshotChanges:
        """Take ``rows`` (with their key hashes and digests, in row order) as the new
        snapshot; return its changes. ``deletes=False`` (a snapshot known to be incomplete,
        such as one with dropped bad records): keys missing from it are kept, not deleted.
        """
        n = rows.num_rows
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        last = np.ones(n, np.bool_)
        last[:-1] = sorted_keys[1:] != sorted_keys[:-1]
        pick = order[last]  # row index of each key's last row, in key order
        new_keys, new_digests = sorted_keys[last], digests[pick]
        held = len(self.keys)
        at = np.searchsorted(self.keys, new_keys)
        clipped = np.minimum(at, max(held - 1, 0))
        found = (self.keys[clipped] == new_keys) if held else np.zeros(len(new_keys), np.bool_)
        same = found & (self.digests[clipped] == new_digests) if held else found
        changed = found & ~same
        present = np.zeros(held, np.bool_)
        present[clipped[found]] = True
        gone = np.flatnonzero(~present) if deletes else np.empty(0, np.int64)
        if not len(gone) and same.all():
            return SnapshotChanges(None, unchanged=int(same.sum()), repeated=n - len(pick))
        retract_at = np.sort(np.concatenate([clipped[changed], gone]))
        add_at = np.sort(pick[~same])  # in the snapshot's order
        batch = change_batch(self.rows.take(retract_at), rows.take(add_at))
        # The rows held next: the old row for an unchanged key, else the snapshot's; keys
        # missing from an incomplete snapshot stay. Indexes into old rows ++ new rows.
        kept = np.flatnonzero(~present) if not deletes else np.empty(0, np.int64)
        source = np.where(same, clipped, held + pick)
        all_keys = np.concatenate([new_keys, self.keys[kept]])
        all_digests = np.concatenate([new_digests, self.digests[kept]])
        all_sources = np.concatenate([source, kept])
        by_key = np.argsort(all_keys, kind="stable")
        combined = pa.concat_tables([self.rows, rows.cast(self.schema)])
        self.rows = combined.take(all_sources[by_key]).combine_chunks()
        self.keys, self.digests = all_keys[by_key], all_digests[by_key]
        return SnapshotChanges(
            batch,
            inserted=int((~found).sum()),
            updated=int(changed.sum()),
            deleted=len(gone),
            unchanged=int(same.sum()),
            repeated=n - len(pick),
        )

    def to_bytes(self) -> bytes:
        """The state as one bytes value: a header, the arrays, then the rows (Arrow IPC)."""
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, self.schema) as writer:
            writer.write_table(self.rows)
        return b"".join(
            (
                _HEADER.pack(_MAGIC, len(self.keys)),
                self.keys.astype("<u8").tobytes(),
                self.digests.astype("<u8").tobytes(),
                sink.getvalue().to_pybytes(),
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes, schema: pa.Schema) -> SnapshotState:
        """A state saved by :meth:`to_bytes` for a table of ``schema``.

        Raises ``ValueError`` for bytes that are not such a state (or another schema's).
        """
        if len(data) < _HEADER.size:
            raise ValueError("snapshot state too short")
        magic, count = _HEADER.unpack_from(data)
        arrays_end = _HEADER.size + 16 * count
        if magic != _MAGIC or len(data) < arrays_end:
            raise ValueError("not a snapshot state")
        arrays = np.frombuffer(data, "<u8", count=2 * count, offset=_HEADER.size)
        try:
            rows = pa.ipc.open_stream(pa.py_buffer(data[arrays_end:])).read_all()
        except pa.ArrowInvalid as e:
            raise ValueError(f"snapshot rows unreadable: {e}") from e
        if rows.num_rows != count or rows.schema.names != schema.names:
            raise ValueError("snapshot state of another table shape")
        state = cls(schema)
        state.keys = arrays[:count].astype(np.uint64)
        state.digests = arrays[count:].astype(np.uint64)
        state.rows = rows.cast(schema)
        return state
