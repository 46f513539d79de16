"""Check the queries of a program before anything runs: what ``run`` would reject, rejected first.

Every ``SELECT``, ``INSERT ... SELECT`` and ``CREATE VIEW`` is translated to DuckDB exactly as
the engine will run it (:func:`arroyo_lite.sql.transpile.to_duckdb`) and *bound* by DuckDB over
empty tables of the declared schemas (each table's ``output_schema()``, ``_timestamp``
included), with the program's views created in order. Binding resolves every table, column
and function without reading a row, so it is cheap, and it is the same judgement ``run``
makes later. DuckDB's errors are then put in Arroyo's words (DataFusion's diagnostics, which
are what Arroyo shows: ``parse_and_get_program`` in ``crates/arroyo-planner/src/lib.rs``) and
placed on the offending name in the file:

==================================== ==================================================
DuckDB                               reported as
==================================== ==================================================
``Table with name x does not exist`` ``table 'x' not found`` (datafusion/sql/src/relation)
``Referenced column "c" not found``  ``column 'c' not found`` (datafusion/sql/src/planner.rs)
``... does not have a column "c"``   ``column 'c' not found in 't'``
``Function with name f does not``    ``Invalid function 'f'`` (datafusion/sql/src/expr/function.rs)
anything else                        DuckDB's own message, at the statement
==================================== ==================================================

Each name gets a did-you-mean from :func:`arroyo_lite.errors.did_you_mean`. One rule of
Arroyo's join planner is checked on the parsed query itself: a join of two unwindowed inputs
needs an equality between them (``Updating joins must include an equijoin condition``,
``crates/arroyo-planner/src/plan/join.rs``).

Statements that read a table this program does not define (the REPL's earlier tables) or one
whose definition failed are not bound: the session checks those when it runs them.

DuckDB (and pyarrow, for the empty tables) is imported only when a query needs it: when
:func:`arroyo_lite.sql.query_proof.binds` vouches for every query of the program (plain
one-table queries, the common case of a small file), nothing is bound and no error can
come from binding. Any other query, a view, or a virtual column brings DuckDB in, and then
every query is bound by it as above.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlglot import exp

from arroyo_lite.config import RETRACT_COLUMN, TIMESTAMP_COLUMN, TableConfig, TableKind
from arroyo_lite.errors import ArroyoLiteError, QueryError, SourcePosition, SqlError, did_you_mean
from arroyo_lite.sql.aggregates import unmasked_error
from arroyo_lite.sql.columns import node_position
from arroyo_lite.sql.event_time import carry_event_time
from arroyo_lite.sql.join_rules import (
    APPEND_ONLY_HINT,
    UPDATING_INTO_APPEND_ONLY,
    Catalog,
    check_join_rules,
    conjuncts,
    updates,
)
from arroyo_lite.sql.query_proof import TIMESTAMP, binds, kind_of
from arroyo_lite.sql.source import SourceText
from arroyo_lite.sql.transpile import ARROYO_FUNCTIONS, to_duckdb

if TYPE_CHECKING:
    import duckdb

_TABLE = re.compile(r"Table with name (?P<name>\S+) does not exist")
_COLUMN = re.compile(r'Referenced column "(?P<name>[^"]+)" (?:was )?not found')
_QUALIFIED = re.compile(
    r'(?:Values list|Table) "(?P<table>[^"]+)" does not have a column named "(?P<name>[^"]+)"'
)
_ALIAS = re.compile(r'Referenced table "(?P<table>[^"]+)" not found')
_FUNCTION = re.compile(r"Function with name (?P<name>\S+) does not exist")
_DUCK_PREFIX = re.compile(r"^(?:Binder|Catalog|Parser|Conversion|Invalid Input) Error: ")
_WINDOWS = frozenset({"tumble", "hop", "session"})


@dataclass(frozen=True, slots=True)
class QueryToCheck:
    """One query of the program: its Arroyo SQL, its parsed tree (for positions) and what it
    feeds: ``view``, a view's name; ``insert_target``, a memory table of this program, with
    the ``insert_columns`` the query fills (``insert_listed``: an explicit column list)."""

    query: str
    tree: exp.Expr
    position: SourcePosition
    view: str | None = None
    insert_target: str | None = None
    insert_columns: tuple[str, ...] = ()
    insert_listed: bool = False
    #: An append-only sink of this program the query is inserted into.
    appends_to: str | None = None


def check_virtual_columns(table: TableConfig, source: SourceText) -> list[SqlError]:
    """Bind each virtual column's expression as the decoders will evaluate it (over a batch
    of the physical columns, :mod:`arroyo_lite.formats.virtual`): an unknown function there
    would otherwise fail every batch at run time (or drop every row, with
    ``bad_data = 'drop'``). Unknown columns are reported by the table builder already."""
    virtual = [c for c in table.columns if c.generated is not None]
    if not virtual:
        return []
    import duckdb

    from arroyo_lite.formats.pandas_free import empty_table

    errors = []
    batch = "__arroyo_lite_virtual"
    with _LOCK:
        con = _connection()
        con.register(batch, empty_table(table.decode_schema()))
        try:
            for column in virtual:
                assert column.generated is not None
                where = column.position or table.position or source.position(0)
                item = QueryToCheck(column.generated, exp.Null(), where)
                try:
                    con.sql(f"SELECT ({to_duckdb(column.generated)}) FROM {batch}")
                except QueryError as e:
                    errors.append(SqlError(e.message, position=item.position, hint=e.hint))
                except duckdb.Error as e:
                    error = _convert(e, item, {}, source)
                    if not error.message.startswith("column "):  # (the builder's business)
                        errors.append(error)
        finally:
            con.unregister(batch)
    return errors


def check_queries(
    queries: Iterable[QueryToCheck],
    tables: Mapping[str, TableConfig],
    source: SourceText,
    *,
    skip: set[str],
) -> list[SqlError]:
    """Bind each query in order over empty tables of ``tables`` (name -> config, read as
    its ``output_schema()``); every problem found.

    ``skip`` names tables known to exist without a schema here (failed definitions, tables
    of an earlier REPL statement): a query that reads one is not bound. Views that fail are
    added to it, so their users are not reported again.
    """
    queries = list(queries)
    errors: list[SqlError] = []
    views: list[str] = []
    if _all_vouched_for(queries, tables, skip):
        _bind_all(None, queries, tables, source, skip, errors, views)
        return errors
    with _LOCK:
        con = _connection()
        try:
            _bind_all(con, queries, tables, source, skip, errors, views)
        finally:
            for view in reversed(views):
                con.execute(f'DROP VIEW IF EXISTS "{_q(view)}"')
            for name in tables:
                con.unregister(name)
    return errors


def _columns_seen(table: TableConfig) -> list[str]:
    """The columns a query of ``table`` sees: its own and ``_timestamp`` (an updating
    table is read as the rows it leaves, without ``_retract``)."""
    return [c.name for c in table.columns] + [TIMESTAMP_COLUMN]


def _all_vouched_for(
    queries: list[QueryToCheck], tables: Mapping[str, TableConfig], skip: set[str]
) -> bool:
    """Whether binding can be skipped: no views, and :func:`binds` vouches for each query
    that would be bound (see the module docstring)."""
    kinds = {
        name.lower(): [(c.name, kind_of(c.column_type, c.is_json)) for c in table.columns]
        + [(TIMESTAMP_COLUMN, TIMESTAMP)]
        for name, table in tables.items()
    }
    skipped = {s.lower() for s in skip}
    for item in queries:
        if item.view is not None:
            return False
        if _reads(item.tree) & skipped:
            continue
        width = len(item.insert_columns) if item.insert_target is not None else None
        if not binds(item.tree, kinds, insert_width=width):
            return False
    return True


_LOCK = threading.RLock()  # (function_names() takes it again inside a check)


@functools.cache
def _connection() -> duckdb.DuckDBPyConnection:
    """The one DuckDB connection checks bind on (opening one costs ~0.1 s; binding over
    empty tables, a millisecond). Used under :data:`_LOCK`; left clean after each check."""
    import duckdb

    from arroyo_lite.formats import cbor
    from arroyo_lite.sql.aggregates import install as install_functions

    con = duckdb.connect(":memory:")
    con.execute("SET python_enable_replacements = false")
    con.execute("SET enable_progress_bar = false")
    cbor.register(con)  # the functions arroyo-lite adds, as on the engine's connections
    install_functions(con)
    return con


def _updating(table: TableConfig) -> bool:
    """Whether ``table`` is an updating table: its connector's word (a ``debezium_json``
    source, a ``polling_http`` snapshot: :meth:`~arroyo_lite.connectors.base.Connector.
    updating`), so that queries over either are checked alike."""
    if table.kind is not TableKind.SOURCE:
        return False
    from arroyo_lite.connectors.registry import get_connector

    try:
        return get_connector(table.connector or "").updating(table)
    except ArroyoLiteError:  # an unknown connector is reported on its own
        return table.updating


def _bind_all(
    con: duckdb.DuckDBPyConnection | None,
    queries: Iterable[QueryToCheck],
    tables: Mapping[str, TableConfig],
    source: SourceText,
    skip: set[str],
    errors: list[SqlError],
    views: list[str],
) -> None:
    """:func:`check_queries`' work on ``con``: problems go to ``errors``, created views to
    ``views`` (for the caller to drop). Without ``con`` (every query vouched for, no view)
    the checks on the parsed query run, and binding is taken as done."""
    if con is not None:
        from arroyo_lite.formats.pandas_free import empty_table

        for name, table in tables.items():
            schema = table.output_schema()
            # An updating table (rows with the _retract flag) is read as the rows it leaves.
            if RETRACT_COLUMN in schema.names:
                schema = schema.remove(schema.get_field_index(RETRACT_COLUMN))
            con.register(name, empty_table(schema))
    known: dict[str, list[str]] = {n.lower(): _columns_seen(t) for n, t in tables.items()}
    windowed: set[str] = set()
    updating = {n.lower() for n, t in tables.items() if _updating(t)}
    skipped = {s.lower() for s in skip}
    for item in queries:
        if _reads(item.tree) & skipped or (item.view and item.view.lower() in known):
            # (A view named like an earlier table is reported as a duplicate already.)
            if item.view and item.view.lower() not in known:
                skipped.add(item.view.lower())
            continue
        catalog = Catalog(known, frozenset(windowed), frozenset(updating))
        problems = (
            _check_windows(item, source)
            or check_join_rules(
                item.tree, catalog, lambda n: node_position(n, source), item.position
            )
            or _check_joins(item.tree, windowed, source, item.position)
        )
        if not problems:
            problems = _bind(con, item, known, source)
        if not problems and item.appends_to and updates(item.tree, updating, frozenset(windowed)):
            problems = [
                SqlError(UPDATING_INTO_APPEND_ONLY, position=item.position, hint=APPEND_ONLY_HINT)
            ]
        errors.extend(problems)
        if item.view is not None:
            if problems:
                skipped.add(item.view.lower())
            else:
                assert con is not None  # (a view is never vouched for)
                views.append(item.view)
                described = con.sql(f'DESCRIBE "{_q(item.view)}"').fetchall()
                known[item.view.lower()] = [str(c[0]) for c in described]
                if _uses_window(item.tree):
                    windowed.add(item.view.lower())
                elif updates(item.tree, updating):
                    updating.add(item.view.lower())


def _q(name: str) -> str:
    return name.replace('"', '""')


def _reads(tree: exp.Expr) -> set[str]:
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    names = {t.name.lower() for t in tree.find_all(exp.Table) if t.name}
    return names - ctes


def _bind(
    con: duckdb.DuckDBPyConnection | None,
    item: QueryToCheck,
    known: Mapping[str, list[str]],
    source: SourceText,
) -> list[SqlError]:
    try:
        duck = to_duckdb(item.query)
    except QueryError as e:
        return [SqlError(e.message, position=item.position, hint=e.hint)]
    if con is None:
        return []  # (vouched for: binds, and returns the INSERT's width)
    import duckdb

    try:
        if item.view is not None:
            # As the engine makes a view: with its rows' _timestamp if DuckDB accepts that.
            prefix = f'CREATE VIEW "{_q(item.view)}" AS\n'
            timed = carry_event_time(duck)
            try:
                con.execute(prefix + (timed or duck))
            except duckdb.Error:
                if timed is None:
                    raise
                con.execute(prefix + duck)
            return []
        relation = con.sql(duck)
    except duckdb.Error as e:
        return [_convert(unmasked_error(con, duck, e), item, known, source)]
    if item.insert_target is not None and relation is not None:
        # The session maps the query's columns onto the table's by position.
        returned = [c for c in relation.columns if c != TIMESTAMP_COLUMN]
        if len(returned) != len(item.insert_columns):
            listed = "column list names" if item.insert_listed else "table has"
            return [
                SqlError(
                    f"INSERT INTO {item.insert_target}: the query returns {len(returned)} "
                    f"column(s), the {listed} {len(item.insert_columns)}",
                    position=item.position,
                    hint="columns: " + ", ".join(item.insert_columns),
                )
            ]
    return []


def _convert(
    e: duckdb.Error, item: QueryToCheck, known: Mapping[str, list[str]], source: SourceText
) -> SqlError:
    """DuckDB's bind error -> Arroyo's wording, at the name it is about."""
    text = str(e)
    if match := _TABLE.search(text):
        name = match.group("name")
        return SqlError(
            f"table '{name}' not found",
            position=_table_position(item.tree, name, source) or item.position,
            hint=did_you_mean(name, _table_names(known))
            or "define it first: CREATE TABLE name (columns) WITH (...)",
        )
    if match := _QUALIFIED.search(text) or _COLUMN.search(text):
        name = match.group("name")
        table = match.groupdict().get("table")
        choices = _columns_in_scope(item.tree, known, table)
        return SqlError(
            f"column '{name}' not found" + (f" in '{table}'" if table else ""),
            position=_column_position(item.tree, name, source) or item.position,
            hint=did_you_mean(name, choices)
            or ("columns: " + ", ".join(choices) if choices else None),
        )
    if match := _ALIAS.search(text):
        table = match.group("table")
        return SqlError(
            f"table '{table}' not found",
            position=_qualifier_position(item.tree, table, source) or item.position,
            hint=did_you_mean(table, _aliases(item.tree)) or "qualify columns with a table "
            "name or alias used in FROM",
        )
    if match := _FUNCTION.search(text):
        name = match.group("name")
        return SqlError(
            f"Invalid function '{name}'",
            position=_function_position(item, name, source),
            hint=did_you_mean(name, function_names()) or "see DuckDB's function list",
        )
    first, _, rest = _DUCK_PREFIX.sub("", text).partition("\n")
    hint = rest.split("\nLINE ")[0].strip() or None
    return SqlError(first.strip(), position=item.position, hint=hint)


@functools.cache
def function_names() -> tuple[str, ...]:
    """Every function a query may call: DuckDB's, and the Arroyo ones that are translated."""
    with _LOCK:
        rows = _connection().sql("SELECT DISTINCT function_name FROM duckdb_functions()").fetchall()
    return tuple(sorted({str(r[0]) for r in rows} | ARROYO_FUNCTIONS))


