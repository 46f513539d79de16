"""Arroyo's window functions (``tumble``, ``hop``, ``session``) rewritten for DuckDB.

Each window becomes Arroyo's window value, a ``{start, end}`` struct, computed from
``_timestamp``; windows are aligned to the Unix epoch, as Arroyo's operators align them
(``bin_start`` in ``crates/arroyo-worker/src/arrow/tumbling_aggregating_window.rs``: DuckDB's
``time_bucket`` would otherwise count from 2000-01-03).

* ``tumble(width)``: ``time_bucket(width, _timestamp, epoch)``, a plain expression.
* ``hop(slide, width)``: a row falls in ``width / slide`` windows, which a ``GROUP BY``
  expression cannot express; the SELECT's one FROM table (and its WHERE) move into a derived
  table ``SELECT *, unnest(range(0, width / slide)) AS __hop_k``, and the window starts at
  ``time_bucket(slide) - slide * __hop_k``. As Arroyo's planner, a width that is not a
  multiple of the slide is an error (its message), and ``slide = width`` is a tumble.
* ``session(gap)``: a row's window depends on its neighbours: the derived table orders the
  rows of each group (the SELECT's other ``GROUP BY`` keys) by time and starts a new session
  where the time since the previous row is at least ``gap`` (Arroyo's
  ``session_aggregating_window.rs``: a row joins while it is before ``data_end + gap``); a
  session is ``{first row's time, last row's time + gap}``.

**Emission range.** A windowed plan (``query/continuous.py``) runs the query over the rows
it holds and must emit only the windows that have just closed. Hop and session windows are
filtered in their derived tables by the connection variables :data:`EMIT_AFTER` and
:data:`EMIT_UNTIL` (``TIMESTAMP_NS``): a window is kept when ``after <= end < until``; an
unset variable does not filter, so a one-off query sees every window. (Tumbling windows need
no filter: the plan hands out exactly the rows of closed windows.)

:func:`window_specs` reads the windows back from the DuckDB text (for the plan), and
:func:`window_timestamp` gives an aggregate grouped by a window Arroyo's ``_timestamp`` for
its rows, ``window end - 1 ns`` (``extension/aggregate.rs``), so a window over it works.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from sqlglot import exp

from arroyo_lite.config import TIMESTAMP_COLUMN
from arroyo_lite.errors import QueryError

#: Where windows are counted from (Arroyo's: the Unix epoch).
WINDOW_ORIGIN = "1970-01-01 00:00:00"
#: The column a hop's derived table adds: which of a row's windows this copy of it is in.
HOP_INDEX = "__hop_k"
#: Columns of a session's derived table.
SESSION_START = "__session_start"
SESSION_END = "__session_end"
_SESSION_NEW = "__session_new"
_SESSION_ID = "__session_id"
_SESSION_KEY = "__session_key_"
#: Connection variables bounding the windows a query emits (see the module docstring).
EMIT_AFTER = "arroyo_lite_emit_after"
EMIT_UNTIL = "arroyo_lite_emit_until"

_NS = {
    "nanosecond": 1,
    "ns": 1,
    "microsecond": 1_000,
    "us": 1_000,
    "millisecond": 1_000_000,
    "ms": 1_000_000,
    "second": 1_000_000_000,
    "sec": 1_000_000_000,
    "s": 1_000_000_000,
    "minute": 60_000_000_000,
    "min": 60_000_000_000,
    "m": 60_000_000_000,
    "hour": 3_600_000_000_000,
    "h": 3_600_000_000_000,
    "day": 86_400_000_000_000,
    "d": 86_400_000_000_000,
    "week": 7 * 86_400_000_000_000,
}
_PART = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([a-z]+)\s*", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class WindowSpec:
    """One window of a query: ``kind`` ``tumble``/``hop``/``session``; ``width_ns`` is the
    width (a session's gap), ``slide_ns`` the slide (a tumble's: its width; a session's: 0)."""

    kind: str
    width_ns: int
    slide_ns: int
    #: A session over one table: that table, and DuckDB SQL over it giving each of its rows
    #: (kept by the query's WHERE) with the end of its session, :data:`SESSION_END` (what a
    #: plan keeps of the rows after sessions close). ``None`` otherwise.
    state_table: str | None = None
    state_sql: str | None = None


def duration_ns(node: exp.Expr, function: str) -> int:
    """Nanoseconds of an interval literal (``INTERVAL '20 seconds'``, ``INTERVAL '1' hour``).

    Raises :class:`QueryError` for anything else, or months (as Arroyo's ``get_duration``)."""
    text = ""
    if isinstance(node, exp.Literal) and node.is_string:  # DataFusion casts '5 seconds'
        text = str(node.this)
    elif isinstance(node, exp.Interval):
        unit = node.args.get("unit")
        value = node.this
        text = str(value.this) if isinstance(value, exp.Literal) else ""
        if unit is not None:
            text += " " + unit.sql()
    total = 0
    position = 0
    for match in _PART.finditer(text):
        if match.start() != position:
            break
        position = match.end()
        unit = match.group(2).lower()
        if unit.startswith(("month", "year")) or unit in ("mon", "mons", "y", "yr", "yrs"):
            raise QueryError("Windows do not support durations specified as months")
        scale = _NS.get(unit) or _NS.get(unit.rstrip("s"))
        if scale is None:
            break
        total += round(float(match.group(1)) * scale)
    if not text or position != len(text) or total <= 0:
        raise QueryError(
            f"unsupported Duration expression, expect duration literal, not {node.sql()}",
            hint=f"give {function}() an interval literal such as INTERVAL '1 minute'",
        )
    return total


def rust_duration(ns: int) -> str:
    """``ns`` as Rust's ``Debug`` for ``Duration`` prints it (``3600s``, ``1.5s``, ``200ms``),
    so errors carry Arroyo's exact text."""
    for unit, scale in (("s", 1_000_000_000), ("ms", 1_000_000), ("µs", 1_000)):
        if ns >= scale:
            whole, frac = divmod(ns, scale)
            digits = f"{frac:0{len(str(scale)) - 1}d}".rstrip("0")
            return f"{whole}.{digits}{unit}" if digits else f"{whole}{unit}"
    return f"{ns}ns"


def _fn(name: str, *args: exp.Expr) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=list(args))


