"""``emit_behavior = 'changed'``: is this body (or its rows) equal to the last one emitted?

Arroyo keeps the last emitted body in checkpointed state. We keep a strong hash of it instead
(BLAKE2b, 32 bytes) under one key of the operator's durable ``SourceContext.state``, so a 5 MiB
body costs 32 bytes of state and the runtime can persist it across restarts.

With ``changed.compare = 'rows'`` (an arroyo-lite extension) the hash is over the decoded
rows instead (their per-row digests, in order, from :mod:`.keys`): a body whose only change is
a field the table does not declare (``generated_at``, a request id) is unchanged. It is kept
under its own key, so switching the option never compares a body hash with a rows hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import MutableMapping

#: The key this module owns in ``SourceContext.state`` (byte comparison, Arroyo's).
STATE_KEY = "polling_http.last_message.blake2b"
#: Its key for ``changed.compare = 'rows'``.
ROWS_STATE_KEY = "polling_http.last_rows.blake2b"


def body_digest(body: bytes) -> bytes:
    """32-byte BLAKE2b digest of ``body`` (collisions are not a practical concern)."""
    return hashlib.blake2b(body, digest_size=32).digest()


def rows_digest(row_digests: bytes, rows: int) -> bytes:
    """32-byte digest of decoded rows, from their per-row digests in order (as bytes)."""
    hasher = hashlib.blake2b(rows.to_bytes(8, "little"), digest_size=32)
    hasher.update(row_digests)
    return hasher.digest()
def poll_digest(bodies: list[bytes]) -> bytes:
    """The digest of one poll's pages: of its body when it has one page (as before
    pagination, so a kept digest still matches), else of the pages' digests in order."""
    if len(bodies) == 1:
        return body_digest(bodies[0])
    return body_digest(b"".join(body_digest(body) for body in bodies))


class ChangeTracker:
    """Compares bodies with the last emitted one, stored in ``state``.

    :meth:`is_unchanged` only reads; :meth:`remember` records a body once it has been emitted,
    so a failed poll (or a decode that raised) never touches the state.
    """

    def __init__(self, state: MutableMapping[str, bytes], key: str = STATE_KEY) -> None:
        self._state = state
        self._key = key

    def is_unchanged(self, digest: bytes) -> bool:
        return self._state.get(self._key) == digest

    def remember(self, digest: bytes) -> None:
        self._state[self._key] = digest
