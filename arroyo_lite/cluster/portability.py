"""Would this program mean the same on an Arroyo cluster? The strict check behind
``validate --arroyo`` and ``deploy``.

:func:`check_portability` takes a program that arroyo-lite already accepts and lists what an
Arroyo cluster would do differently:

* errors (the file is not portable): every arroyo-lite extension option it sets
  (:func:`extensions_used`), a connector Arroyo does not have (a plugin), a read of
  arroyo-lite's status table, a file without a query (Arroyo refuses it);
* notes (portable, but mind the difference): a header value Arroyo would cut at its second
  ``:``, a credential header written in the file (the cluster would store it), a JSON table
  whose endpoint may answer a top-level array, query results that go to Arroyo's preview
  sink rather than a terminal, and the ``{{ VAR }}`` variables the cluster itself must have.

It cannot plan queries as Arroyo does (DataFusion, UDFs): ``deploy`` asks the cluster for that
(``POST /pipelines/validate_query``) before it creates anything.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Literal

import sqlglot
from sqlglot import exp

from arroyo_lite.cluster.contract import ARROYO_CONNECTORS
from arroyo_lite.config import Format
from arroyo_lite.connectors.option_spec import extensions_in
from arroyo_lite.connectors.registry import get_connector
from arroyo_lite.errors import ConnectorError, SourcePosition
from arroyo_lite.query.status_table import STATUS_TABLE
from arroyo_lite.secrets import variables
from arroyo_lite.sql import compile_file
from arroyo_lite.sql.dialect import Arroyo
from arroyo_lite.sql.generic_options import GENERIC_OPTIONS_SCHEMA
from arroyo_lite.sql.statements import (
    CreateTable,
    CreateView,
    Insert,
    Program,
    Query,
    Statement,
)


class _ClusterEnvironment(Mapping[str, str]):
    """The environment a file is checked against for a cluster: every ``{{ VAR }}`` counts as
    set, since the cluster's environment is what matters (the local value, when there is one,
    is used to check the header it makes; no value is kept)."""

    _PLACEHOLDER = "set-on-the-cluster"

    def __getitem__(self, key: str) -> str:
        return os.environ.get(key, self._PLACEHOLDER)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str)

    def __iter__(self) -> Iterator[str]:
        return iter(os.environ)

    def __len__(self) -> int:
        return len(os.environ)


def compile_for_cluster(path: str | os.PathLike[str]) -> Program:
    """:func:`~arroyo_lite.sql.compile_file` as a cluster would see the file: ``{{ VAR }}``
    references need not be set here. Raises ``ValidationErrors`` as ``compile_file`` does."""
    return compile_file(path, env=_ClusterEnvironment())


@dataclass(frozen=True, slots=True)
class ExtensionReport:
    """An arroyo-lite extension option set in a WITH clause: where, and Arroyo's behaviour."""

    option: str
    position: SourcePosition | None
    #: What Arroyo does instead (a clause: "Arroyo uses a fixed 5 s timeout").
    instead: str


#: What Arroyo does where arroyo-lite offers an extension option. Keyed by option name, or by
#: ``family.*`` for every option of a family; a test checks that every option declared an
#: extension has an entry.
ARROYO_INSTEAD: dict[str, str] = {
    "timeout_ms": "Arroyo times every request out after a fixed 5 s",
    "max_body_bytes": "Arroyo accepts bodies of at most a fixed 5 MiB",
    "max_backoff_ms": "Arroyo does not back off: after a failed poll it waits for the next tick; "
    "a failed sse or websocket source is restarted by the engine; its webhook sink backs off "
    "up to a fixed 5 s",
    "reconnect_delay_ms": "Arroyo's sse client reconnects after its library's 1 s (or the "
    "server's retry:); a closed websocket fails the source, which the engine restarts",
    "emit_behavior = 'dedup'": "Arroyo emits every row of every poll ('all') or skips a "
    "byte-identical body ('changed'); deduplicate downstream by key instead",
    "records.path": "Arroyo decodes the whole body: declare the wrapper's field and unnest it",
    "changed.compare": "Arroyo's 'changed' compares the bytes of the body",
    "dedup.max_keys": "Arroyo has no key state in polling_http",
    "dedup.ttl": "Arroyo has no key state in polling_http",
    "emit_behavior = 'snapshot'": "Arroyo's polling_http appends rows; an updating table "
    "comes from a debezium_json source (a changelog), or an updating query over the rows",
    "query.*": "Arroyo sends the endpoint's own query only (write the parameters in the URL)",
    "cursor.*": "Arroyo sends the same request on every poll: it has no per-poll values",
    "pagination.*": "Arroyo sends one request per poll: it follows no pages",
    "conditional_requests": "Arroyo sends no If-None-Match / If-Modified-Since",
    "auth.*": "Arroyo sends only the headers written in 'headers' (no token is fetched)",
    "rate_limit.*": "Arroyo polls at poll_interval_ms whatever the server's rate-limit headers "
    "say, and paces no host",
    "max_inflight": "Arroyo's webhook sink keeps at most a fixed 50 requests in flight",
    "retention.max_rows": "Arroyo keeps no live table: rows flow on to the sinks, and state is "
    "bounded by windows and SET updating_ttl",
    "retention.max_age": "Arroyo keeps no live table: rows flow on to the sinks, and state is "
    "bounded by windows and SET updating_ttl",
    "max_records_per_body": "Arroyo decodes every record of a body, however many",
    "read_timeout_ms": "Arroyo's sse source waits on a silent stream for as long as the "
    "connection stays open",
    "heartbeat_interval_ms": "Arroyo's websocket source answers pings but sends none: a server "
    "that stops answering goes unnoticed until the connection closes",
    "parquet_row_group_size": "Arroyo's writer caps row groups at 1,048,576 rows (parquet-rs) "
    "and at parquet.row_group_size bytes",
}


