"""Where Arroyo's SQL corpus (``reference/arroyo-sql-corpus``) is, for the tests that read it.

``$ARROYO_SQL_CORPUS`` when set (a clone anywhere, e.g. under ``/tmp``, finds it that way);
else ``shared/reference/arroyo-sql-corpus`` next to the checkout or next to its directory of
worktrees. :data:`CORPUS` is ``None`` when neither exists: the tests that need it skip,
saying how to point at it (:data:`MISSING`).
"""

from __future__ import annotations

import os
from pathlib import Path

_REPO = Path(__file__).resolve().parents[2]


def _find() -> Path | None:
    configured = os.environ.get("ARROYO_SQL_CORPUS")
    if configured:
        return Path(configured) if Path(configured).is_dir() else None
    for parent in (_REPO, *_REPO.parents[:2]):
        candidate = parent / "shared" / "reference" / "arroyo-sql-corpus"
        if candidate.is_dir():
            return candidate
    return None


CORPUS = _find()
#: The reason a test that needs the corpus skips without it.
MISSING = (
    "Arroyo SQL corpus not found (it ships next to the repo as "
    "shared/reference/arroyo-sql-corpus; or set ARROYO_SQL_CORPUS)"
)