def _table_names(known: Mapping[str, list[str]]) -> list[str]:
    return sorted(known)


def _aliases(tree: exp.Expr) -> list[str]:
    return sorted({t.alias_or_name for t in tree.find_all(exp.Table)})


def _columns_in_scope(
    tree: exp.Expr, known: Mapping[str, list[str]], table: str | None
) -> list[str]:
    """Columns of the tables the query reads (of ``table`` only, if given: name or alias)."""
    names: list[str] = []
    for ref in tree.find_all(exp.Table):
        if table is not None and table.lower() not in (ref.name.lower(), ref.alias_or_name.lower()):
            continue
        for column in known.get(ref.name.lower(), []):
            if column not in names:
                names.append(column)
    return names


def _table_position(tree: exp.Expr, name: str, source: SourceText) -> SourcePosition | None:
    for ref in tree.find_all(exp.Table):
        if ref.name.lower() == name.lower():
            return node_position(ref, source)
    return None


def _column_position(tree: exp.Expr, name: str, source: SourceText) -> SourcePosition | None:
    for ref in tree.find_all(exp.Column):
        if ref.name.lower() == name.lower():
            return node_position(ref.this if isinstance(ref.this, exp.Expr) else ref, source)
    return None


def _qualifier_position(tree: exp.Expr, table: str, source: SourceText) -> SourcePosition | None:
    for ref in tree.find_all(exp.Column):
        qualifier = ref.args.get("table")
        if isinstance(qualifier, exp.Identifier) and qualifier.name.lower() == table.lower():
            return node_position(qualifier, source)
    return None


