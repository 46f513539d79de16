"""The options of an ``impulse`` table, declared once (``TableConfig.connector_options``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from arroyo_lite.connectors.option_spec import OptionKind, OptionSet, option


def _finite(rate: float) -> tuple[str, str | None] | None:
    # Arroyo parses 'NaN' and 'inf' as doubles; a generator cannot run at such a rate
    # (checked here, beyond Arroyo, instead of failing when the table starts).
    if math.isfinite(rate):
        return None
    return (
        f"invalid value for 'event_rate': {rate} (must be a finite number)",
        "rows per second, e.g. event_rate = 10",
    )


@dataclass(frozen=True, slots=True)
class ImpulseOptions:
    """Arroyo's impulse source: ``event_rate`` rows per second (required), an optional
    ``message_count`` after which it stops, and an optional ``event_time_interval`` (micros)
    that spaces the rows' event times instead of using the wall clock.

    (Fields in the order of this class's constructor since it was written; Arroyo pulls
    ``event_time_interval`` before ``message_count``, which only orders two errors.)"""

    event_rate: float = option(
        OptionKind.NUMBER,
        "Rows generated per second.",
        required=True,
        exclusive_minimum=0,
        check=_finite,
    )
    message_count: int | None = option(
        OptionKind.INTEGER, "Stop after this many rows (default: never stop).", minimum=0
    )
    event_time_interval_micros: int | None = option(
        OptionKind.INTEGER,
        "Microseconds between the event times of consecutive rows, instead of the wall clock.",
        key="event_time_interval",
        minimum=0,
    )


OPTIONS = OptionSet(
    ImpulseOptions,
    title="ImpulseTable",
    description="Options of an impulse table: a generator of counter rows, for demos and "
    "tests without a network.",
)
