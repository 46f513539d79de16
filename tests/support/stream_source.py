"""Run a push source (sse, websocket) built from real SQL against a real server.

:func:`source_table` compiles one ``CREATE TABLE`` with the SQL front end;
:class:`RunningStream` runs the connector's operator (made through the registry) as
:class:`~tests.support.running.RunningOperator` does. The clock is the real one unless a test
passes a ``ManualClock``. :class:`SlowConsumer` is the ``on_batch`` of the backpressure tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pyarrow as pa

from arroyo_lite.config import TableConfig
from arroyo_lite.connectors.base import SourceContext, SourceOperator
from arroyo_lite.connectors.registry import get_connector
from arroyo_lite.sql import compile_sql
from tests.support.running import RunningOperator


def source_table(sql: str, env: Mapping[str, str] | None = None) -> TableConfig:
    """The one source table ``sql`` declares (validated by the real front end)."""
    program = compile_sql(sql + "\nSELECT 1;", env=dict(env or {}))
    (table,) = program.tables
    return table


@dataclass
class RunningStream(RunningOperator):
    """``async with RunningStream(config) as src:`` runs the source until the block ends."""

    def make_operator(self, context: SourceContext) -> SourceOperator:
        assert self.config.connector is not None
        return get_connector(self.config.connector).make_operator(self.config, context)


@dataclass
class SlowConsumer:
    """An ``on_batch`` that takes 20 ms per batch and measures how far the server got ahead
    of it: the most bytes ``sent()`` exceeded the rows taken so far times ``row_bytes`` (the
    bytes the server sends per row)."""

    sent: Callable[[], int]
    row_bytes: int
    received: int = 0
    ahead: int = 0

    def __call__(self, batch: pa.RecordBatch) -> None:
        time.sleep(0.02)  # the consumer's work
        self.received += batch.num_rows
        self.ahead = max(self.ahead, self.sent() - self.received * self.row_bytes)