def extensions_used(program: Program) -> list[ExtensionReport]:
    """Every extension option set by the tables of ``program``, in source order.

    Which options are extensions is declared once, with each option (``option(...,
    extension=True)``, :mod:`arroyo_lite.connectors.option_spec`): this asks each table's
    connector (``Connector.extensions_used``) and the generic options' schema. Tables of
    connectors Arroyo does not have are skipped (the connector itself is the problem there).
    """
    found = []
    for table in program.tables:
        if table.connector is None or table.connector not in ARROYO_CONNECTORS:
            continue
        try:
            connector = get_connector(table.connector)
            own = connector.extensions_used(table)
            props = connector.options_schema().get("properties") or {}
        except ConnectorError:
            own, props = (), {}
        for use in (*own, *extensions_in(table, GENERIC_OPTIONS_SCHEMA)):
            family = use.key.split(".", 1)[0] + ".*"
            renamed = (props.get(use.key) or {}).get("x-renamed-to")
            instead = ARROYO_INSTEAD.get(
                use.key, ARROYO_INSTEAD.get(family, "Arroyo does not know this option")
            )
            if renamed:
                instead = f"an older name: Arroyo knows only '{renamed}'"
            found.append(ExtensionReport(use.key, use.position, instead))
    return sorted(found, key=lambda u: _order(u.position))


@dataclass(frozen=True, slots=True)
class Finding:
    severity: Literal["error", "note"]
    message: str
    position: SourcePosition | None = None
    hint: str | None = None

    def format(self) -> str:
        """``FILE:LINE:COL: error: MESSAGE`` (then an indented hint), as the validator prints."""
        text = f"{self.severity}: {self.message}"
        if self.position is not None:
            text = f"{self.position}: {text}"
        return text + (f"\n  hint: {self.hint}" if self.hint else "")


@dataclass(frozen=True, slots=True)
class Portability:
    findings: tuple[Finding, ...]
    #: ``{{ VAR }}`` names in the tables: the cluster must have them (API server and workers).
    variables: tuple[str, ...]

    @property
    def portable(self) -> bool:
        return not any(f.severity == "error" for f in self.findings)

    @property
    def errors(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity == "error")


def check_portability(program: Program) -> Portability:
    """The strict check of a valid ``program`` (see the module docstring); never raises."""
    findings = [_extension_finding(use) for use in extensions_used(program)]
    findings += _connectors(program)
    findings += _status_reads(program)
    findings += _header_cuts(program)
    findings += _json_arrays(program)
    queries = [s for s in program.statements if isinstance(s, Query | Insert)]
    if not queries:
        findings.append(
            Finding(
                "error",
                "The provided SQL does not contain a query",
                hint="Arroyo runs a file's SELECT or INSERT INTO statements: add one",
            )
        )
    bare = [s for s in queries if isinstance(s, Query)]
    if bare:
        many = f" (the {len(bare)} in this file)" if len(bare) > 1 else ""
        findings.append(
            Finding(
                "note",
                f"on Arroyo the results of queries without INSERT INTO{many} go to the preview "
                "sink (the web UI's output tab), not to a terminal",
                bare[0].position,
                hint="to keep them, INSERT INTO a sink table",
            )
        )
    names: dict[str, None] = {}
    for created in program.statements:
        if isinstance(created, CreateTable):
            names.update(dict.fromkeys(variables(created.text)))
    findings.sort(key=lambda f: _order(f.position))
    return Portability(tuple(findings), tuple(names))


def _order(position: SourcePosition | None) -> tuple[int, int]:
    return (position.line, position.col) if position is not None else (1 << 30, 0)


