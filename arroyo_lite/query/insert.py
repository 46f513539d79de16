"""``INSERT INTO``: a query's rows conformed to the target's columns, once or continuously.

Into a *memory* table, :func:`conform` shapes the query's one-off result (the session stores
it); an append-only query over live tables instead keeps appending its new rows to the
memory table (Arroyo's memory tables are streams), which queries then follow as a source.
Into a *sink* table, an :class:`InsertPump` runs the query continuously: a daemon thread
iterates the :class:`~arroyo_lite.query.continuous.ContinuousQuery` and delivers each batch
of new rows, conformed, to the sink's :class:`~arroyo_lite.runtime.sinks.SinkInput`, while
the sources run. An append-only sink (``json``, ...) takes the new rows of an append-only
query; an updating sink (``format = 'debezium_json'``) takes the changes of any query
(:mod:`arroyo_lite.query.changelog`); an updating query into an append-only sink is rejected,
as Arroyo rejects it. Several ``INSERT``s into one sink merge into it (Arroyo's too).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from arroyo_lite.config import (
    RETRACT_COLUMN,
    TIMESTAMP_COLUMN,
    TIMESTAMP_TYPE,
    TableConfig,
    TableKind,
)
from arroyo_lite.connectors.base import SinkOperator
from arroyo_lite.errors import ArroyoLiteError, QueryError, SqlError
from arroyo_lite.formats.pandas_free import empty_table
from arroyo_lite.query.changelog import key_of, with_key
from arroyo_lite.query.continuous import ContinuousQuery
from arroyo_lite.query.engine import Engine, offset_position
from arroyo_lite.query.shape import QueryKind
from arroyo_lite.runtime.sinks import SinkInput
from arroyo_lite.runtime.store import Store
from arroyo_lite.runtime.tables import Tables
from arroyo_lite.sql.join_rules import APPEND_ONLY_HINT, UPDATING_INTO_APPEND_ONLY
from arroyo_lite.sql.statements import Insert

log = logging.getLogger(__name__)

#: How long :meth:`InsertPump.stop` waits for the pump thread's last delivery (seconds).
STOP_TIMEOUT = 10.0
#: How long a bounded pipeline's end waits for each pump and sink to write everything: the
#: last results are what the run is for (a loaded machine may take a while), yet a stuck
#: query must not hang the process forever.
END_TIMEOUT = 600.0


def conform(result: pa.Table, schema: pa.Schema, statement: Insert, now_ns: int) -> pa.Table:
    """Map an INSERT query's columns onto a table's, casting types: by position, or
    through the statement's column list (``INSERT INTO t (b, a) ...``; unlisted columns are
    NULL).

    ``_timestamp`` is taken from the result if it has one, else the insert time. Raises
    :class:`QueryError` (at the statement) when the columns do not fit.
    """
    declared = [f for f in schema if f.name != TIMESTAMP_COLUMN]
    # By position in the result (a query may repeat a column name).
    positions = [i for i, c in enumerate(result.column_names) if c != TIMESTAMP_COLUMN]
    columns = [result.column_names[i] for i in positions]
    targets = list(statement.columns) or [f.name for f in declared]
    if len(columns) != len(targets):
        raise QueryError(
            f"INSERT INTO {statement.target}: the query returns {len(columns)} column(s), "
            f"the {'column list names' if statement.columns else 'table has'} {len(targets)}",
            position=statement.position,
        )
    by_target = {name.lower(): index for index, name in enumerate(targets)}
    unknown = set(by_target) - {f.name.lower() for f in declared}
    if unknown or len(by_target) != len(targets):
        raise QueryError(
            f"INSERT INTO {statement.target}: the column list must name each of the table's "
            "columns at most once (" + ", ".join(f.name for f in declared) + ")",
            position=statement.position,
        )
    arrays: list[Any] = []
    for field in declared:
        index = by_target.get(field.name.lower())
        if index is None:
            arrays.append(pa.nulls(result.num_rows, field.type))
            continue
        column = columns[index]
        try:
            arrays.append(pc.cast(result.column(positions[index]), field.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
            raise QueryError(
                f"INSERT INTO {statement.target}: column '{column}' cannot be stored as "
                f"{field.type} ('{field.name}'): {e}",
                position=statement.position,
            ) from e
    if TIMESTAMP_COLUMN in result.column_names:
        arrays.append(pc.cast(result.column(TIMESTAMP_COLUMN), TIMESTAMP_TYPE))
    else:
        now = pa.repeat(pa.scalar(now_ns, pa.int64()), result.num_rows)
        arrays.append(now.view(TIMESTAMP_TYPE))
    return _carry_key(result, pa.table(arrays, schema=schema), columns, targets)


def _carry_key(
    result: pa.Table, table: pa.Table, columns: list[str], targets: list[str]
) -> pa.Table:
    """``table`` (``result`` mapped onto the sink's columns ``targets``) naming the key
    ``result`` names (:func:`~arroyo_lite.query.changelog.key_of`), by the sink's names."""
    key = key_of(result.schema)
    if not key or any(columns.count(k) != 1 for k in key):
        return table
    by_lower = {name.lower(): name for name in table.column_names}
    return with_key(table, [by_lower[targets[columns.index(k)].lower()] for k in key])


def takes_changes(config: TableConfig) -> bool:
    """Whether sink ``config`` is an *updating* sink (:attr:`TableConfig.writes_changes`)."""
    return config.writes_changes


def check_appends(stream: ContinuousQuery, statement: Insert) -> None:
    """Raise :class:`SqlError` unless ``stream`` yields only new rows or changes: an updating
    query (over an updating table too) into an append-only sink is rejected, with Arroyo's
    message."""
    if stream.incremental and not stream.updating_input:
        return
    if stream.plan.kind is QueryKind.WINDOWED:
        raise SqlError(
            f"cannot insert into sink '{statement.target}': windows are not yet emitted once "
            "each by arroyo-lite",
            position=statement.position,
            hint="SELECT the windowed query instead",
        )
    raise SqlError(UPDATING_INTO_APPEND_ONLY, position=statement.position, hint=APPEND_ONLY_HINT)


class Delivery(Protocol):
    """Where a pump delivers batches: a running sink (:class:`SinkInput`) or a memory table."""

    def deliver(self, batch: pa.RecordBatch) -> bool:
        """Take ``batch``; ``False`` when nothing more can be taken."""
        ...


class _MemoryFeed:
    """Appends each delivered batch to a memory table of the store."""

    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = name

    def deliver(self, batch: pa.RecordBatch) -> bool:
        if not self.store.has(self.name):
            return False  # dropped meanwhile
        self.store.append(self.name, batch)
        return True


class InsertPump:
    """Pumps a continuous query's new rows into a sink, on its own daemon thread.

    ``target`` is the sink table: with declared columns each batch is conformed to them
    (:func:`conform`); without, the query's columns are written as they are. ``now_ns``
    stamps ``_timestamp`` on rows whose query has none. The pump ends when the query ends
    (:meth:`stop`, or the session closing) or the sink does (failed); a failing query is
    logged and ends the pump, the sources keep running.
    """

    def __init__(
        self,
        statement: Insert,
        target: TableConfig,
        stream: ContinuousQuery,
        *,
        now_ns: Callable[[], int],
        schema: pa.Schema | None = None,
    ) -> None:
        self.statement = statement
        self.stream = stream
        self.sink: Delivery | None = None
        #: Why the pump stopped before its query ended (``None``: it did not fail).
        self.failure: str | None = None
        self._now_ns = now_ns
        #: The columns rows are conformed to: ``schema``, else the target's declared ones.
        self._schema = schema or (target.output_schema() if target.columns else None)
        self._thread = threading.Thread(
            target=self._pump, name=f"insert:{target.name.lower()}", daemon=True
        )

    def check(self, result_schema: pa.Schema) -> None:
        """Raise :class:`QueryError` now if the query's columns cannot fill the sink's."""
        if self._schema is not None:
            conform(empty_table(result_schema), self._schema, self.statement, 0)

    def start(self, sink: Delivery) -> None:
        """Start pumping into the running sink ``sink``."""
        self.sink = sink
        self._thread.start()

    def stop(self, timeout: float = STOP_TIMEOUT, *, end_of_input: bool = False) -> None:
        """Deliver the rows that arrived up to now (``end_of_input``: and the windows still
        open, since no row will come), then end the query (the caller ends the sink, which
        several pumps may feed)."""
        self.stream.finish(end_of_input=end_of_input)
        if self._thread.is_alive():
            self._thread.join(timeout)
        self.stream.close()

    def end_of_input(self) -> None:
        """Every source has ended: the query yields its last rows (its open windows close),
        then the pump ends by itself (see :attr:`running`)."""
        self.stream.finish(end_of_input=True)

    @property
    def running(self) -> bool:
        """Whether the pump is still moving batches into its sink."""
        return self._thread.is_alive()

    def _conformed(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        if self._schema is None:
            return batch
        table = pa.Table.from_batches([batch])
        retract = None
        if RETRACT_COLUMN in table.column_names:  # a change batch: keep its flags
            retract = table.column(RETRACT_COLUMN)
            table = table.drop_columns([RETRACT_COLUMN])
        table = conform(table, self._schema, self.statement, self._now_ns())
        if retract is not None:
            table = table.append_column(RETRACT_COLUMN, retract)
        return table.combine_chunks().to_batches()[0]

    def _pump(self) -> None:
        assert self.sink is not None
        try:
            for batch in self.stream:
                if batch.num_rows and not self.sink.deliver(self._conformed(batch)):
                    break  # the sink failed or was stopped
        except ArroyoLiteError as e:
            self.failure = e.message
            log.error("INSERT INTO %s stopped: %s", self.statement.target, e.message)
        except Exception as e:
            # A bug, not bad input: still this INSERT's failure, reported (and the run fails)
            # rather than a thread's traceback that leaves the run looking successful.
            self.failure = f"internal error: {type(e).__name__}: {e}"
            log.error("INSERT INTO %s stopped: %s", self.statement.target, self.failure)
            log.debug("INSERT INTO %s stopped", self.statement.target, exc_info=True)
        finally:
            self.stream.close()


class Inserts:
    """A session's ``INSERT INTO`` targets: memory tables (filled once, at the statement)
    and sink tables (built at ``CREATE TABLE``, fed continuously from the ``INSERT``).

    Called from the session's thread, under its lock; :meth:`stop` from its close.
    """

    def __init__(self, engine: Engine, tables: Tables, *, now_ns: Callable[[], int]) -> None:
        self.engine = engine
        self.store = engine.store
        self.tables = tables
        self._now_ns = now_ns
        self._sinks: dict[str, SinkOperator] = {}
        self._running: dict[str, SinkInput] = {}
        self._inserted: set[str] = set()
        self._pumps: list[InsertPump] = []

    def add_sink(self, config: TableConfig) -> None:
        """Build the sink of table ``config`` (started by its ``INSERT``)."""
        self._sinks[config.name.lower()] = self.tables.make_sink(config)

    def sink_names(self) -> list[str]:
        return [sink.config.name for sink in self._sinks.values()]

    def insert(self, statement: Insert) -> None:
        """Run ``statement``: store the result in a memory table, or start feeding a sink.

        Raises :class:`SqlError` / :class:`QueryError` (at the statement) for a target that
        cannot be inserted into, a second insert, or a query that does not fit.
        """
        key = statement.target.lower()
        sink = self._sinks.get(key)
        if sink is None and (
            not self.store.has(key) or self.store.kind(key) is not TableKind.MEMORY
        ):
            raise SqlError(
                f"cannot insert into '{statement.target}': only memory and sink tables can be "
                "inserted into",
                position=statement.position,
            )
        if key in self._inserted and sink is None:
            raise SqlError("Can only insert into a memory table once", position=statement.position)
        if sink is None:
            if not self._feed_memory(statement):
                at = offset_position(statement.text, statement.query, statement.position)
                result = self.engine.query(statement.query, position=at)
                schema = self.store.schema(key)
                self.store.replace(key, conform(result, schema, statement, self._now_ns()))
        else:
            self._pump_into(sink, statement)
        self._inserted.add(key)

    def _feed_memory(self, statement: Insert) -> bool:
        """An append-only query over live tables feeds its memory table continuously, each
        new row once (Arroyo's memory tables are streams); ``False`` for any other query
        (its result is stored once, now)."""
        stream = self.engine.stream(statement.query)
        if not (stream.incremental and stream.plan.sources):
            stream.close()
            return False
        key = statement.target.lower()
        try:
            target = TableConfig(statement.target, TableKind.MEMORY, columns=())
            schema = self.store.schema(key)
            pump = InsertPump(statement, target, stream, now_ns=self._now_ns, schema=schema)
            columns = self.engine.query(f"SELECT * FROM ({statement.query}) AS q LIMIT 0")
            pump.check(columns.schema)
        except ArroyoLiteError:
            stream.close()
            raise
        self.engine.fed_memory.add(key)
        pump.start(_MemoryFeed(self.store, statement.target))
        self._pumps.append(pump)
        return True

    def _pump_into(self, sink: SinkOperator, statement: Insert) -> None:
        """Start the sink (at its first insert) and the continuous query that feeds it: new
        rows, or changes for an updating sink. Several inserts into one sink merge."""
        updating_sink = takes_changes(sink.config)
        stream = self.engine.stream(statement.query, changelog=updating_sink)
        try:
            if not updating_sink:
                check_appends(stream, statement)
            columns = self.engine.query(f"SELECT * FROM ({statement.query}) AS q LIMIT 0")
            pump = InsertPump(statement, sink.config, stream, now_ns=self._now_ns)
            pump.check(columns.schema)
        except ArroyoLiteError:
            stream.close()
            raise
        key = sink.config.name.lower()
        running = self._running.get(key)
        if running is None:
            running = self._running[key] = self.tables.start_sink(sink)
        pump.start(running)
        self._pumps.append(pump)

    def end_of_input(self) -> None:
        """Every source has ended: each ``INSERT`` writes its last rows, then ends."""
        for pump in self._pumps:
            pump.end_of_input()

    def running(self) -> bool:
        """Whether any ``INSERT`` is still writing."""
        return any(pump.running for pump in self._pumps)

    def failures(self) -> list[str]:
        """One line per ``INSERT`` whose query failed and stopped feeding its sink."""
        return [
            f"INSERT INTO {p.statement.target} stopped: {p.failure}"
            for p in self._pumps
            if p.failure is not None
        ]

    def readers_of(self, name: str) -> list[str]:
        """The sink tables whose ``INSERT`` reads the table ``name``."""
        key = name.lower()
        return [p.statement.target for p in self._pumps if key in p.stream.plan.sources]

    def drop_sink(self, name: str) -> None:
        """``DROP TABLE`` of a sink: its pump writes what it has, then the sink is closed."""
        key = name.lower()
        for pump in [p for p in self._pumps if p.statement.target.lower() == key]:
            pump.stop(STOP_TIMEOUT)
            self._pumps.remove(pump)
        running = self._running.pop(key, None)
        if running is not None:
            running.finish(STOP_TIMEOUT)
        self._sinks.pop(key, None)
        self._inserted.discard(key)

    def stop(self, *, end_of_input: bool = False) -> None:
        """Write what the (stopped) sources produced into the sinks, then close them;
        ``end_of_input``: the sources finished by themselves (see :meth:`InsertPump.stop`)."""
        timeout = END_TIMEOUT if end_of_input else STOP_TIMEOUT
        for pump in self._pumps:
            pump.stop(timeout, end_of_input=end_of_input)
        for running in self._running.values():
            running.finish(timeout)