def window_value(start: exp.Expr, end: exp.Expr) -> exp.Expression:
    """Arroyo's window value: a ``{start, end}`` struct."""
    return _fn(
        "struct_pack",
        exp.PropertyEQ(this=exp.to_identifier("start"), expression=start),
        exp.PropertyEQ(this=exp.to_identifier("end", quoted=True), expression=end),
    )


def bucket(width: exp.Expr) -> exp.Expr:
    """The start of the ``width`` bucket holding ``_timestamp``, counted from the epoch."""
    origin = exp.cast(exp.Literal.string(WINDOW_ORIGIN), "TIMESTAMP")
    # time_bucket works in microseconds and would *round* a nanosecond time into them (a
    # window's last nanosecond, Arroyo's ``end - 1 ns``, into the next window): truncate.
    micros = _fn("make_timestamp", _fn("epoch_us", exp.column(TIMESTAMP_COLUMN, quoted=True)))
    return _fn("time_bucket", width, micros, origin)


def tumble(args: list[exp.Expression]) -> exp.Expression:
    if len(args) != 1:
        raise QueryError(f"tumble() takes 1 argument (width), got {len(args)}")
    width = args[0]
    duration_ns(width, "tumble")
    return window_value(bucket(width.copy()), exp.Add(this=bucket(width.copy()), expression=width))


def _emitted(end: exp.Expr) -> exp.Expr:
    """``after <= end < until`` for the variables that are set (see the module docstring)."""

    def bound(op: type[exp.Binary], name: str) -> exp.Expr:
        test = op(this=end.copy(), expression=_fn("getvariable", exp.Literal.string(name)))
        return exp.Coalesce(this=test, expressions=[exp.true()])

    return exp.and_(bound(exp.GTE, EMIT_AFTER), bound(exp.LT, EMIT_UNTIL))


def _calls(select: exp.Select, name: str) -> list[exp.Anonymous]:
    return [
        node
        for node in select.find_all(exp.Anonymous)
        if str(node.name).lower() == name and node.parent_select is select
    ]


def _arguments(
    calls: list[exp.Anonymous], name: str, names: tuple[str, ...]
) -> list[exp.Expression]:
    """The arguments of the calls of window function ``name`` in one SELECT, which must
    all be the same and be ``names``."""
    args = list(calls[0].expressions)
    if len(args) != len(names):
        raise QueryError(
            f"{name}() takes {len(names)} argument(s) ({', '.join(names)}), got {len(args)}"
        )
    if any(list(c.expressions) != args for c in calls[1:]):
        raise QueryError(
            f"all {name}() calls of one SELECT must have the same {' and '.join(names)}"
        )
    return args


