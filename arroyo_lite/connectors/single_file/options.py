"""The options of a ``single_file`` table (Arroyo's ``SingleFileTable``), declared once.

``type`` (``'source'`` or ``'sink'``) is not declared here: it is the generic table-type
option the front end reads for every connector that is both a source and a sink.
"""

from __future__ import annotations

from dataclasses import dataclass

from arroyo_lite.connectors.option_spec import OptionKind, OptionSet, option


@dataclass(frozen=True, slots=True)
class SingleFileOptions:
    """A file of one message per line: read once by a source, written by a sink."""

    path: str = option(
        OptionKind.STRING,
        "The file: read from start to end by a source (then it is finished); created or "
        "replaced by a sink, one encoded row (or change) per line.",
        required=True,
        examples=("/tmp/cars.json",),
    )
    wait_for_control: bool | None = option(
        OptionKind.BOOLEAN,
        "Arroyo's test hook (wait for a control message after each line); accepted and "
        "ignored by arroyo-lite, which has no control messages.",
    )


OPTIONS = OptionSet(
    SingleFileOptions,
    title="SingleFileTable",
    description="Options of a single_file table: a local file of JSON lines, read once "
    "(source) or written (sink).",
)
