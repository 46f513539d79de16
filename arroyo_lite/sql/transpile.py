"""Translate Arroyo SQL (a query or a bare expression) into DuckDB SQL.

Arroyo's SQL is DataFusion's dialect plus Arroyo's own functions. DuckDB already understands
most of it (casts, ``::``, ``->``/``->>`` on JSON text, ``unnest``, window functions), so the
rule is: **if nothing needs rewriting, hand DuckDB the user's original text**, so DuckDB's
error positions point at what the user typed. Only when the text uses an Arroyo-only function
is it parsed with sqlglot, rewritten, and generated for DuckDB.

Translations (Arroyo -> DuckDB); ``KEYS`` are json_get-style keys (string = object key,
integer = array index) turned into a JSONPath:

============================== ===============================================================
``extract_json(j, path)``      ``CAST(json_extract(j, path) AS VARCHAR[])`` (every match, as
                               JSON text; a path without a wildcard gives a 0/1-element list)
``extract_json_string(j, p)``  ``json_extract_string`` of the first match
``get_first_json_object(j,p)`` the first match as JSON text
``json_get(j, KEYS)``          ``json_extract(j, path)`` (DuckDB ``JSON``; cast it as needed)
``json_get_str(j, KEYS)``      the value if it is a JSON string, else NULL
``json_get_int/float/bool``    ``TRY_CAST(json_extract(j, path) AS BIGINT/DOUBLE/BOOLEAN)``
``json_get_json(j, KEYS)``     the value as JSON text
``json_as_text(j, KEYS)``      ``json_extract_string`` (strings unquoted, others as JSON text)
``json_length(j, KEYS)``       element count of an array or key count of an object
``json_contains(j, KEYS)``     ``json_exists(j, path)``
``row_time()``                 the ``_timestamp`` column
``tumble(width)``              ``{start, end}`` struct from ``time_bucket(width, _timestamp,
                               epoch)``
``hop(slide, width)``          the same struct, for each of the ``width / slide`` windows a row
                               falls in
``session(gap)``               the session of the row among the rows of its group
============================== ===============================================================

Number literals take DataFusion's types where those reach a result (``x + 1`` of an INT
column is a BIGINT, ``x * 1.5`` a DOUBLE): :mod:`arroyo_lite.sql.literals`.

DataFusion functions whose DuckDB namesake computes something else (``round``, ``median``,
``approx_distinct``, the ``approx_percentile_cont`` family, ``var``, ``first_value``...) are
:mod:`arroyo_lite.sql.aggregates`'s translations.

Windows (aligned to the Unix epoch, as Arroyo's; hop and session through a derived table)
are :mod:`arroyo_lite.sql.windows`'s rewrites.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import sqlglot
from sqlglot import exp

from arroyo_lite.config import TIMESTAMP_COLUMN
from arroyo_lite.errors import QueryError
from arroyo_lite.sql.aggregates import FUNCTIONS
from arroyo_lite.sql.aggregates import translate as translate_functions
from arroyo_lite.sql.literals import might_type, type_literals
from arroyo_lite.sql.windows import (
    HOP_INDEX,
    WINDOW_ORIGIN,
    rewrite_hops,
    rewrite_sessions,
    tumble,
    window_timestamp,
)

__all__ = ["ARROYO_FUNCTIONS", "HOP_INDEX", "WINDOW_ORIGIN", "needs_rewrite", "to_duckdb"]


@functools.cache
def read_dialect() -> str | type[sqlglot.Dialect]:
    """The sqlglot dialect Arroyo SQL is read with: the front end's own, else RisingWave."""
    try:
        from arroyo_lite.sql.dialect import Arroyo
    except ImportError:  # the front end's dialect is optional for this module
        return "risingwave"
    return Arroyo


def needs_rewrite(sql: str) -> bool:
    """Cheap pre-check: could ``sql`` use one of :data:`ARROYO_FUNCTIONS` (or a DataFusion
    function of :data:`arroyo_lite.sql.aggregates.FUNCTIONS`)?"""
    lowered = sql.lower()
    return (
        any(name in lowered for name in ARROYO_FUNCTIONS)
        or any(name in lowered for name in FUNCTIONS)
        or "window" in lowered  # a column named window: DuckDB needs it quoted
        or "unsigned" in lowered  # MySQL-style ``BIGINT UNSIGNED`` casts (Arroyo's parser)
        or "->" in lowered
        or "/" in lowered  # DataFusion's division (aggregates.DIV)
        or might_type(sql)  # DataFusion's number literals (literals.type_literals)
    )