def _function_position(item: QueryToCheck, name: str, source: SourceText) -> SourcePosition:
    """Where ``name(`` is first called in the statement (sqlglot keeps no offset for a
    function's name)."""
    start = source.offset(item.position)
    pattern = re.compile(rf"\b{re.escape(name)}\s*\(", re.IGNORECASE)
    match = pattern.search(source.text, start)
    if match is None:
        return item.position
    return source.position(match.start(), source.text[match.start() : match.start() + len(name)])


# --- window functions -------------------------------------------------------------------


def _check_windows(item: QueryToCheck, source: SourceText) -> list[SqlError]:
    """A window function must be what a SELECT groups by (directly, or through the alias of
    the projection that calls it): elsewhere Arroyo's ``TimeWindowUdfChecker``
    (``crates/arroyo-planner/src/rewriters.rs``) finds it left in the plan."""
    errors = []
    for select in item.tree.find_all(exp.Select):
        calls = [
            f
            for f in select.find_all(exp.Anonymous)
            if str(f.name).lower() in _WINDOWS and f.parent_select is select
        ]
        if not calls:
            continue
        group = select.args.get("group")
        grouped = list(group.expressions) if isinstance(group, exp.Group) else []
        windowing = [  # 1-based positions and aliases of the projections calling one
            (n, p.alias.lower() if isinstance(p, exp.Alias) else None)
            for n, p in enumerate(select.expressions, 1)
            if any(c in calls for c in p.find_all(exp.Anonymous))
        ]
        by_window = any(
            (isinstance(g, exp.Anonymous) and str(g.name).lower() in _WINDOWS)
            or (isinstance(g, exp.Column) and not g.table and any(
                g.name.lower() == alias for _, alias in windowing))
            or (isinstance(g, exp.Literal) and not g.is_string and any(
                str(g.this) == str(n) for n, _ in windowing))
            for g in grouped
        )
        if by_window:
            continue
        name = str(calls[0].name).lower()
        errors.append(
            SqlError(
                f"time window function {name} is not allowed in this context. Are you missing "
                "a GROUP BY clause?",
                position=_function_position(item, name, source),
                hint=f"group by the window: ... GROUP BY {name}(...) (or the alias you gave it)",
            )
        )
    return errors


