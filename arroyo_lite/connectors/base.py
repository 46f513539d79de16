"""The connector contract: a :class:`Connector` validates and builds; an operator runs.

Configuration and running are separate objects (as bytewax separates a ``Source`` from its
partitions). A connector is stateless and shared; it turns WITH options into its own frozen
options dataclass (stored in ``TableConfig.connector_options``) and later builds one operator
per table: a :class:`SourceOperator` that emits batches, or a :class:`SinkOperator` that
writes them. The operator owns the running state and a :class:`SourceStatus`.
"""

from __future__ import annotations

import enum
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias

from arroyo_lite.clock import Clock, SystemClock
from arroyo_lite.secrets import Secrets, variables

if TYPE_CHECKING:
    import pyarrow as pa

    from arroyo_lite.config import ColumnSpec, TableConfig
    from arroyo_lite.connectors.option_spec import ExtensionUse, OptionSet
    from arroyo_lite.connectors.options import OptionReader
    from arroyo_lite.connectors.probing import ProbeResult, ProbeSkipped

#: Called by an operator for every batch it produces; runs on the event loop, must not block.
Emit: TypeAlias = "Callable[[pa.RecordBatch], None]"


class SourceState(enum.StrEnum):
    STARTING = "starting"
    RUNNING = "running"
    BACKOFF = "backoff"
    #: The server rejected the credentials (HTTP 401 or 403): polled again with backoff.
    UNAUTHORIZED = "unauthorized"
    #: Waiting for a server's rate-limit budget to reset (``rate_limited_until`` says until
    #: when); an arroyo-lite extension.
    RATE_LIMITED = "rate_limited"
    FAILED = "failed"
    FINISHED = "finished"
    STOPPED = "stopped"
    #: Cancelled on request and kept (state, counters) to be started again: the REPL's
    #: ``\\pause`` (an arroyo-lite extension; Arroyo stops a whole pipeline instead).
    PAUSED = "paused"


@dataclass
class SourceStatus:
    """Live counters of one source. Mutated only on the event loop; read via :meth:`snapshot`.

    Times are wall-clock nanoseconds since the epoch (``None`` until they happen).
    ``last_error`` is already masked of secrets.
    """

    table: str
    connector: str
    state: SourceState = SourceState.STARTING
    polls: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    rows: int = 0
    bytes: int = 0
    dropped_rows: int = 0
    unchanged_polls: int = 0
    #: Rows a key-aware emit behaviour skipped as already emitted (``dedup``).
    deduplicated_rows: int = 0
    #: Rows an updating source changed (an update: retracted and added again) and deleted
    #: (``snapshot``: a key missing from a poll).
    updated_rows: int = 0
    deleted_rows: int = 0
    #: Keys held in the source's key state (``dedup``, ``snapshot``), and its size in bytes.
    state_keys: int = 0
    state_bytes: int = 0
    last_error: str | None = None
    last_error_at_ns: int | None = None
    last_poll_at_ns: int | None = None
    next_poll_at_ns: int | None = None
    last_status_code: int | None = None
    #: How late the latest poll started against its schedule, in milliseconds (``None``
    #: for sources without a schedule). Grows when the process cannot keep up.
    lag_ms: float | None = None
    #: While ``state`` is ``rate_limited``: when the server said its budget resets.
    rate_limited_until_ns: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def snapshot(self) -> SourceStatus:
        """A copy safe to hand to another thread."""
        return replace(self, extra=dict(self.extra))


@dataclass
class SourceContext:
    """What the runtime gives an operator besides its config.

    ``state`` is the operator's durable key/value state (bytes values); the runtime persists
    it when a state directory is set (Arroyo checkpoints the same). ``env`` is where
    ``{{ VAR }}`` values come from. ``replays_inputs`` tells a sink that its query starts
    again from restored tables (``--state-dir``): rows it wrote in an earlier run come again
    first, so a sink that records what it acknowledged can skip them (``filesystem``), or one
    that can read back what it wrote can keep what the replay repeats (``single_file``).
    """

    clock: Clock = field(default_factory=SystemClock)
    state: MutableMapping[str, bytes] = field(default_factory=dict)
    env: Mapping[str, str] = field(default_factory=dict)
    replays_inputs: bool = False


