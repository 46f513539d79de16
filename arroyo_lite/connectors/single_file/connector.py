"""The ``single_file`` connector: Arroyo's bounded file source and file sink (its test harness).

A source reads ``path`` line by line (a named pipe as lines arrive), decoding every
:data:`.operator.BATCH_LINES` lines as one batch with the table's format, and is *finished* at
the end of the file: a pipeline of finished sources ends by itself. A sink writes one encoded
line per row (``format = 'json'``) or per change (``format = 'debezium_json'``) to ``path``,
which it replaces (with ``--state-dir``: writes again, keeping what a restart's replay
repeats, :mod:`.resume`). ``arroyo-lite test`` has nothing to contact for it (the default
probe says so).
"""

from __future__ import annotations

from arroyo_lite.config import TableConfig
from arroyo_lite.connectors.base import (
    Connector,
    SinkOperator,
    SourceContext,
    SourceOperator,
)
from arroyo_lite.connectors.single_file.options import OPTIONS


class SingleFileConnector(Connector):
    name = "single_file"
    description = "Read or write a local file of JSON lines (bounded source, file sink)"
    source = True
    sink = True
    option_set = OPTIONS

    def make_operator(self, config: TableConfig, context: SourceContext) -> SourceOperator:
        # Imported lazily: validating SQL must not pull in the decoders.
        from arroyo_lite.connectors.single_file.operator import SingleFileSource

        return SingleFileSource(config, context)

    def make_sink(self, config: TableConfig, context: SourceContext) -> SinkOperator:
        from arroyo_lite.connectors.single_file.operator import SingleFileSink

        return SingleFileSink(config, context)
