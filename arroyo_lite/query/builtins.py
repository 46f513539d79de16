"""arroyo-lite's own DuckDB functions on a database, defined when a statement first calls one.

arroyo-lite adds ``cbor_to_json`` (:mod:`arroyo_lite.formats.cbor`) and the helpers that
DataFusion's aggregates are translated to (``arroyo_tdigest``, ``arroyo_as_type_of``,
``arroyo_median``: :mod:`arroyo_lite.sql.aggregates`). Defining them costs more than most
queries (DuckDB's first Python function of a process: ~20 ms, on the way to ``run``'s first
row), and a plain ``SELECT`` never calls them, so :class:`Builtins` defines them on its
database only once a statement calls one:

* :meth:`Builtins.provide`, before a statement runs: the functions that DuckDB's own parse
  tree of the statement calls (``json_serialize_sql``: the tree DuckDB then binds). Only a
  text that contains one of the names can call it (a call names its function; DuckDB has no
  call by a computed name), so other texts are not parsed again. A statement DuckDB's
  serializer does not render (``EXPLAIN``; ``DESCRIBE`` and ``SHOW`` of a query are
  queries to DuckDB, and rendered) gets every function.
* :meth:`Builtins.missing_function`, after DuckDB rejected a statement because a function
  does not exist (a misspelt ``cbor_to_jsn``, or any call :meth:`~Builtins.provide` did not
  see): every function is defined, and the caller binds the statement again. So the error,
  and DuckDB's did-you-mean in it, are what they were with every function defined from the
  start. Binding fails before anything runs, so trying again repeats nothing.

The functions are defined on the connection the database was opened with, never on a cursor:
a Python function defined through a cursor dies with it (DuckDB then crashes calling it).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable
from typing import Any

import duckdb

from arroyo_lite.formats import cbor
from arroyo_lite.sql import aggregates

#: Each function, by the (lower-case) name a statement calls it by -> what defines it (with
#: its companions) on a connection.
DEFINERS: dict[str, Callable[[duckdb.DuckDBPyConnection], None]] = {
    cbor.FUNCTION_NAME: cbor.register,
    **dict.fromkeys(aggregates.INSTALLED, aggregates.install),
}

_MISSING_FUNCTION = re.compile(r"Function with name \S+ does not exist")


class Builtins:
    """Which of :data:`DEFINERS`' functions the database of ``con`` (its own connection, not
    a cursor) has; defines the others on demand. Used under the lock of whoever owns ``con``."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con
        self._done: set[Callable[[duckdb.DuckDBPyConnection], None]] = set()

    def provide(self, sql: str) -> None:
        """Define the functions DuckDB SQL ``sql`` calls that are not defined yet."""
        lowered = sql.lower()
        named = [n for n, define in DEFINERS.items() if define not in self._done and n in lowered]
        if not named:
            return
        called = functions_called(self._con, sql)
        for name in named:
            if called is None or name in called:
                self._define(DEFINERS[name])

    def missing_function(self, error: BaseException) -> bool:
        """For an error saying a function does not exist: define every function not defined
        yet, and return whether any was (the statement is then worth binding again)."""
        if not _MISSING_FUNCTION.search(str(error)):
            return False
        missing = [d for d in dict.fromkeys(DEFINERS.values()) if d not in self._done]
        for define in missing:
            self._define(define)
        return bool(missing)

    def provide_all(self) -> None:
        """Define every function not defined yet."""
        for define in dict.fromkeys(DEFINERS.values()):
            if define not in self._done:
                self._define(define)

    def _define(self, define: Callable[[duckdb.DuckDBPyConnection], None]) -> None:
        if define in self._done:  # (one definer serves several names)
            return
        # (CatalogException: defined on this database already, by whoever opened it.)
        with contextlib.suppress(duckdb.CatalogException):
            define(self._con)
        self._done.add(define)


def functions_called(con: duckdb.DuckDBPyConnection, sql: str) -> frozenset[str] | None:
    """The lower-case names of the functions DuckDB's parse tree of ``sql`` calls (its one
    or more statements), or ``None`` when DuckDB does not render that tree (a statement
    other than a query, or text it cannot parse)."""
    try:
        statements = con.extract_statements(sql)
        ((text,),) = con.execute("SELECT json_serialize_sql($1)", [sql]).fetchall()
    except duckdb.Error:
        return None
    tree = json.loads(text)
    rendered = tree.get("statements")
    if tree.get("error") or not isinstance(rendered, list) or len(rendered) != len(statements):
        return None
    if any(s.type is not duckdb.StatementType.SELECT for s in statements):
        return None
    names: set[str] = set()
    _collect(rendered, names)
    return frozenset(names)


def _collect(node: Any, names: set[str]) -> None:
    """Every ``function_name`` in a serialized tree (function calls, aggregates, window
    functions and table functions alike), lower-cased."""
    if isinstance(node, dict):
        name = node.get("function_name")
        if isinstance(name, str):
            names.add(name.lower())
        for value in node.values():
            _collect(value, names)
    elif isinstance(node, list):
        for value in node:
            _collect(value, names)
