"""Helpers for tests that run a real :class:`PollingHttpOperator` against a real server.

:func:`polling_table` builds a ``TableConfig`` directly (what the SQL front end would produce);
:class:`RunningSource` runs a :class:`PollingHttpOperator` as
:class:`~tests.support.running.RunningOperator` does, on a manual clock by default, and waits
for its polls (:meth:`RunningSource.sleeping_after`, :meth:`RunningSource.run_polls`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from arroyo_lite.clock import Clock, ManualClock
from arroyo_lite.config import (
    TIMESTAMP_COLUMN,
    BadData,
    ColumnSpec,
    Format,
    FormatSpec,
    FramingSpec,
    TableConfig,
    TableKind,
)
from arroyo_lite.connectors.base import SourceContext
from arroyo_lite.connectors.polling_http.operator import PollingHttpOperator
from arroyo_lite.connectors.polling_http.options import PollingHttpOptions
from tests.support.http_app import wait_until
from tests.support.running import RunningOperator

VALUE = ColumnSpec(name="value", data_type=pa.string(), sql_type="TEXT")
ID_NAME = (
    ColumnSpec(name="id", data_type=pa.int64(), sql_type="BIGINT"),
    ColumnSpec(name="name", data_type=pa.string(), sql_type="TEXT"),
)


def polling_table(
    endpoint: str,
    *,
    columns: tuple[ColumnSpec, ...] = (VALUE,),
    fmt: Format = Format.RAW_STRING,
    newline: bool = False,
    bad_data: BadData = BadData.FAIL,
    name: str = "t",
    **options: Any,
) -> TableConfig:
    """A validated polling_http source table; ``options`` are PollingHttpOptions fields."""
    return TableConfig(
        name=name,
        kind=TableKind.SOURCE,
        columns=columns,
        connector="polling_http",
        format=FormatSpec(format=fmt),
        framing=FramingSpec() if newline else None,
        bad_data=bad_data,
        connector_options=PollingHttpOptions(endpoint=endpoint, **options),
    )


@dataclass
class RunningSource(RunningOperator):
    """``async with RunningSource(config, ...) as src:`` runs the operator until the block ends
    (on a :class:`ManualClock` unless a test passes another clock)."""

    clock: Clock = field(default_factory=ManualClock)
    operator_class: type[PollingHttpOperator] = PollingHttpOperator

    def make_operator(self, context: SourceContext) -> PollingHttpOperator:
        return self.operator_class(self.config, context)

    def timestamps(self) -> list[int]:
        """Every emitted row's ``_timestamp`` as integer nanoseconds since the epoch."""
        return [
            t for b in self.batches for t in b.column(TIMESTAMP_COLUMN).cast(pa.int64()).to_pylist()
        ]

    async def sleeping_after(self, polls: int) -> None:
        """Wait until ``polls`` polls are done and the operator sleeps on the manual clock."""
        await wait_until(
            lambda: self.status.polls >= polls and self.manual.sleepers >= 1,
            what=f"poll {polls} to finish and the source to sleep",
        )
        assert self.status.polls == polls, f"expected {polls} polls, saw {self.status.polls}"

    async def run_polls(self, polls: int, every: float = 1.0) -> None:
        """Let the first ``polls`` polls happen: wait for each to finish, advance the manual
        clock ``every`` seconds (the default poll interval) to the next, and return once the
        last is done and the operator sleeps."""
        for poll in range(1, polls):
            await self.sleeping_after(poll)
            await self.manual.advance(every)
        await self.sleeping_after(polls)
