"""Run a push source (sse, websocket) built from real SQL against a real server.

:func:`source_table` compiles one ``CREATE TABLE`` with the SQL front end;
:class:`RunningStream` runs the connector's operator (made through the registry) as
:class:`~tests.support.running.RunningOperator` does. The clock is the real one unless a test
passes a ``ManualClock``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

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