def _connectors(program: Program) -> list[Finding]:
    found = []
    for statement in program.statements:
        if not isinstance(statement, CreateTable):
            continue
        name = statement.table.connector
        if name is not None and name not in ARROYO_CONNECTORS:
            found.append(
                Finding(
                    "error",
                    f"Unknown connector '{name}' (an arroyo-lite plugin; Arroyo does not have it)",
                    statement.table.option_positions.get("connector", statement.position),
                    hint="Arroyo's connectors: " + ", ".join(sorted(ARROYO_CONNECTORS)),
                )
            )
    return found


def _status_reads(program: Program) -> list[Finding]:
    """Queries reading ``arroyo_status`` (unless the file defines a table of that name)."""
    defined = {
        (s.table.name if isinstance(s, CreateTable) else s.name).lower()
        for s in program.statements
        if isinstance(s, CreateTable | CreateView)
    }
    if STATUS_TABLE in defined:
        return []
    found = []
    for statement in program.statements:
        query = statement.query if isinstance(statement, Query | Insert | CreateView) else None
        if query is None:
            continue
        try:
            tree = sqlglot.parse_one(query, read=Arroyo)
        except sqlglot.errors.ParseError:
            continue  # (arroyo-lite parsed the statement; a query it cannot re-read is no read)
        if any(t.name.lower() == STATUS_TABLE for t in tree.find_all(exp.Table)):
            found.append(
                Finding(
                    "error",
                    f"table '{STATUS_TABLE}' not found (it is arroyo-lite's status table; "
                    "Arroyo has none)",
                    _word_position(statement, STATUS_TABLE),
                    hint="on a cluster, see a job's state with arroyo-lite cluster show ID",
                )
            )
    return found


def _word_position(statement: Statement, word: str) -> SourcePosition:
    """Where ``word`` first appears in ``statement`` (its start if it does not)."""
    start = statement.position
    at = statement.text.lower().find(word.lower())
    if at < 0:
        return start
    return start.after(statement.text[:at], statement.text[at : at + len(word)])


#: Header names whose values are usually credentials.
_CREDENTIAL = re.compile(r"authorization|cookie|token|secret|api-?key|password", re.IGNORECASE)


def _header_cuts(program: Program) -> list[Finding]:
    """Header values with a ``:`` (Arroyo splits each header on every ``:`` and keeps the part
    between the first and the second, where arroyo-lite keeps the whole value), and
    credentials written in the file rather than referenced with ``{{ VAR }}``."""
    found = []
    for table in program.tables:
        headers = getattr(table.connector_options, "headers", None)
        if table.connector != "polling_http" or not headers:
            continue
        for name, value in headers:
            if _CREDENTIAL.search(name) and not variables(value):
                found.append(
                    Finding(
                        "note",
                        f"header '{name}' has a value written in the file: deploy sends the "
                        "file as the query, so the cluster stores that value with the pipeline",
                        table.option_positions.get("headers", table.position),
                        hint=f"if it is a secret, write {name}: {{{{ VAR }}}} and set VAR on "
                        "the cluster",
                    )
                )
            if ":" in value:
                found.append(
                    Finding(
                        "note",
                        f"Arroyo cuts header '{name}' at its second ':' and would send "
                        f"'{value.split(':', 1)[0].strip()}'",
                        table.option_positions.get("headers", table.position),
                        hint="arroyo-lite sends the whole value; on Arroyo, avoid ':' in "
                        "header values",
                    )
                )
    return found


def _extension_finding(use: ExtensionReport) -> Finding:
    """An extension option is unknown to Arroyo; an extension value of an Arroyo option
    (``emit_behavior = 'dedup'``) is an invalid value there (Arroyo's words for each)."""
    key, sep, _value = use.option.partition(" = ")
    rejection = (
        f"invalid value for '{key}'"
        if sep
        else f"unknown options provided in WITH clause: '{use.option}'"
    )
    return Finding(
        "error",
        f"{use.option} is an arroyo-lite extension; Arroyo rejects it ({rejection})"
        if sep
        else f"'{use.option}' is an arroyo-lite extension; Arroyo rejects it ({rejection})",
        use.position,
        hint=f"remove it to run on Arroyo: {use.instead}",
    )


def _json_arrays(program: Program) -> list[Finding]:
    """``polling_http`` tables decoding JSON: arroyo-lite makes a row of each element of a
    top-level array body, where Arroyo counts such a body as bad data."""
    return [
        Finding(
            "note",
            f"if the endpoint of '{table.name}' answers a top-level JSON array, Arroyo counts "
            "the body as bad data (bad_data decides), where arroyo-lite makes a row of each "
            "element",
            table.option_positions.get("format", table.position),
            hint="on Arroyo, read an endpoint that answers objects or NDJSON",
        )
        for table in program.tables
        if table.connector == "polling_http"
        and table.format is not None
        and table.format.format is Format.JSON
        and not table.format.unstructured
        and table.framing is None  # (framed: each line is a message, an object in practice)
        # (with records.path, an extension reported already, the body is not the records)
        and getattr(table.connector_options, "records_path", None) is None
    ]
