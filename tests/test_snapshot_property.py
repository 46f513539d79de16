"""Property: random overlapping snapshots give exactly the right changelog.

For any sequence of snapshots (keys repeating within and across them, contents changing or
not), each snapshot's change batch retracts exactly the old rows of the keys that changed or
vanished and adds exactly the new rows of the keys that are new or changed (in the
snapshot's order), and replaying every change batch onto an empty table, as the store does,
leaves exactly the latest row of each key of the last snapshot. Keys are hashed and rows
digested by the real :class:`RowHasher` (DuckDB), and applied by the store's
:func:`apply_changes`.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from arroyo_lite.connectors.polling_http.keys import RowHasher
from arroyo_lite.connectors.polling_http.snapshot import SnapshotState
from arroyo_lite.runtime.updating import apply_changes, split_changes

SCHEMA = pa.schema([("id", pa.string()), ("score", pa.int64()), ("poll", pa.int64())])
HASHER = RowHasher(["id"], ["id", "score"])

Row = tuple[str, int]
snapshots = st.lists(
    st.lists(st.tuples(st.sampled_from("abcdefgh"), st.integers(0, 3)), max_size=12),
    min_size=1,
    max_size=8,
)


def table(snapshot: list[Row], poll: int) -> pa.Table:
    return pa.table(
        {
            "id": [k for k, _ in snapshot],
            "score": [v for _, v in snapshot],
            "poll": [poll] * len(snapshot),
        },
        schema=SCHEMA,
    )


def latest(snapshot: list[Row]) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, value in snapshot:
        out[key] = value
    return out


def as_rows(t: pa.Table) -> list[tuple[str, int, int]]:
    return list(zip(*(t.column(c).to_pylist() for c in ("id", "score", "poll")), strict=True))


@settings(max_examples=30, deadline=None)
@given(snapshots, st.lists(st.booleans(), min_size=8, max_size=8))
def test_changelog_of_random_snapshots(polls: list[list[Row]], complete: list[bool]) -> None:
    state = SnapshotState(SCHEMA)
    replayed = SCHEMA.empty_table()
    #: The row held per key: (score, poll that last changed it).
    held: dict[str, tuple[int, int]] = {}
    for poll, snapshot in enumerate(polls):
        rows = table(snapshot, poll)
        if rows.num_rows:
            keys, digests = HASHER.hashes(rows)
        else:
            keys = digests = np.empty(0, np.uint64)
        deletes = complete[poll]
        changes = state.apply(rows, keys, digests, deletes=deletes)
        new = latest(snapshot)
        expected_retracted = Counter(
            (k, s, p) for k, (s, p) in held.items()
            if (k in new and new[k] != s) or (k not in new and deletes)
        )  # fmt: skip
        changed = [k for k in new if k not in held or held[k][0] != new[k]]
        # Added in the snapshot's order: each changed key at its last row.
        last_at = {k: i for i, (k, _) in enumerate(snapshot)}
        expected_added = [(k, new[k], poll) for k in sorted(changed, key=last_at.__getitem__)]
        if changes.batch is None:
            assert not expected_retracted and not expected_added
        else:
            retracted, added = split_changes(changes.batch)
            assert Counter(as_rows(retracted)) == expected_retracted
            assert as_rows(added) == expected_added
            # Retractions come first in the batch.
            flags = changes.batch.column("_retract").to_pylist()
            assert flags == sorted(flags, reverse=True)
            replayed = apply_changes(replayed, changes.batch)
        assert changes.inserted == sum(k not in held for k in new)
        assert changes.deleted == (sum(k not in new for k in held) if deletes else 0)
        assert changes.repeated == len(snapshot) - len(new)
        for k in changed:
            held[k] = (new[k], poll)
        if deletes:
            held = {k: v for k, v in held.items() if k in new}
        assert sorted(as_rows(replayed)) == sorted((k, s, p) for k, (s, p) in held.items())
        assert len(state) == len(held)
    # The state survives a round trip through its bytes.
    again = SnapshotState.from_bytes(state.to_bytes(), SCHEMA)
    assert sorted(as_rows(again.rows)) == sorted(as_rows(state.rows))