def to_duckdb(sql: str) -> str:
    """Return DuckDB SQL equivalent to the Arroyo SQL ``sql`` (a query or an expression).

    The original text is returned unchanged when it uses no Arroyo-only function, or when
    sqlglot cannot parse it (then DuckDB reports the error, with its own position). Raises
    :class:`QueryError` for Arroyo constructs that have no DuckDB translation. Translations
    are cached (a pure function of the text): repeated queries skip sqlglot.
    """
    if not needs_rewrite(sql):
        return sql
    return _translate(sql)


@functools.lru_cache(maxsize=512)
def _translate(sql: str) -> str:
    try:
        tree = sqlglot.parse_one(sql, read=read_dialect())
    except sqlglot.errors.SqlglotError:
        return sql
    if isinstance(tree, exp.Div):
        # A bare ``a / b`` (a virtual column's expression): the translation replaces each
        # division node in its parent, and the root has none.
        tree = exp.Paren(this=tree)
    carried = _carry_timestamps(tree)
    # Before the translations: they name the columns they replace from the text as it is.
    typed = type_literals(tree)
    renamed = translate_functions(tree)
    arroyo = any(_arroyo_name(node) for node in tree.find_all(exp.Anonymous))
    # Arroyo's docs name the window column `window`, a reserved word in DuckDB: generating
    # the DuckDB text quotes it.
    reserved = any(i.name.lower() == "window" for i in tree.find_all(exp.Identifier))
    # ``CAST(x AS BIGINT UNSIGNED)``: Arroyo's UInt64 (UInt32 for INT UNSIGNED), which DuckDB
    # spells UBIGINT / UINTEGER (generating the DuckDB text does it).
    unsigned = any(t.this in _UNSIGNED for t in tree.find_all(exp.DataType))
    arrows = any(_is_arrow(node) for node in tree.find_all(exp.JSONExtract))
    if not (carried or typed or renamed or arroyo or reserved or unsigned or arrows):
        return sql
    rewrite_hops(tree)
    rewrite_sessions(tree)
    rewritten = tree.transform(_rewrite_node)
    if arrows:
        rewritten = rewritten.transform(_rewrite_arrow)
    return str(rewritten.sql(dialect="duckdb"))


#: The unsigned integer types (what ``... UNSIGNED`` parses to).
_UNSIGNED = frozenset(
    {exp.DType.UTINYINT, exp.DType.USMALLINT, exp.DType.UINT, exp.DType.UBIGINT}
)


# --- _timestamp through the subqueries a window reads --------------------------------------

_TIME_FUNCTIONS = frozenset({"tumble", "hop", "session", "row_time"})


def _carry_timestamps(tree: exp.Expr) -> bool:
    """Give ``_timestamp`` to the subqueries and CTEs that a window reads through.

    In Arroyo every row keeps its event time through projections and filters, so
    ``tumble()`` over a subquery that never selected ``_timestamp`` still has one. DuckDB
    only sees the columns a subquery selects, so the column is added to each
    non-aggregating subquery a window (or ``row_time()``, or ``_timestamp``) reads through.
    (Views get theirs from :func:`arroyo_lite.sql.event_time.carry_event_time`.) Returns
    whether anything was added.
    """
    ctes = {cte.alias_or_name.lower(): cte.this for cte in tree.find_all(exp.CTE)}
    changed = False
    for select in list(tree.find_all(exp.Select)):
        needs = any(
            str(f.name).lower() in _TIME_FUNCTIONS
            for f in select.find_all(exp.Anonymous)
            if f.parent_select is select
        ) or any(
            c.name == TIMESTAMP_COLUMN for c in select.find_all(exp.Column)
            if c.parent_select is select
        )
        source = _single_source(select)
        if needs and source is not None:
            inner = _source_select(source, ctes)
            if inner is not None:
                changed = _provide_timestamp(inner, ctes) or changed
    return changed


def _single_source(select: exp.Select) -> exp.Expr | None:
    source = select.args.get("from_")
    if not isinstance(source, exp.From) or select.args.get("joins"):
        return None
    return source.this if isinstance(source.this, exp.Expr) else None


def _source_select(source: exp.Expr, ctes: dict[str, exp.Expr]) -> exp.Select | None:
    """The SELECT behind a FROM item: a subquery's, or a CTE's (``None`` for a table)."""
    if isinstance(source, exp.Subquery) and isinstance(source.this, exp.Select):
        return source.this
    if isinstance(source, exp.Table) and not source.args.get("db"):
        body = ctes.get(source.name.lower())
        return body if isinstance(body, exp.Select) else None
    return None