def _derive(select: exp.Select, function: str, extra: list[exp.Expr]) -> exp.Select:
    """Move ``select``'s one FROM item and WHERE into ``SELECT *, extra... FROM item WHERE``,
    which becomes its FROM (aliased with the item's name); returns the inner SELECT."""
    source = select.args.get("from_")
    if source is None or select.args.get("joins"):
        raise QueryError(
            f"{function}() needs exactly one table in FROM",
            hint=f"join in a subquery first, then apply {function}() to its result",
        )
    inner = exp.Select(expressions=[exp.Star(), *extra])
    inner.set("from_", source.copy())
    where = select.args.get("where")
    if where is not None:
        inner.set("where", where.copy())
        select.set("where", None)
    return inner


def _replace_from(select: exp.Select, body: exp.Select, alias: str) -> None:
    derived = exp.Subquery(this=body, alias=exp.TableAlias(this=exp.to_identifier(alias)))
    select.set("from_", exp.From(this=derived))


def _source_alias(select: exp.Select, default: str) -> str:
    source = select.args.get("from_")
    name = source.this.alias_or_name if isinstance(source, exp.From) else ""
    return str(name or default)


def rewrite_hops(tree: exp.Expr) -> None:
    """Rewrite every SELECT that uses ``hop()`` (in place; see the module docstring)."""
    for select in list(tree.find_all(exp.Select)):
        hops = _calls(select, "hop")
        if not hops:
            continue
        slide, width = _arguments(hops, "hop", ("slide", "width"))
        slide_ns, width_ns = duration_ns(slide, "hop"), duration_ns(width, "hop")
        if width_ns % slide_ns:
            raise QueryError(
                f"Error during planning: hop() width {rust_duration(width_ns)} currently must "
                f"be a multiple of slide {rust_duration(slide_ns)}",
                hint="choose a width that is a whole number of slides",
            )
        if width_ns == slide_ns:  # Arroyo: a hop whose slide is its width is a tumble
            for node in hops:
                node.replace(tumble([width.copy()]))
            continue
        count = exp.cast(
            exp.Div(this=_fn("epoch", width.copy()), expression=_fn("epoch", slide.copy())),
            "BIGINT",
        )
        index = exp.alias_(exp.Explode(this=_fn("range", exp.Literal.number(0), count)), HOP_INDEX)
        alias = _source_alias(select, "hop_source")
        start = exp.Sub(
            this=bucket(slide.copy()),
            expression=exp.Mul(this=slide.copy(), expression=exp.column(HOP_INDEX)),
        )
        end = exp.Add(this=start.copy(), expression=width.copy())
        expanded = _derive(select, "hop", [index])
        body = exp.Select(expressions=[exp.Star()])
        body.set("from_", exp.From(this=exp.Subquery(this=expanded)))
        body.set("where", exp.Where(this=_emitted(end)))
        _replace_from(select, body, alias)
        for node in hops:
            node.replace(window_value(start.copy(), end.copy()))


def _grouped(select: exp.Select) -> list[exp.Expr]:
    """The SELECT's ``GROUP BY`` expressions, ordinals and aliases resolved to the SELECT's
    expressions (without their alias)."""
    group = select.args.get("group")
    items = list(group.expressions) if isinstance(group, exp.Group) else []
    by_alias = {
        str(item.alias).lower(): item.this
        for item in select.expressions
        if isinstance(item, exp.Alias)
    }
    resolved: list[exp.Expr] = []
    for item in items:
        found: exp.Expr = item
        if isinstance(item, exp.Literal) and not item.is_string:
            position = int(str(item.this)) - 1
            if 0 <= position < len(select.expressions):
                found = select.expressions[position]
        elif isinstance(item, exp.Column) and not item.table and item.name.lower() in by_alias:
            found = by_alias[item.name.lower()]
        resolved.append(found.this if isinstance(found, exp.Alias) else found)
    return resolved


