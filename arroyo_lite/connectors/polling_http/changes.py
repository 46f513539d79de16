"""``emit_behavior = 'changed'``: is this body byte-equal to the last one emitted?

Arroyo keeps the last emitted body in checkpointed state. We keep a strong hash of it instead
(BLAKE2b, 32 bytes) under one key of the operator's durable ``SourceContext.state``, so a 5 MiB
body costs 32 bytes of state and the runtime can persist it across restarts.
"""

from __future__ import annotations

import hashlib
from collections.abc import MutableMapping

#: The one key this module owns in ``SourceContext.state``.
STATE_KEY = "polling_http.last_message.blake2b"


def body_digest(body: bytes) -> bytes:
    """32-byte BLAKE2b digest of ``body`` (collisions are not a practical concern)."""
    return hashlib.blake2b(body, digest_size=32).digest()


class ChangeTracker:
    """Compares bodies with the last emitted one, stored in ``state``.

    :meth:`is_unchanged` only reads; :meth:`remember` records a body once it has been emitted,
    so a failed poll (or a decode that raised) never touches the state.
    """

    def __init__(self, state: MutableMapping[str, bytes]) -> None:
        self._state = state

    def is_unchanged(self, digest: bytes) -> bool:
        return self._state.get(STATE_KEY) == digest

    def remember(self, digest: bytes) -> None:
        self._state[STATE_KEY] = digest
