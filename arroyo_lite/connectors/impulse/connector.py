"""The ``impulse`` connector: Arroyo's counter generator, validated from WITH options.

Options (Arroyo's): ``event_rate`` (double, required), ``message_count`` and
``event_time_interval`` (integers, micros); beyond Arroyo, a non-finite ``event_rate``
(``'NaN'``, ``'inf'``) is rejected. The table's columns are Arroyo's ``impulse_schema()``
(``crates/arroyo-connectors/src/impulse/mod.rs``): ``counter`` and ``subtask_index``, both
``BIGINT NOT NULL`` (signed ``Int64``).

Declaring columns is an error, ``invalid schema for impulse source``, whatever they are:
Arroyo's ``from_options`` compares the declared ``SourceField``s with its own, and the ones
built from SQL never carry the ``sql_name`` that ``impulse_schema()`` sets, so no declared
list is ever equal (even ``counter BIGINT NOT NULL, subtask_index BIGINT NOT NULL``).
Accepting such a list here would validate a file that Arroyo rejects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from arroyo_lite.config import ColumnSpec, TableConfig
from arroyo_lite.connectors.base import Connector, SourceContext, SourceOperator
from arroyo_lite.connectors.impulse.options import OPTIONS, ImpulseOptions
from arroyo_lite.errors import SqlError

if TYPE_CHECKING:
    from collections.abc import Mapping

    from arroyo_lite.connectors.options import OptionReader
    from arroyo_lite.connectors.probing import ProbeResult, ProbeSkipped

_DEFAULT_COLUMNS = (
    ColumnSpec("counter", pa.int64(), "BIGINT", nullable=False),
    ColumnSpec("subtask_index", pa.int64(), "BIGINT", nullable=False),
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
        declared = table.physical_columns
        if declared and declared != _DEFAULT_COLUMNS:
            # Without a column list the builder passes _DEFAULT_COLUMNS as they are; a
            # declared column differs from them at least by its source position.
            options.report(
                SqlError(
                    "invalid schema for impulse source",
                    position=declared[0].position or table.position,
                    hint="omit the column list: an impulse table always has counter BIGINT NOT "
                    "NULL, subtask_index BIGINT NOT NULL (Arroyo rejects any declared columns)",
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
        from arroyo_lite.connectors.probing import ProbeSkipped  # (for `test` only)

        return ProbeSkipped("'impulse' generates its rows locally; there is nothing to request")

    def make_operator(self, config: TableConfig, context: SourceContext) -> SourceOperator:
        # Imported lazily: validating SQL must not pull in the runtime.
        from arroyo_lite.connectors.impulse.operator import ImpulseOperator

        return ImpulseOperator(config, context)
