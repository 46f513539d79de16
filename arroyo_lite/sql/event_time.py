"""Views keep the event time: ``_timestamp`` carried through the row-by-row SELECTs of a view.

In Arroyo every row has an event time, also the rows of a view: ``CREATE VIEW tags AS SELECT
tag FROM posts`` can be windowed later with ``hop(...)``/``tumble(...)`` (Arroyo's corpus
does, in ``planner/mastodon_trends.sql`` and ``planner/bluesky_trends.sql``). In DuckDB such a
view has no ``_timestamp`` column, so the window fails to bind. :func:`carry_event_time`
rewrites a view's (DuckDB) SQL so that every SELECT that maps rows one to one (or one to
many, with ``unnest``) also projects its source's ``_timestamp``.

A SELECT grouped by a window gets Arroyo's time of its rows, ``window end - 1 ns``, so a
view of windowed results can be windowed again. Any other SELECT is left as it is when it
aggregates (GROUP BY, an aggregate function, DISTINCT),
reads more than one source (a join: whose time would it be?), reads no source, or already
projects ``*`` or ``_timestamp``. The caller tries the rewritten view first and falls back to
the original text if DuckDB rejects it (a source without ``_timestamp``), so the rewrite can
only add a column, never break a view that worked.
"""

from __future__ import annotations

import sqlglot
from sqlglot import exp

from arroyo_lite.config import TIMESTAMP_COLUMN
from arroyo_lite.sql.aggregates import AGGREGATE_MACROS
from arroyo_lite.sql.windows import grouped_window_time


def carry_event_time(sql: str) -> str | None:
    """``sql`` with ``_timestamp`` carried through (see the module docstring), or ``None`` when
    nothing changes or the text cannot be parsed."""
    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.SqlglotError:
        return None
    changed = False
    # Innermost first: a subquery that now projects _timestamp lets its reader carry it too.
    selects = list(tree.find_all(exp.Select))
    selects.sort(key=lambda s: -_depth(s))
    for select in selects:
        if _carries(select):
            select.select(exp.column(TIMESTAMP_COLUMN, quoted=True), copy=False)
            changed = True
        elif not _projects_time(select):
            # A windowed aggregate: Arroyo times its rows at their window's end - 1 ns.
            windowed = grouped_window_time(select)
            if windowed is not None:
                timed = exp.alias_(windowed, TIMESTAMP_COLUMN, quoted=True)
                select.select(timed, copy=False)
                changed = True
    return str(tree.sql(dialect="duckdb")) if changed else None


def _depth(node: exp.Expression) -> int:
    depth = 0
    parent = node.parent
    while parent is not None:
        parent, depth = parent.parent, depth + 1
    return depth


def _carries(select: exp.Select) -> bool:
    """Whether ``select`` maps rows of one source and should project its ``_timestamp``."""
    if select.args.get("group") or select.args.get("distinct") or select.args.get("joins"):
        return False
    # (sqlglot 30 names the FROM clause "from_"; older versions "from".)
    source = select.args.get("from_") or select.args.get("from")
    if source is None or not isinstance(source.this, exp.Table | exp.Subquery):
        return False
    if isinstance(source.this, exp.Subquery):
        inner = source.this.this
        if not isinstance(inner, exp.Select) or not _projects_time(inner):
            return False
    if _projects_time(select):
        return False
    # An aggregate directly in this SELECT (outside OVER (...)) makes one row of many.
    return _only_row_windows(select)


def _only_row_windows(select: exp.Select) -> bool:
    """A SELECT whose aggregates are all inside OVER (...) windows (still one row per row)."""
    for agg in select.find_all(exp.AggFunc, exp.Anonymous):
        if isinstance(agg, exp.Anonymous) and str(agg.name).lower() not in AGGREGATE_MACROS:
            continue
        if agg.parent_select is select and not isinstance(agg.parent, exp.Window):
            return False
    return True


def _projects_time(select: exp.Select) -> bool:
    for projection in select.expressions:
        if isinstance(projection, exp.Star) or (
            isinstance(projection, exp.Column) and isinstance(projection.this, exp.Star)
        ):
            return True
        if projection.alias_or_name == TIMESTAMP_COLUMN:
            return True
    return False
