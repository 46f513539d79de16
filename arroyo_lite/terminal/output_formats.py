"""The output formats of ``run``, ``demo`` and the REPL, by name (no rendering here).

Kept apart from :mod:`arroyo_lite.terminal.render` (rich, pyarrow) so that a command's
``--format`` option can list them without importing the renderer: ``run --help`` stays
instant.
"""

from __future__ import annotations

from typing import Literal

OutputFormat = Literal["table", "jsonl", "csv"]
FORMATS: tuple[OutputFormat, ...] = ("table", "jsonl", "csv")
