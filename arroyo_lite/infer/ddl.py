"""Writing the inferred table as Arroyo SQL: the ``CREATE TABLE`` that ``infer`` prints.

The statement is built from facts (:class:`Source` options, inferred columns, the located
records) and always passes ``arroyo-lite validate``. Wrapped records get their
``records.path`` option (and a ``--`` comment naming the body's top-level keys); what cannot be
said in the DDL is said in comments above it (why a field was left out).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from arroyo_lite.infer.sample import Records
from arroyo_lite.infer.schema import InferredColumn, quote_identifier

#: Column names a source table reserves for itself.
RESERVED_COLUMNS = frozenset({"_timestamp"})


@dataclass(frozen=True, slots=True)
class Source:
    """The request options of the table, as the user gave them (``{{ VAR }}`` unexpanded)."""

    endpoint: str
    method: str = "GET"
    headers: tuple[str, ...] = ()
    body: str | None = None


def sql_string(text: str) -> str:
    """``text`` as a single-quoted SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def record_path_text(keys: tuple[str, ...]) -> str:
    """The JSON path of the records (``$.data.items``; ``$['odd key']`` where a key is not a
    plain name), in the grammar of :mod:`arroyo_lite.formats.json_path`."""
    steps = []
    for key in keys:
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            steps.append(f".{key}")
        else:
            escaped = key.replace("\\", "\\\\").replace("'", "\\'")
            steps.append(f"['{escaped}']")
    return "$" + "".join(steps)


def with_options(source: Source, records: Records) -> list[str]:
    """The ``WITH`` options, one ``key = value`` each, in the order the README lists them."""
    options = [
        "connector = 'polling_http'",
        f"endpoint = {sql_string(source.endpoint)}",
    ]
    if source.method != "GET":
        options.append(f"method = {sql_string(source.method)}")
    if source.headers:
        options.append(f"headers = {sql_string(', '.join(source.headers))}")
    if source.body is not None:
        options.append(f"body = {sql_string(source.body)}")
    options.append("format = 'json'")
    if records.wrapped:
        options.append(f"'records.path' = {sql_string(record_path_text(records.path))}")
    if records.framing is not None:
        options.append(f"framing = {sql_string(records.framing)}")
    return options


def create_table(
    name: str,
    source: Source,
    records: Records,
    columns: list[InferredColumn],
    primary_key: str | None,
) -> str:
    """The whole output of ``infer``: comments, then one ``CREATE TABLE`` ending in ``;``."""
    table = quote_identifier(name)
    lines = [f"-- inferred by arroyo-lite from {_plural(records.count, 'record')} of one response"]
    if records.framing == "newline":
        lines.append("-- the body is newline-delimited JSON (one record per line)")
    if records.wrapped:
        keys = ", ".join(records.top_keys)
        lines.append(
            f"-- the records are the array at {record_path_text(records.path)} "
            f"(top-level keys: {keys})"
        )
    kept = kept_columns(records, columns)
    for column in columns:
        if column in kept:
            continue
        if column.name in RESERVED_COLUMNS:
            lines.append(f"-- field {column.name!r} left out: that column name is reserved")
        else:
            lines.append(
                f"-- field {column.name!r} left out: no record has that key (DuckDB renamed "
                "a key that differs from another only in case)"
            )
    if records.empty_key:
        lines.append("-- a field with an empty key is left out: no column can have that name")
    body = []
    for i, column in enumerate(kept):
        text = f"    {quote_identifier(column.name)} {column.sql_type}"
        if column.name == primary_key:
            text += " PRIMARY KEY"
        text += "," if i < len(kept) - 1 else ""
        notes = [n for n in (column.note, _key_note(column, primary_key)) if n]
        if notes:
            text += "  -- " + "; ".join(notes)
        body.append(text)
    options = with_options(source, records)
    lines.append(f"CREATE TABLE {table} (")
    lines += body
    lines.append(") WITH (")
    lines += [f"    {o}," for o in options[:-1]] + [f"    {options[-1]}"]
    lines.append(");")
    return "\n".join(lines) + "\n"


def kept_columns(records: Records, columns: list[InferredColumn]) -> list[InferredColumn]:
    """The columns to declare: those named after a key of the records, but not reserved."""
    known = set(records.keys)
    return [c for c in columns if c.name in known and c.name not in RESERVED_COLUMNS]


def _key_note(column: InferredColumn, primary_key: str | None) -> str | None:
    if column.name != primary_key:
        return None
    return "suggested key: present, non-null and distinct in every sample record"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n:,} {word}s"
