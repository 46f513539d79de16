"""The ``impulse`` connector: Arroyo's counter generator, validated from WITH options.

Options (Arroyo's): ``event_rate`` (double, required), ``message_count`` and
``event_time_interval`` (integers, micros); beyond Arroyo, a non-finite ``event_rate``
(``'NaN'``, ``'inf'``) is rejected. A table declared without columns gets Arroyo's
impulse schema; declared columns must be exactly that schema.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from arroyo_lite.config import ColumnSpec, TableConfig
from arroyo_lite.connectors.base import Connector, SourceContext, SourceOperator
from arroyo_lite.connectors.impulse.options import OPTIONS, ImpulseOptions
from arroyo_lite.connectors.probing import ProbeResult, ProbeSkipped
from arroyo_lite.errors import SqlError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from arroyo_lite.connectors.options import OptionReader

_DEFAULT_COLUMNS = (
    ColumnSpec("counter", pa.uint64(), "BIGINT UNSIGNED", nullable=False),
    ColumnSpec("subtask_index", pa.uint64(), "BIGINT UNSIGNED", nullable=False),
)


class ImpulseConnector(Connector):
    name = "impulse"
    description = "Generate rows (counter, subtask_index) at a fixed rate"
    source = True
    sink = False
    option_set = OPTIONS

    def default_columns(self) -> tuple[ColumnSpec, ...]:
        return _DEFAULT_COLUMNS

    def parse_options(self, options: OptionReader, table: TableConfig) -> ImpulseOptions:
        """Pull ``event_rate``, ``event_time_interval``, ``message_count`` (Arroyo's order),
        check the declared columns, then the schema; every problem goes through
        ``options.report``."""
        pulled = OPTIONS.pull(options)
        declared = [(c.name, c.data_type, c.nullable) for c in table.physical_columns]
        expected = [(c.name, c.data_type, c.nullable) for c in _DEFAULT_COLUMNS]
        if declared and declared != expected:
            options.report(
                SqlError(
                    "invalid schema for impulse source",
                    position=table.position,
                    hint="omit the columns, or declare exactly counter BIGINT UNSIGNED NOT NULL, "
                    "subtask_index BIGINT UNSIGNED NOT NULL",
                )
            )
        # (Also reports a missing event_rate, unless it was given with a bad value.)
        OPTIONS.check(pulled, options)
        impulse: ImpulseOptions = OPTIONS.build(pulled)
        return impulse

    async def probe(
        self,
        config: TableConfig,
        env: Mapping[str, str],
        *,
        timeout: float | None = None,  # noqa: ASYNC109 (unused: nothing is contacted)
        max_rows: int = 10,
    ) -> ProbeResult | ProbeSkipped:
        return ProbeSkipped("'impulse' generates its rows locally; there is nothing to request")

    def make_operator(self, config: TableConfig, context: SourceContext) -> SourceOperator:
        # Imported lazily: validating SQL must not pull in the runtime.
        from arroyo_lite.connectors.impulse.operator import ImpulseOperator

        return ImpulseOperator(config, context)