class Operator(ABC):  # noqa: B024 - abstract by intent: only its two kinds are built
    """What every running operator has: its table's config, its context and a status.

    The operator keeps its counters in :attr:`status` but does not write ``status.state``:
    it calls :meth:`report` with ``running`` or ``backoff``, and its supervisor
    (:mod:`arroyo_lite.runtime.supervisor`) sets the state, including ``failed``,
    ``finished`` and ``stopped`` from how the operator ends.
    """

    def __init__(self, config: TableConfig, context: SourceContext) -> None:
        self.config = config
        self.context = context
        self.status = SourceStatus(table=config.name, connector=config.connector or "")
        self._reporter: Callable[[SourceState], None] | None = None

    @property
    def learned_secrets(self) -> Secrets:
        """Secret values the operator learned while running (an OAuth2 access token), masked
        by its supervisor like the ones of its config. None by default."""
        return Secrets()

    def report(self, state: SourceState) -> None:
        """Tell the supervisor this operator is ``RUNNING`` or in ``BACKOFF`` now.

        Cheap, non-blocking, called on the loop. Without a supervisor it does nothing.
        """
        if self._reporter is not None:
            self._reporter(state)

    def bind_reporter(self, reporter: Callable[[SourceState], None]) -> None:
        """Route :meth:`report` to ``reporter`` (the supervisor calls this once)."""
        self._reporter = reporter


class SourceOperator(Operator):
    """A running source for one table.

    :meth:`run` polls or generates until cancelled (or, for finite sources, until done),
    calling ``emit`` with batches whose schema is ``config.output_schema()``. Transient
    failures are handled inside ``run`` (counted in :attr:`status`, retried); a
    :class:`~arroyo_lite.errors.FatalSourceError` escapes ``run`` and stops this table only.
    """

    @abstractmethod
    async def run(self, emit: Emit) -> None: ...