# --- joins ------------------------------------------------------------------------------


def _uses_window(tree: exp.Expr) -> bool:
    return any(str(f.name).lower() in _WINDOWS for f in tree.find_all(exp.Anonymous))


def _side_windowed(node: exp.Expr, windowed: set[str]) -> bool:
    """A join input is windowed if it is a windowed subquery or a view that windows."""
    if isinstance(node, exp.Table):
        return node.name.lower() in windowed
    return _uses_window(node)


def _is_equijoin(condition: exp.Expr) -> bool:
    """``a = b`` with columns on both sides (DataFusion's ExtractEquijoinPredicate finds
    the equalities between the two inputs among the conjuncts)."""
    if not isinstance(condition, exp.EQ):
        return False
    left = {c.table.lower() for c in condition.left.find_all(exp.Column)}
    right = {c.table.lower() for c in condition.right.find_all(exp.Column)}
    if not left or not right:
        return False
    return left != right or left == {""}


def _check_joins(
    tree: exp.Expr, windowed: set[str], source: SourceText, fallback: SourcePosition
) -> list[SqlError]:
    errors = []
    for select in tree.find_all(exp.Select):
        joins = select.args.get("joins") or []
        if not joins:
            continue
        where_clause = select.args.get("where")
        where = conjuncts(where_clause.this if isinstance(where_clause, exp.Where) else None)
        base = select.args.get("from_")
        left = base.this if isinstance(base, exp.From) else None
        for join in joins:
            if not isinstance(join.this, exp.Table | exp.Subquery) or (
                isinstance(join.this, exp.Table) and not join.this.name
            ):
                continue  # unnest() and table functions are no stream
            if join.args.get("using"):
                # DataFusion plans USING as JoinConstraint::Using, which join.rs refuses.
                errors.append(
                    SqlError(
                        "can't handle join constraint other than ON",
                        position=node_position(join.this, source) or fallback,
                        hint="write the condition out: JOIN t ON a.col = t.col",
                    )
                )
                continue
            conditions = conjuncts(join.args.get("on")) + where
            if any(_is_equijoin(c) for c in conditions):
                continue
            right = join.this
            if left is not None and _side_windowed(left, windowed) and _side_windowed(
                right, windowed
            ):
                continue  # an instant join of two windowed inputs needs no key
            errors.append(
                SqlError(
                    "Updating joins must include an equijoin condition",
                    position=node_position(right, source) or fallback,
                    hint="join on an equality between the two sides, e.g. ON a.id = b.id",
                )
            )
    return errors