def _group_keys(select: exp.Select, window: exp.Expr) -> list[exp.Expr]:
    """The SELECT's ``GROUP BY`` expressions other than ``window``: aliases and ordinals
    resolved to the SELECT's expressions."""
    keys: list[exp.Expr] = []
    for resolved in _grouped(select):
        if resolved is window or resolved.find(exp.Anonymous) is window:
            continue
        if isinstance(resolved, exp.Anonymous) and str(resolved.name).lower() == "session":
            continue
        keys.append(resolved)
    return keys


def _over(this: exp.Expr, by: Sequence[exp.Expr], order: exp.Expr | None) -> exp.Expr:
    """``this OVER (PARTITION BY by [ORDER BY order])``."""
    window = exp.Window(this=this, partition_by=[p.copy() for p in by])
    if order is not None:
        window.set("order", exp.Order(expressions=[exp.Ordered(this=order.copy())]))
    return window


def rewrite_sessions(tree: exp.Expr) -> None:
    """Rewrite every SELECT that uses ``session()`` (in place; see the module docstring)."""
    for select in list(tree.find_all(exp.Select)):
        sessions = _calls(select, "session")
        if not sessions:
            continue
        (gap,) = _arguments(sessions, "session", ("gap",))
        duration_ns(gap, "session")
        if select.args.get("group") is None:
            raise QueryError(
                "session() windows are only supported in the GROUP BY of an aggregate",
                hint="GROUP BY session(interval) and the other keys",
            )
        keys = _group_keys(select, sessions[0])
        key_columns = [exp.alias_(k.copy(), f"{_SESSION_KEY}{i}") for i, k in enumerate(keys)]
        partition = [exp.column(f"{_SESSION_KEY}{i}") for i in range(len(keys))]
        ts = exp.column(TIMESTAMP_COLUMN, quoted=True)

        alias = _source_alias(select, "session_source")
        keyed = _derive(select, "session", key_columns)
        since = exp.Sub(this=ts.copy(), expression=_over(_fn("lag", ts.copy()), partition, ts))
        new = exp.Case(
            ifs=[
                exp.If(this=exp.LT(this=since, expression=gap.copy()), true=exp.Literal.number(0))
            ],
            default=exp.Literal.number(1),
        )
        flagged = exp.Select(expressions=[exp.Star(), exp.alias_(new, _SESSION_NEW)])
        flagged.set("from_", exp.From(this=exp.Subquery(this=keyed)))
        numbered_id = _over(exp.Sum(this=exp.column(_SESSION_NEW)), partition, ts)
        numbered = exp.Select(expressions=[exp.Star(), exp.alias_(numbered_id, _SESSION_ID)])
        numbered.set("from_", exp.From(this=exp.Subquery(this=flagged)))
        same = [*partition, exp.column(_SESSION_ID)]
        first = _over(exp.Min(this=ts.copy()), same, None)
        last = exp.Add(this=_over(exp.Max(this=ts.copy()), same, None), expression=gap.copy())
        bounded = exp.Select(
            expressions=[
                exp.Star(),
                exp.alias_(first, SESSION_START),
                exp.alias_(last, SESSION_END),
            ]
        )
        bounded.set("from_", exp.From(this=exp.Subquery(this=numbered)))
        body = exp.Select(expressions=[exp.Star()])
        body.set("from_", exp.From(this=exp.Subquery(this=bounded)))
        body.set("where", exp.Where(this=_emitted(exp.column(SESSION_END))))
        _replace_from(select, body, alias)
        for node in sessions:
            node.replace(window_value(exp.column(SESSION_START), exp.column(SESSION_END)))


def window_timestamp(select: exp.Select) -> exp.Expr | None:
    """For an aggregate grouped by a ``tumble``/``hop`` (Arroyo SQL, before rewriting): the
    ``_timestamp`` Arroyo gives its rows, ``window end - 1 ns``; ``None`` otherwise."""
    group = select.args.get("group")
    if not isinstance(group, exp.Group):
        return None
    for call in select.find_all(exp.Anonymous):
        name = str(call.name).lower()
        if call.parent_select is not select or name not in ("tumble", "hop"):
            continue
        in_group = any(call is g or call in g.find_all(exp.Anonymous) for g in group.expressions)
        aliased = call.parent if isinstance(call.parent, exp.Alias) else None
        by_reference = aliased is not None and any(
            (isinstance(g, exp.Column) and g.name.lower() == str(aliased.alias).lower())
            or (
                isinstance(g, exp.Literal)
                and not g.is_string
                and int(str(g.this)) - 1 < len(select.expressions)
                and select.expressions[int(str(g.this)) - 1] is aliased
            )
            for g in group.expressions
        )
        if not (in_group or by_reference):
            continue
        end = exp.Dot(this=exp.paren(call.copy()), expression=exp.to_identifier("end", quoted=True))
        nanos = exp.Sub(this=_fn("epoch_ns", end), expression=exp.Literal.number(1))
        return _fn("make_timestamp_ns", exp.cast(_fn("any_value", nanos), "BIGINT"))
    return None