class SinkOperator(Operator):
    """A running sink for one table: the runtime hands it batches, in order, on the loop.

    Contract: :meth:`open` once before the first batch; :meth:`write` for every batch of
    result rows (``_timestamp`` included; the batch's columns are the sink table's, or the
    query's when the table declares none); :meth:`flush` whenever the runtime has no further
    batch waiting, after which everything written must have reached its destination;
    :meth:`close` once at the end, also after a failure or a cancellation. None of them may
    block the loop (offload blocking I/O with ``asyncio.to_thread``). The runtime counts
    ``status.rows`` and ``status.polls`` (batches); an operator adds ``status.bytes``. A
    :class:`~arroyo_lite.errors.SourceError` raised here stops this sink only.
    """

    async def open(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Acquire what writing needs (a connection, a file). Default: nothing."""

    @abstractmethod
    async def write(self, batch: pa.RecordBatch) -> None:
        """Write (or buffer) the rows of ``batch``."""

    async def flush(self) -> None:  # noqa: B027 - optional hook, nothing to do by default
        """Push everything written so far to the destination. Default: nothing."""

    async def close(self) -> None:
        """Flush and release resources. Default: :meth:`flush`."""
        await self.flush()


class Connector(ABC):
    """A named connector in the registry.

    Subclasses set the class attributes and implement :meth:`parse_options` (and
    :meth:`make_operator` for sources, :meth:`make_sink` for sinks). The options are
    described either by ``option_set`` (declared once as an options dataclass,
    :mod:`arroyo_lite.connectors.option_spec`: the schema, defaults and listing derive from
    it, and :meth:`parse_options` need not be written), or, as plugins written before it do,
    by ``schema_resource``: a JSON Schema file in the connector's package (as Arroyo's
    ``table.json``).
    """

    name: ClassVar[str]
    description: ClassVar[str]
    source: ClassVar[bool] = True
    sink: ClassVar[bool] = False
    #: (package, filename) of the options JSON Schema.
    schema_resource: ClassVar[tuple[str, str] | None] = None
    #: The options, declared once (takes precedence over ``schema_resource``).
    option_set: ClassVar[OptionSet | None] = None
    #: Formats this sink writes beyond those arroyo-lite decodes (``filesystem``:
    #: ``parquet``); the connector checks the table's format itself.
    sink_formats: ClassVar[frozenset[str]] = frozenset()

    def options_schema(self) -> dict[str, Any]:
        """The JSON Schema of this connector's WITH options (empty object schema if none)."""
        if self.option_set is not None:
            return self.option_set.json_schema()
        if self.schema_resource is None:
            return {"type": "object", "properties": {}}
        package, filename = self.schema_resource
        text = resources.files(package).joinpath(filename).read_text(encoding="utf-8")
        schema: dict[str, Any] = json.loads(text)
        return schema

    def parse_options(self, options: OptionReader, table: TableConfig) -> Any:
        """Pull this connector's options from ``options`` and return its frozen options object.

        The default pulls and checks the declared ``option_set`` and builds its dataclass;
        a connector with checks of its own (or without an ``option_set``) overrides it.

        ``table`` is the config built so far (columns, format; ``connector_options`` unset).
        Raise :class:`~arroyo_lite.errors.SqlError` (positioned via ``options``) on bad values,
        or call ``options.report(error)`` to record a problem and keep checking (when
        validating, the reader collects every problem; a raised error is one more of them).
        """
        if self.option_set is None:
            raise NotImplementedError(f"connector '{self.name}' declares no options")
        pulled = self.option_set.pull(options)
        self.option_set.check(pulled, options)
        return self.option_set.build(pulled)

    def extensions_used(self, config: TableConfig) -> tuple[ExtensionUse, ...]:
        """The arroyo-lite extension options ``config`` sets (``x-extension`` in
        :meth:`options_schema`), with where each key is written: what a strict Arroyo
        compatibility check lists."""
        from arroyo_lite.connectors.option_spec import extensions_in

        return extensions_in(config, self.options_schema())

    def default_columns(self) -> tuple[ColumnSpec, ...] | None:
        """Columns of a table declared without any (``CREATE TABLE t WITH (...)``).

        ``None`` (the default) means the connector needs declared columns.
        """
        return None

    def updating(self, config: TableConfig) -> bool:
        """Whether source ``config``'s operator emits *changes* (change batches with a
        ``_retract`` column, :mod:`arroyo_lite.query.changelog`'s convention) rather than new
        rows: its table is then an updating table, holding its current rows, and queries
        over it are updating queries (:mod:`arroyo_lite.runtime.updating`). By default, a
        ``format = 'debezium_json'`` source is (:attr:`TableConfig.updating`); a connector
        whose operator makes changes of its own says so too (``polling_http``'s
        ``emit_behavior = 'snapshot'``)."""
        return config.updating

    def restores_rows(self, config: TableConfig) -> bool:
        """Whether the operator of updating source ``config`` restores its table's current
        rows itself, from its durable state (re-emitting them when it starts), so that
        ``--state-dir`` saves only that state; otherwise the table's current rows are saved
        and restored for it. ``False`` by default."""
        return False

    def metadata_fields(self) -> Mapping[str, str]:
        """``METADATA FROM 'key'`` keys this connector supplies, mapped to their SQL type name.

        Empty by default (polling_http and impulse define none, as in Arroyo).
        """
        return {}

    def secrets(self, config: TableConfig, env: Mapping[str, str]) -> Secrets:
        """The secret values ``config`` uses, to mask in everything the runtime reports.

        The default: the ``env`` values of the ``{{ VAR }}`` references in the options whose
        schema ``format`` is ``var-str`` (Arroyo's mark for options with variables), read
        from the options object's attribute of that name (a string, or pairs of strings);
        ``headers`` is always read, as the session did before connectors were asked (a
        plugin whose schema does not mark it keeps its masking; masking more is harmless).
        """
        props: Mapping[str, Any] = self.options_schema().get("properties") or {}
        keys = {key for key, prop in props.items() if prop.get("format") == "var-str"}
        names: set[str] = set()
        for key in sorted(keys | {"headers"}):
            for text in _strings(getattr(config.connector_options, key, None)):
                names.update(variables(text))
        return Secrets.of(env[n] for n in sorted(names) if n in env)

    async def probe(
        self,
        config: TableConfig,
        env: Mapping[str, str],
        *,
        # The trial's own timeout (as a request timeout), not a cancel scope around the call.
        timeout: float | None = None,  # noqa: ASYNC109
        max_rows: int = 10,
    ) -> ProbeResult | ProbeSkipped:
        """One trial contact for ``config`` (what ``arroyo-lite test`` runs), never raising
        for a network or decoding problem: those are in the result. ``env`` supplies
        ``{{ VAR }}`` values, ``timeout`` (seconds) overrides the table's own, ``max_rows``
        bounds the rows kept. The default has nothing to try: :class:`ProbeSkipped`."""
        from arroyo_lite.connectors.probing import ProbeSkipped  # (for `test` only)

        return ProbeSkipped(f"'arroyo-lite test' has no probe for '{self.name}' tables")

    def make_operator(self, config: TableConfig, context: SourceContext) -> SourceOperator:
        """Build the running operator for a validated source table."""
        raise NotImplementedError(f"connector '{self.name}' cannot be used as a source")

    def make_sink(self, config: TableConfig, context: SourceContext) -> SinkOperator:
        """Build the running operator for a validated sink table (connectors with
        ``sink = True``)."""
        raise NotImplementedError(f"connector '{self.name}' cannot be used as a sink")


def _strings(value: object) -> list[str]:
    """The strings in an option value: itself, or those inside (nested) tuples and lists."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, tuple | list):
        return [text for item in value for text in _strings(item)]
    return []
