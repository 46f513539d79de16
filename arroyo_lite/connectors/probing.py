"""The probe contract: what ``arroyo-lite test`` asks a connector and shows of the answer.

:meth:`Connector.probe <arroyo_lite.connectors.base.Connector.probe>` makes one trial
contact for a table (``polling_http``: the request its source would send) and returns a
:class:`ProbeResult`, or a :class:`ProbeSkipped` with the reason there is nothing to try
(``impulse`` generates its rows locally; a connector without a probe says so).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa


class ProbeStage(enum.StrEnum):
    """Where a probe stopped: its first failing step, or ``done``."""

    CONFIG = "config"
    REQUEST = "request"
    DECODE = "decode"
    DONE = "done"


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What one trial contact showed (``method``, ``url``: how and what was contacted).

    Every text field is already masked of secrets.

    So are the text values in ``rows`` (an API may echo the request's headers back).

    ``status``/``reason``/``latency_s`` are set once an HTTP answer (any status) arrived;
    ``size``/``content_type`` only for a 2xx body. ``rows`` holds the first decoded rows
    (``output_schema()``, ``_timestamp`` included); ``total_rows`` counts all of them.
    ``dropped`` and ``warnings`` report records ``bad_data = 'drop'`` would remove.
    """

    table: str
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    body: str | None
    stage: ProbeStage
    error: str | None = None
    status: int | None = None
    reason: str | None = None
    latency_s: float | None = None
    size: int | None = None
    content_type: str | None = None
    final_url: str | None = None
    #: What redirects kept from another origin (headers or a body holding a secret).
    withheld: tuple[str, ...] = ()
    #: The start of a non-2xx answer's body (one line, masked, shortened).
    error_body: str | None = None
    #: The start of the answer's body (one line, masked), for a probe that sends rather
    #: than decodes (a webhook sink's test record).
    response: str | None = None
    rows: pa.Table | None = None
    total_rows: int = 0
    dropped: int = 0
    warnings: tuple[str, ...] = ()
    #: What else was sent or seen, one line each (a push source's subscription messages,
    #: the messages received); shown as they are.
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """A 2xx answer (101 for a WebSocket) whose whole body decoded (nothing dropped)."""
        return self.stage is ProbeStage.DONE and self.error is None and self.dropped == 0


@dataclass(frozen=True, slots=True)
class ProbeSkipped:
    """A table ``arroyo-lite test`` does not contact, and why (one sentence, shown as is)."""

    reason: str
