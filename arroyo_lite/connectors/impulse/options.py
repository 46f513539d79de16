"""The validated options of an ``impulse`` table (``TableConfig.connector_options``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ImpulseOptions:
    """Arroyo's impulse source: ``event_rate`` rows per second (required), an optional
    ``message_count`` after which it stops, and an optional ``event_time_interval`` (micros)
    that spaces the rows' event times instead of using the wall clock."""

    event_rate: float
    message_count: int | None = None
    event_time_interval_micros: int | None = None
