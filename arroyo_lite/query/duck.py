"""DuckDB helpers shared by snapshot and continuous queries (one place, so neither module
imports the other for them).

Connections are opened and configured by :mod:`arroyo_lite.query.connection` (no
replacement scans of Python variables, no progress bar). A table is shown to DuckDB as a
:class:`LiveRef` pinned to data (:func:`pin`), so moving to newer data is an attribute
assignment.
:func:`check_read_only` accepts one query statement; :func:`bind_sql` / :func:`run_sql`
bind or run it; :func:`query_error` turns DuckDB's errors into positioned query
errors (:class:`~arroyo_lite.errors.QueryError`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence

import duckdb
import pyarrow as pa

from arroyo_lite.errors import QueryError, SourcePosition
from arroyo_lite.query.changelog import is_changelog
from arroyo_lite.runtime.store import TableSnapshot
from arroyo_lite.runtime.updating import net, net_schema
from arroyo_lite.sql.aggregates import in_arrival_order, unmasked_error

_LINE_RE = re.compile(r"\n*LINE (\d+): (.*)\n( *)\^", re.DOTALL)


def query_error(
    e: duckdb.Error,
    *,
    executed: str,
    original: str,
    position: SourcePosition | None,
    line_offset: int = 0,
) -> QueryError:
    """Turn a DuckDB error into a :class:`QueryError`.

    DuckDB appends ``LINE n: <text>`` and a caret line; those become the error's position
    (shifted to ``position``, where the user's text starts in its file) if ``executed`` ends
    with the user's own text ``original`` starting ``line_offset`` lines down, and are
    dropped from the message.
    """
    text = str(e)
    match = _LINE_RE.search(text)
    where: SourcePosition | None = None
    message = text
    mappable = executed == original or (
        line_offset > 0 and executed.endswith("\n" + original)
    )
    if match and int(match.group(1)) <= line_offset:
        mappable = False  # the error is in text we added, not the user's
    if match:
        message = text[: match.start()].rstrip()
        if mappable:
            line = int(match.group(1))
            col = len(match.group(3)) - len(f"LINE {line}: ") + 1
            line -= line_offset
            if position is not None:
                where = position.shift(line, col)
            else:
                where = SourcePosition("<query>", line, max(col, 1))
    hint: str | None = None
    first, _, rest = message.partition("\n")
    if rest.strip():  # "Did you mean ...", "Candidate bindings: ..."
        message, hint = first, rest.strip()
    return QueryError(message, position=where, hint=hint)


_BIND_ERRORS = (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException)


def as_written(
    con: duckdb.DuckDBPyConnection, e: duckdb.Error, executed: str, original: str
) -> tuple[duckdb.Error, str]:
    """``(error, text it is positioned in)`` for DuckDB's error ``e`` on ``executed``, the
    translation of the user's ``original`` (:func:`arroyo_lite.sql.transpile.to_duckdb`).

    A translated text's ``LINE n:`` is not the user's, so its error has no position. When
    the original text fails to bind with the same message (an unknown column, say, which
    the translation kept as written), that error is returned, positioned in the user's own
    text; otherwise ``e`` and ``executed``. Binding runs nothing.
    """
    if executed == original or not isinstance(e, _BIND_ERRORS):
        return e, executed
    try:
        bind_sql(con, original)
    except duckdb.Error as own:
        if str(own).partition("\n")[0] == str(e).partition("\n")[0]:
            return own, original
    return e, executed


def bind_sql(
    con: duckdb.DuckDBPyConnection, sql: str, statement: duckdb.Statement | None = None
) -> duckdb.DuckDBPyRelation | None:
    """``con.sql(sql)``: binds a query without running it, or runs a statement
    (``statement``, when given, is ``sql`` parsed already).

    ``con.sql`` reports bind errors without DuckDB's ``LINE n:`` caret; ``con.execute``
    includes it. Binding has no side effects, so on such an error the text is bound again
    through ``execute`` just to get the positioned message.
    """
    try:
        return con.sql(sql if statement is None else statement)
    except _BIND_ERRORS as e:
        if (unmasked := unmasked_error(con, sql, e)) is not e:
            raise unmasked from None
        if "\nLINE " in str(e):
            raise
        # Only errors raised while binding: ``execute`` fails at the same point, before
        # running anything (never re-run after an interrupt or a run-time error).
        try:
            con.execute(sql)
        except duckdb.Error as positioned:
            raise positioned from None
        raise


#: Query texts :func:`check_read_only` accepted, with their parsed statement (bounded;
#: cleared when full).
_accepted: dict[str, duckdb.Statement] = {}
_ACCEPTED_MAX = 1024
_READ_ONLY = frozenset({duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN})


def check_read_only(
    con: duckdb.DuckDBPyConnection, duck: str, sql: str, position: SourcePosition | None
) -> duckdb.Statement:
    """Raise :class:`QueryError` unless ``duck`` is exactly one SELECT-like statement
    (``SELECT``, ``WITH``, ``VALUES``, ``FROM``, ``DESCRIBE``, ``SHOW``, ``SUMMARIZE``,
    ``EXPLAIN``): DDL must go through ``execute`` so the session's catalog stays the truth,
    and COPY/ATTACH/SET have no business here. Returns the parsed statement, which
    :func:`run_sql` takes instead of the text (so DuckDB does not parse it again).

    Texts already accepted are remembered (dashboards and benchmarks repeat one query).
    """
    statement = _accepted.get(duck)
    if statement is not None:
        return statement
    try:
        statements = con.extract_statements(duck)
    except duckdb.Error as e:
        raise query_error(e, executed=duck, original=sql, position=position) from e
    if len(statements) != 1:
        raise QueryError(
            f"expected one query, got {len(statements)} statements", position=position
        )
    statement = statements[0]
    kind = statement.type
    if kind not in _READ_ONLY:
        raise QueryError(
            f"only queries (SELECT) can run here, not {kind.name}",
            position=position,
            hint="define tables and views with Session.execute",
        )
    if len(_accepted) >= _ACCEPTED_MAX:
        _accepted.clear()
    _accepted[duck] = statement
    return statement


#: Held while a query runs on one thread (:func:`run_sql`), so that two such queries never
#: restore each other's thread count while one of them still runs.
_ONE_THREAD = threading.Lock()


def run_sql(
    con: duckdb.DuckDBPyConnection, sql: str, statement: duckdb.Statement | None = None
) -> pa.Table:
    """Run ``sql`` and return its rows. ``statement``: ``sql`` parsed already (by
    :func:`check_read_only`): a repeated snapshot query is then parsed once per process
    instead of twice per run (about a tenth of a small query's CPU).

    A query using an aggregate of :data:`~arroyo_lite.sql.aggregates.IN_ARRIVAL_ORDER` runs
    on one DuckDB thread, which adds the rows in the order the tables hold them (the order
    they arrived): DataFusion adds them so, and DuckDB's per-thread partial states, combined
    in an order that varies from run to run, would change the last digits (Arroyo's
    ``every_aggregate`` has them). DuckDB's thread count is a setting of the database, so
    other queries running meanwhile on it get one thread too, for that while."""
    if not in_arrival_order(sql):
        return _run_sql(con, sql, statement)
    with _ONE_THREAD:
        ((threads,),) = con.execute("SELECT current_setting('threads')").fetchall()
        con.execute("SET threads = 1")
        try:
            return _run_sql(con, sql, statement)
        finally:
            con.execute(f"SET threads = {int(threads)}")


def _run_sql(
    con: duckdb.DuckDBPyConnection, sql: str, statement: duckdb.Statement | None
) -> pa.Table:
    relation = bind_sql(con, sql, statement)
    if relation is None:  # a statement that is not a query (DDL): no result rows
        return pa.table({})
    table: pa.Table = relation.to_arrow_table()
    return table


try:
    # DuckDB's own scan protocol (duckdb >= 2): a source that knows its row count and can
    # hand out only the columns a query reads, as a registered pa.Table can. Without it (older
    # DuckDB), LiveRef is a plain PyCapsule stream source: every column at every scan.
    from duckdb._sources import ArrowScanSource as _ScanSource
except ImportError:  # pragma: no cover - depends on the installed DuckDB
    _ScanSource = object  # type: ignore[assignment,misc]


class LiveRef(_ScanSource):
    """A table as DuckDB sees it: an Arrow stream source over pinned data.

    Registered once per name and connection; DuckDB asks it for a stream at every scan, so
    moving a name to newer data is an attribute assignment. ``data`` is a store snapshot
    (turned into a ``pa.Table`` once, if a query scans it) or a ``pa.Table``; either way the
    stream hands out the store's own batches (zero-copy). A table's schema never changes
    while it is registered.
    """

    schema_is_stable = True

    def __init__(self, data: TableSnapshot | pa.Table) -> None:
        self.obj = self
        self.data = data

    def rows(self) -> int:
        """The row count, without reading anything (DuckDB plans with it); for a changelog,
        the rows it leaves."""
        if is_changelog(self.data.schema):
            return self._table().num_rows
        return self.data.num_rows

    def stream(
        self, columns: Sequence[int] | None, filters: Sequence[object]
    ) -> tuple[object, bool]:
        """The stream of ``columns`` only (all when ``None``) and whether it is narrowed."""
        table = self._table()
        if columns is not None:
            table = table.select(list(columns))
        stream: object = table.__arrow_c_stream__()  # type: ignore[no-untyped-call]
        return stream, columns is not None

    def _table(self) -> pa.Table:
        data = self.data
        if isinstance(data, pa.Table) and not is_changelog(data.schema):
            return data
        # DuckDB may scan a table several times in one query: build it once per snapshot.
        # An updating table (its rows are changes) is seen as the rows its changes leave.
        table = self.data = net(data if isinstance(data, pa.Table) else data.to_table())
        return table

    def __arrow_c_schema__(self) -> object:
        """The schema alone: DuckDB binds a query with it without opening a stream."""
        schema: object = net_schema(self.data.schema).__arrow_c_schema__()
        return schema

    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        stream: object = self._table().__arrow_c_stream__(requested_schema)  # type: ignore[no-untyped-call]
        return stream


def pin(
    con: duckdb.DuckDBPyConnection,
    refs: dict[str, LiveRef],
    name: str,
    data: TableSnapshot | pa.Table,
) -> None:
    """Point ``name`` on ``con`` at ``data``, registering it on first use."""
    key = name.lower()
    ref = refs.get(key)
    if ref is None:
        refs[key] = ref = LiveRef(data)
        con.register(name, ref)
    else:
        ref.data = data


def quote(name: str) -> str:
    """``name`` with its double quotes doubled, for use inside ``"..."``."""
    return name.replace('"', '""')
