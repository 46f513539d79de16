"""The ``stdout`` connector: Arroyo's sink that writes every result row to standard output.

As in Arroyo it is a sink only and takes no options of its own. Rows are encoded with the
table's ``format`` (Arroyo's stdout sink defaults to ``json`` when none is given): with
``json``, one JSON object per line, without ``_timestamp``
(:mod:`arroyo_lite.formats.encode`). A table declared without columns takes its columns from
the query inserted into it.
"""

from __future__ import annotations

from arroyo_lite.config import TableConfig
from arroyo_lite.connectors.base import Connector, SinkOperator, SourceContext
from arroyo_lite.connectors.stdout.options import OPTIONS


class StdoutConnector(Connector):
    name = "stdout"
    description = "Write outputs to stdout"
    source = False
    sink = True
    option_set = OPTIONS

    def make_sink(self, config: TableConfig, context: SourceContext) -> SinkOperator:
        # Imported lazily: validating SQL must not pull in the encoders.
        from arroyo_lite.connectors.stdout.operator import StdoutSink

        return StdoutSink(config, context)
