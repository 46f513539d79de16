"""The ``blackhole`` connector: a sink that discards every row (Arroyo's ``BlackholeSink``).

No options (Arroyo's ``EmptyConfig``), no format needed: rows are counted in the sink's
status (``arroyo_status``) and dropped. Useful to measure a pipeline without its output.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from arroyo_lite.config import TableConfig
from arroyo_lite.connectors.base import Connector, SinkOperator, SourceContext
from arroyo_lite.connectors.option_spec import OptionSet


@dataclass(frozen=True, slots=True)
class BlackholeOptions:
    """Arroyo's blackhole takes no options."""


OPTIONS = OptionSet(
    BlackholeOptions,
    title="BlackholeTable",
    description="Options of a blackhole sink: none; every row is discarded.",
)


class BlackholeSink(SinkOperator):
    """Discards each batch (the runtime counts its rows)."""

    async def write(self, batch: pa.RecordBatch) -> None:
        del batch  # swallowed, as Arroyo's no-op process_batch


class BlackholeConnector(Connector):
    name = "blackhole"
    description = "No-op sink that swallows all data"
    source = False
    sink = True
    option_set = OPTIONS

    def make_sink(self, config: TableConfig, context: SourceContext) -> SinkOperator:
        return BlackholeSink(config, context)