def _provide_timestamp(select: exp.Select, ctes: dict[str, exp.Expr]) -> bool:
    """Make ``select`` output ``_timestamp`` when it is a plain projection of one source
    (no aggregate, GROUP BY, DISTINCT or join: there a row's time is no single input's);
    its own source first, recursively. ``True`` if a column was added."""
    for item in select.expressions:
        if isinstance(item, exp.Star) or item.alias_or_name == TIMESTAMP_COLUMN:
            return False  # already there
        if isinstance(item, exp.Column) and isinstance(item.this, exp.Star):
            return False
    windowed = window_timestamp(select)
    if windowed is not None:  # a windowed aggregate: its rows' time is their window's end
        select.append("expressions", exp.alias_(windowed, TIMESTAMP_COLUMN, quoted=True))
        return True
    if (
        select.args.get("group")
        or select.args.get("distinct")
        or any(True for _ in select.find_all(exp.AggFunc))
    ):
        return False
    source = _single_source(select)
    if source is None:
        return False
    inner = _source_select(source, ctes)
    if inner is not None and not _outputs_timestamp(inner) and not _provide_timestamp(
        inner, ctes
    ):
        return False
    select.append("expressions", exp.column(TIMESTAMP_COLUMN, quoted=True))
    return True


def _outputs_timestamp(select: exp.Select) -> bool:
    return any(
        isinstance(item, exp.Star)
        or (isinstance(item, exp.Column) and isinstance(item.this, exp.Star))
        or item.alias_or_name == TIMESTAMP_COLUMN
        for item in select.expressions
    )


def _is_arrow(node: exp.Expression) -> bool:
    """``json -> key`` (sqlglot reads the ``json_extract()`` function as the same node)."""
    return isinstance(node, exp.JSONExtract) and bool(node.args.get("only_json_types"))


def _rewrite_arrow(node: exp.Expression) -> exp.Expression:
    """``json -> key`` is Arroyo's ``json_get``: the value as JSON text, and, where there is
    none (a missing key), the JSON union's null, which Arroyo writes as the text ``null``."""
    if not _is_arrow(node):
        return node
    text = exp.cast(node, "VARCHAR")
    return exp.Coalesce(this=text, expressions=[exp.Literal.string("null")])


def _arroyo_name(node: exp.Expression) -> str | None:
    if isinstance(node, exp.Anonymous):
        name = str(node.name).lower()
        if name in ARROYO_FUNCTIONS:
            return name
    return None


def _rewrite_node(node: exp.Expression) -> exp.Expression:
    name = _arroyo_name(node)
    if name is None:
        return node
    rewrite = _REWRITES[name]
    return rewrite(list(node.expressions))


# --- JSON path construction ---------------------------------------------------------------


def _key_path(keys: list[exp.Expression]) -> exp.Expression:
    """A DuckDB JSONPath for json_get-style keys: strings are object keys, ints indexes.

    Literal keys build a literal path (so DuckDB can bind it once); other expressions are
    treated as object keys and concatenated at run time.
    """
    parts: list[exp.Expression] = []
    text = "$"
    for key in keys:
        if isinstance(key, exp.Literal) and not key.is_string:
            text += f"[{key.this}]"
        elif isinstance(key, exp.Literal):
            escaped = str(key.this).replace("\\", "\\\\").replace('"', '\\"')
            text += f'."{escaped}"'
        else:
            parts.append(exp.Literal.string(text + '."'))
            parts.append(exp.cast(key, "VARCHAR"))
            text = '"'
    parts.append(exp.Literal.string(text))
    if len(parts) == 1:
        return parts[0]
    return exp.Concat(expressions=parts, safe=True)


def _has_wildcard(path: exp.Expression) -> bool:
    return not isinstance(path, exp.Literal) or "*" in str(path.this) or ".." in str(path.this)