def grouped_window_time(select: exp.Select) -> exp.Expr | None:
    """For a SELECT of DuckDB SQL this module generated that groups by a window: the
    ``_timestamp`` Arroyo gives its rows (``window end - 1 ns``); ``None`` otherwise. (What
    :func:`window_timestamp` does before rewriting, for views, whose SQL is DuckDB's.)"""
    for resolved in _grouped(select):
        if not isinstance(resolved, exp.Struct):
            continue
        for field in resolved.expressions:
            if not isinstance(field, exp.PropertyEQ) or field.this.name != "end":
                continue
            end = field.expression
            timed = any(is_event_time(b.expression) for b in end.find_all(exp.DateBin)) or any(
                c.name == SESSION_END for c in end.find_all(exp.Column)
            )
            if timed:
                nanos = exp.Sub(this=_fn("epoch_ns", end.copy()), expression=exp.Literal.number(1))
                return _fn("make_timestamp_ns", exp.cast(_fn("any_value", nanos), "BIGINT"))
    return None


def is_event_time(node: exp.Expr) -> bool:
    """Whether ``node`` is what :func:`bucket` buckets: ``_timestamp`` (in microseconds)."""
    column = node if isinstance(node, exp.Column) else node.find(exp.Column)
    return column is not None and column.name == TIMESTAMP_COLUMN


def window_specs(tree: exp.Expr) -> set[WindowSpec]:
    """The windows of DuckDB SQL that this module generated (``tree``: its parse)."""
    specs: set[WindowSpec] = set()
    for node in tree.find_all(exp.Anonymous, exp.DateBin):
        if isinstance(node, exp.DateBin):  # sqlglot reads DuckDB's time_bucket as DATE_BIN
            width_node, column = node.this, node.expression
        elif str(node.name).lower() == "time_bucket" and len(node.expressions) >= 2:
            width_node, column = node.expressions[0], node.expressions[1]
        else:
            continue
        if is_event_time(column):
            with _ignore():
                width = duration_ns(width_node, "tumble")
                specs.add(WindowSpec("tumble", width, width))
    for alias in tree.find_all(exp.Alias):
        if alias.alias == HOP_INDEX:
            count = alias.find(exp.Div)
            if count is not None:
                with _ignore():
                    width = duration_ns(count.this.find(exp.Interval), "hop")
                    slide = duration_ns(count.expression.find(exp.Interval), "hop")
                    specs.discard(WindowSpec("tumble", slide, slide))
                    specs.add(WindowSpec("hop", width, slide))
        elif alias.alias == SESSION_END and isinstance(alias.this, exp.Add):
            with _ignore():
                gap = duration_ns(alias.this.expression, "session")
                table, sql = _session_state(alias)
                specs.add(WindowSpec("session", gap, 0, state_table=table, state_sql=sql))
    return specs


def _session_state(end: exp.Alias) -> tuple[str | None, str | None]:
    """The table a session's derived table reads and the SELECT giving its rows their
    session's end (see :class:`WindowSpec`), when it reads one table directly."""
    bounded = end.parent_select
    innermost = bounded
    while isinstance(innermost, exp.Select):
        source = innermost.args.get("from_")
        inner = source.this if isinstance(source, exp.From) else None
        if isinstance(inner, exp.Subquery) and isinstance(inner.this, exp.Select):
            innermost = inner.this
            continue
        if isinstance(inner, exp.Table) and not inner.args.get("db") and bounded is not None:
            return inner.name.lower(), bounded.sql(dialect="duckdb")
        break
    return None, None


class _ignore:
    """Skip a node that is not one of ours (its interval is not a literal)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: object, value: object, tb: object) -> bool:
        return isinstance(value, (QueryError, AttributeError, IndexError, TypeError))
