"""The options of a ``stdout`` table: none (Arroyo's ``EmptyConfig``), declared once."""

from __future__ import annotations

from dataclasses import dataclass

from arroyo_lite.connectors.option_spec import OptionSet


@dataclass(frozen=True, slots=True)
class StdoutOptions:
    """Arroyo's stdout sink takes no options of its own (``format`` is a generic option)."""


OPTIONS = OptionSet(
    StdoutOptions,
    title="StdoutTable",
    description="Options of a stdout sink: none; rows are encoded with the table's format.",
)