def _fn(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


def _args(args: list[exp.Expression], name: str, minimum: int) -> None:
    if len(args) < minimum:
        raise QueryError(f"{name}() needs at least {minimum} argument(s), got {len(args)}")


def _json_at(args: list[exp.Expression], name: str) -> exp.Expression:
    """``json_extract(j, path(keys))``, or ``j`` itself when no keys are given."""
    _args(args, name, 1)
    if len(args) == 1:
        return args[0]
    return _fn("json_extract", args[0], _key_path(args[1:]))


def _json_get_typed(type_name: str, name: str) -> Callable[[list[exp.Expression]], exp.Expression]:
    def rewrite(args: list[exp.Expression]) -> exp.Expression:
        return exp.TryCast(this=_json_at(args, name), to=exp.DataType.build(type_name))

    return rewrite


def _json_get(args: list[exp.Expression]) -> exp.Expression:
    at = _json_at(args, "json_get")
    return at if len(args) > 1 else exp.cast(at, "JSON")


def _json_get_str(args: list[exp.Expression]) -> exp.Expression:
    _args(args, "json_get_str", 1)
    at = _json_at(args, "json_get_str")
    is_string = exp.EQ(this=_fn("json_type", at.copy()), expression=exp.Literal.string("VARCHAR"))
    text = _fn("json_extract_string", at, exp.Literal.string("$"))
    return exp.Case(ifs=[exp.If(this=is_string, true=text)])


def _json_get_json(args: list[exp.Expression]) -> exp.Expression:
    return exp.cast(_json_at(args, "json_get_json"), "VARCHAR")


def _json_as_text(args: list[exp.Expression]) -> exp.Expression:
    _args(args, "json_as_text", 1)
    path = _key_path(args[1:]) if len(args) > 1 else exp.Literal.string("$")
    return _fn("json_extract_string", args[0], path)


def _json_length(args: list[exp.Expression]) -> exp.Expression:
    at = _json_at(args, "json_length")
    kind = _fn("json_type", at.copy())
    return exp.Case(
        this=kind,
        ifs=[
            exp.If(this=exp.Literal.string("ARRAY"), true=_fn("json_array_length", at.copy())),
            exp.If(
                this=exp.Literal.string("OBJECT"),
                true=_fn("len", _fn("json_keys", at.copy())),
            ),
        ],
    )


def _json_contains(args: list[exp.Expression]) -> exp.Expression:
    _args(args, "json_contains", 2)
    return _fn("json_exists", args[0], _key_path(args[1:]))


def _extract_json(args: list[exp.Expression]) -> exp.Expression:
    _args(args, "extract_json", 2)
    text, path = args[0], args[1]
    if _has_wildcard(path):
        return exp.cast(_fn("json_extract", text, path), "VARCHAR[]")
    single = _fn("json_extract", text, path)
    empty = exp.cast(exp.Array(expressions=[]), "VARCHAR[]")
    return exp.Case(
        ifs=[exp.If(this=exp.Is(this=single.copy(), expression=exp.Null()), true=empty)],
        default=exp.Array(expressions=[exp.cast(single, "VARCHAR")]),
    )


def _first(value: exp.Expression, path: exp.Expression) -> exp.Expression:
    """The first element of a wildcard result (DuckDB lists are 1-based)."""
    if _has_wildcard(path):
        # list_extract, not a bracket: sqlglot would shift a bracket's index between dialects.
        return _fn("list_extract", value, exp.Literal.number(1))
    return value


def _extract_json_string(args: list[exp.Expression]) -> exp.Expression:
    _args(args, "extract_json_string", 2)
    return _first(_fn("json_extract_string", args[0], args[1]), args[1])


def _get_first_json_object(args: list[exp.Expression]) -> exp.Expression:
    _args(args, "get_first_json_object", 2)
    return exp.cast(_first(_fn("json_extract", args[0], args[1]), args[1]), "VARCHAR")


def _row_time(args: list[exp.Expression]) -> exp.Expression:
    return exp.column(TIMESTAMP_COLUMN, quoted=True)


def _unsupported(name: str) -> Callable[[list[exp.Expression]], exp.Expression]:
    def rewrite(args: list[exp.Expression]) -> exp.Expression:
        raise QueryError(
            f"{name}() windows are not supported here by arroyo-lite",
            hint="use tumble(interval) or hop(slide, width) in the GROUP BY of a SELECT",
        )

    return rewrite


#: Each Arroyo function this module translates (lower case) -> its rewrite. The one list of
#: them: :data:`ARROYO_FUNCTIONS` and the REPL's completion derive from it.
_REWRITES: dict[str, Callable[[list[exp.Expression]], exp.Expression]] = {
    "extract_json": _extract_json,
    "extract_json_string": _extract_json_string,
    "get_first_json_object": _get_first_json_object,
    "json_get": _json_get,
    "json_get_str": _json_get_str,
    "json_get_int": _json_get_typed("BIGINT", "json_get_int"),
    "json_get_float": _json_get_typed("DOUBLE", "json_get_float"),
    "json_get_bool": _json_get_typed("BOOLEAN", "json_get_bool"),
    "json_get_json": _json_get_json,
    "json_as_text": _json_as_text,
    "json_length": _json_length,
    "json_contains": _json_contains,
    "row_time": _row_time,
    "tumble": tumble,
    "hop": _unsupported("hop"),  # only reached for a hop() that rewrite_hops cannot place
    "session": _unsupported("session"),  # likewise, rewrite_sessions
}

#: Arroyo functions this module rewrites (lower case). Anything else passes through untouched.
ARROYO_FUNCTIONS = frozenset(_REWRITES)
