"""Table lifecycle: a validated table becomes storage and/or a supervised operator.

:class:`Tables` is what a session calls to bring a table to life. For a source table it
creates the live table in the :class:`~arroyo_lite.runtime.store.Store`, restores saved rows
and operator state from the state directory (if any), builds the operator through its
connector, tells the :class:`~arroyo_lite.runtime.persist.Persister` to track it, and starts
it on the :class:`~arroyo_lite.runtime.loop.Runtime`. A sink table has no storage: its
operator is built at ``CREATE TABLE`` and started by the ``INSERT INTO`` that feeds it. A
failure on the way leaves nothing behind (the store table is dropped) and is reported
without secrets.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

import pyarrow as pa

from arroyo_lite.clock import Clock
from arroyo_lite.config import TableConfig, TableKind
from arroyo_lite.connectors.base import Connector, SinkOperator, SourceContext
from arroyo_lite.errors import ArroyoLiteError, SourceError
from arroyo_lite.runtime.loop import Runtime
from arroyo_lite.runtime.sinks import SinkInput
from arroyo_lite.runtime.store import Store
from arroyo_lite.runtime.updating import additions, table_schema

if TYPE_CHECKING:
    from arroyo_lite.runtime.persist import Persister, Saved, StateDir
    from arroyo_lite.runtime.workers import WorkerPool

log = logging.getLogger(__name__)


class Tables:
    """Creates memory tables, starts source tables, builds and starts sinks (called from the
    session's thread).

    ``state`` and ``persister`` are set together when the session keeps state on disk;
    with ``workers`` (``--workers N``), the sources it can host run in its processes.
    """

    def __init__(
        self,
        store: Store,
        runtime: Runtime,
        *,
        clock: Clock,
        env: Mapping[str, str],
        state: StateDir | None = None,
        persister: Persister | None = None,
        workers: WorkerPool | None = None,
    ) -> None:
        self.store = store
        self.runtime = runtime
        self.clock = clock
        self.env = env
        self.state = state
        self.persister = persister
        self.workers = workers

    def create_memory(self, config: TableConfig) -> None:
        """An empty memory table (filled by ``INSERT INTO``)."""
        self.store.create(config.name, config.output_schema(), kind=TableKind.MEMORY)

    def start_source(self, config: TableConfig) -> None:
        """Create the live table and start its source; raises ``ArroyoLiteError`` (clean)."""
        from arroyo_lite.connectors.registry import get_connector

        name = config.name
        connector = get_connector(config.connector or "")
        context = SourceContext(clock=self.clock, env=self.env)
        updating = connector.updating(config)
        # An updating table holds the rows its source's changes leave: the change batches'
        # columns without ``_retract`` (a debezium_json decoder's batches carry it).
        schema = table_schema(config.output_schema(), updating=updating)
        self.store.create(
            name, schema, kind=TableKind.SOURCE, retention=config.retention, updating=updating
        )
        secrets = connector.secrets(config, self.env)
        saved = None if self.state is None else _saved(connector, config, updating)
        try:
            if self.state is not None:
                assert saved is not None
                self._restore(name, schema, context, saved=saved)
            operator = connector.make_operator(config, context)
            if self.workers is not None and self.workers.hosts(config):
                # Built here too, so that a table its connector refuses fails at CREATE TABLE
                # as without workers; its twin in the worker process does the polling.
                operator = self.workers.remote(config, context)
        except ArroyoLiteError:
            self.store.drop(name)
            raise
        except Exception as e:  # a connector bug: report it cleanly, without secrets
            self.store.drop(name)
            log.error("cannot start source '%s'", name, exc_info=False)
            raise SourceError(
                secrets.mask(f"cannot start source '{name}': {type(e).__name__}: {e}")
            ) from None
        if self.persister is not None:
            end_row = self.store.snapshot([name])[name.lower()].end_row
            saved = saved or _saved(connector, config, updating)
            self.persister.track(name, schema, context.state, end_row, saved=saved)
        emit = functools.partial(self.store.append, name)
        self.runtime.start_source(operator, emit, secrets=secrets)

    def make_sink(self, config: TableConfig) -> SinkOperator:
        """Build a sink table's operator (not started: ``INSERT INTO`` starts it), so that
        a sink its connector cannot build (a format without encoder) fails at CREATE TABLE."""
        from arroyo_lite.connectors.registry import get_connector

        connector = get_connector(config.connector or "")
        # Restored tables replay into the sink's query; a new state directory restores none,
        # so a sink must not skip what an earlier run without it wrote.
        replays = self.state is not None and self.state.restores_tables
        context = SourceContext(clock=self.clock, env=self.env, replays_inputs=replays)
        try:
            return connector.make_sink(config, context)
        except ArroyoLiteError:
            raise
        except Exception as e:  # a connector bug: report it cleanly, without secrets
            message = f"cannot start sink '{config.name}': {type(e).__name__}: {e}"
            raise SourceError(connector.secrets(config, self.env).mask(message)) from None

    def start_sink(self, sink: SinkOperator) -> SinkInput:
        """Start a sink built by :meth:`make_sink`; returns the handle that feeds it."""
        from arroyo_lite.connectors.registry import get_connector

        connector = get_connector(sink.config.connector or "")
        return self.runtime.start_sink(sink, secrets=connector.secrets(sink.config, self.env))

    def _restore(
        self, name: str, schema: pa.Schema, context: SourceContext, *, saved: Saved
    ) -> None:
        """Reload saved rows (retention applies) and source state; compact the segments.

        ``Saved.CURRENT``: the saved rows are an updating table's current rows, restored as
        changes that add them. ``Saved.STATE_ONLY`` (an updating source that restores its
        rows from its state): rows saved under the name (by an earlier, append-only
        definition) are dropped."""
        from arroyo_lite.runtime.persist import Saved

        assert self.state is not None
        batches, state = self.state.load_table(name, schema)
        if saved is Saved.STATE_ONLY:
            batches = []
        elif saved is Saved.CURRENT:
            batches = [additions(batch) for batch in batches]
        if batches or state or self.state.damaged(name):  # (a rewrite sets damage aside)
            self.store.append_many(name, batches)
            snap = self.store.snapshot([name])[name.lower()]
            kept = snap.source_batches(snap.first_row)  # (with their batch boundaries)
            self.state.rewrite_table(name, schema, kept, state)
        context.state.update(state)


def _saved(connector: Connector, config: TableConfig, updating: bool) -> Saved:
    """What --state-dir saves of a source table: its rows (append-only), its current rows (an
    updating table), or nothing (an updating source restoring its rows itself). (Asked only
    with a state directory: without one, the persistence module is never imported.)"""
    from arroyo_lite.runtime.persist import Saved

    if not updating:
        return Saved.ROWS
    return Saved.STATE_ONLY if connector.restores_rows(config) else Saved.CURRENT
