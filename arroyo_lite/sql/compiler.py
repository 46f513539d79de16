"""SQL text -> :class:`~arroyo_lite.sql.statements.Program`: parse, validate, collect problems.

:func:`compile_sql` is the front end's entry point. It splits the text into statements,
parses each (an unparsable statement is reported and the others are still checked), builds
and validates every table, checks the file-level rules Arroyo applies between statements
(inserting into a source, reading a sink, a memory table written twice or never), and
raises :class:`~arroyo_lite.errors.ValidationErrors` with every problem in source order.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from sqlglot import exp
from sqlglot.tokenizer_core import Token, TokenType

from arroyo_lite.config import STATUS_TABLE, TableKind
from arroyo_lite.connectors.options import parse_duration
from arroyo_lite.connectors.registry import get_connector
from arroyo_lite.errors import SourcePosition, SqlError, ValidationErrors, did_you_mean
from arroyo_lite.sql.columns import node_position
from arroyo_lite.sql.parse import ParsedStatement, parse_statement
from arroyo_lite.sql.source import RawStatement, SourceText, split_statements
from arroyo_lite.sql.statements import (
    Copy,
    CreateTable,
    CreateView,
    Drop,
    Insert,
    Program,
    Query,
    SetOption,
    Statement,
)
from arroyo_lite.sql.tables import ConnectorLookup, build_table

_OPEN = {TokenType.L_PAREN, TokenType.L_BRACKET}
_CLOSE = {TokenType.R_PAREN, TokenType.R_BRACKET}
_QUERY_START = {TokenType.SELECT, TokenType.WITH, TokenType.VALUES}


def compile_sql(
    text: str,
    *,
    file: str = "<string>",
    env: Mapping[str, str] | None = None,
    catalog: Mapping[str, TableKind | None] | None = None,
    lookup: ConnectorLookup = get_connector,
) -> Program:
    """Parse and validate every statement of ``text``.

    ``env`` (default ``os.environ``) is only used to check that ``{{ VAR }}`` references
    exist and that the header values they make are valid; no value is stored or shown.
    ``catalog`` maps tables and views defined earlier (the REPL types one statement at a
    time) to their kind (``None`` for a view); with it, "memory table never written" is not
    checked, and queries reading those tables are bound by the session, not here. Every
    other query is bound over the declared schemas, so that unknown tables, columns and
    functions are reported now (:mod:`arroyo_lite.sql.query_check`).
    Raises :class:`ValidationErrors` listing every problem (positioned ``SqlError``s).
    """
    source = SourceText(text, file)
    environment = os.environ if env is None else env
    errors: list[SqlError] = []
    statements: list[Statement] = []
    trees: list[exp.Expr] = []
    reads: list[list[tuple[str, SourcePosition]]] = []
    targets: list[SourcePosition | None] = []
    try:
        raws = split_statements(source)
    except SqlError as e:
        raise ValidationErrors([e]) from e
    # Names of tables/views whose definition failed: known to exist, so statements using
    # them are not reported again ("table not found" would only repeat the first problem).
    failed: set[str] = set()
    for raw in raws:
        parsed = None
        if raw.tokens[0].token_type == TokenType.COPY:
            try:
                statements.append(_copy(raw, source))
                reads.append([])
                targets.append(None)
            except SqlError as e:
                errors.append(e)
            continue
        try:
            parsed = parse_statement(raw, source)
            statement = _compile_one(parsed, source, environment, lookup, errors)
        except SqlError as e:
            errors.append(e)
            statement = None
        except RecursionError:
            # Deep nesting that is not brackets (NOT NOT ... x, - - ... 1): parse_statement
            # bounds brackets, this catches the rest, so no depth of anything is a traceback.
            errors.append(_too_deep(raw, source))
            parsed = statement = None
        if statement is None or parsed is None:
            if parsed is not None and isinstance(parsed.expression, exp.Create):
                failed.add(_name(parsed.expression).lower())
            elif parsed is None and (name := _created_name(raw)) is not None:
                failed.add(name.lower())  # unparsable, but its users need no "not found"
            continue
        statements.append(statement)
        trees.append(parsed.expression)
        reads.append(_read_tables(parsed, source))
        targets.append(_insert_target(parsed, source))
    errors.extend(_check_program(statements, reads, targets, catalog, failed))
    errors.extend(_check_queries(statements, trees, source, catalog, failed))
    if errors:
        raise ValidationErrors(sorted(errors, key=_order))
    return Program(file=file, statements=tuple(statements))


def compile_file(path: str | os.PathLike[str], *, env: Mapping[str, str] | None = None) -> Program:
    """Read ``path`` (UTF-8) and :func:`compile_sql` it; unreadable files are a ``SqlError``."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # a BOM is not SQL
    except UnicodeDecodeError as e:
        raise ValidationErrors(
            [SqlError(
                    f"file is not valid UTF-8 (at byte offset {e.start})",
                    hint="save the file as UTF-8",
                )]
        ) from e
    except IsADirectoryError as e:
        raise ValidationErrors([SqlError("is a directory, not a SQL file")]) from e
    except OSError as e:
        raise ValidationErrors([SqlError(f"cannot read file: {e.strerror}")]) from e
    return compile_sql(text, file=name, env=env)


def _too_deep(raw: RawStatement, source: SourceText) -> SqlError:
    return SqlError(
        "recursion limit exceeded: the statement is nested too deeply to analyse",
        position=source.at_token(raw.tokens[0]),
        hint="simplify the expression, or move a part of it into a view",
    )


def _order(error: SqlError) -> tuple[int, int]:
    p = error.position
    return (p.line, p.col) if p is not None else (0, 0)


def _compile_one(
    parsed: ParsedStatement,
    source: SourceText,
    env: Mapping[str, str],
    lookup: ConnectorLookup,
    errors: list[SqlError],
) -> Statement | None:
    node, raw, position = parsed.expression, parsed.raw, parsed.position
    if isinstance(node, exp.Create):
        kind = str(node.args.get("kind") or "").upper()
        if kind == "VIEW" or (kind == "TABLE" and node.args.get("expression") is not None):
            query = _query_after_as(raw, source)
            replace = bool(node.args.get("replace"))
            return CreateView(raw.text, position, _name(node), query, replace)
        if kind == "TABLE":
            table, problems = build_table(parsed, source, env, lookup)
            errors.extend(problems)
            return CreateTable(raw.text, position, table) if table is not None else None
    elif isinstance(node, exp.Insert):
        schema = node.this if isinstance(node.this, exp.Schema) else None
        target = schema.this if schema is not None else node.this
        columns = tuple(c.name for c in schema.expressions) if schema is not None else ()
        return Insert(raw.text, position, target.name, _insert_query(raw, source), columns)
    elif isinstance(node, exp.Query):
        return Query(raw.text, position, raw.text)
    elif isinstance(node, exp.Set):
        return _set(node, raw, position, source)
    elif isinstance(node, exp.Drop):
        return _drop(node, raw, position)
    keyword = raw.text.split(None, 1)[0].upper()
    if isinstance(node, exp.Command) and keyword in ("CREATE", "SET", "INSERT", "WITH", "SELECT"):
        # sqlglot gave up on the statement and kept it as raw text.
        raise SqlError(
            f"syntax error: could not parse this {keyword} statement",
            position=position,
            hint="check the statement against the DDL in the README (CREATE TABLE t (...) "
            "WITH (...), CREATE VIEW v AS ..., INSERT INTO t SELECT ...)",
        )
    raise SqlError(
        f"unsupported statement: {keyword}",
        position=position,
        hint="arroyo-lite runs CREATE TABLE, CREATE VIEW, INSERT INTO, SELECT and SET "
        "(and, as extensions, DROP TABLE/VIEW and COPY (query) TO 'file')",
    )


def _drop(node: exp.Drop, raw: RawStatement, position: SourcePosition) -> Drop:
    kind = str(node.args.get("kind") or "").upper()
    tables = node.args.get("tables") or ([node.this] if node.this is not None else [])
    if kind not in ("TABLE", "VIEW") or len(tables) != 1 or not isinstance(tables[0], exp.Table):
        raise SqlError(
            f"unsupported statement: DROP {kind}".rstrip(),
            position=position,
            hint="arroyo-lite drops one table or view at a time: DROP TABLE name, "
            "DROP VIEW name",
        )
    return Drop(raw.text, position, kind.lower(), tables[0].name, bool(node.args.get("exists")))


def _copy(raw: RawStatement, source: SourceText) -> Copy:
    """``COPY (query) TO target``, cut from the tokens: the query is the text inside the
    first parentheses, the target everything after ``TO`` (DuckDB checks its options)."""
    tokens = raw.tokens
    position = source.at_token(tokens[0])
    usage = "write COPY (SELECT ...) TO 'file.csv' (csv, parquet or json: by extension or "
    usage += "(FORMAT parquet))"
    if len(tokens) < 2 or tokens[1].token_type != TokenType.L_PAREN:
        found = tokens[1] if len(tokens) > 1 else tokens[0]
        raise SqlError(
            "COPY needs a query in parentheses: arroyo-lite copies query results, "
            "not tables",
            position=source.at_token(found),
            hint=usage,
        )
    depth, i = 0, 1
    while i < len(tokens):
        depth += tokens[i].token_type in _OPEN
        depth -= tokens[i].token_type in _CLOSE
        if depth == 0:
            break
        i += 1
    else:
        raise SqlError("unbalanced parentheses in COPY", position=position, hint=usage)
    query = source.text[tokens[2].start : tokens[i - 1].end + 1] if i > 2 else ""
    rest = tokens[i + 1 :]
    if not query.strip() or not rest or rest[0].text.upper() != "TO" or len(rest) < 2:
        found = rest[0] if rest else tokens[i]
        raise SqlError(
            "COPY (query) must be followed by TO 'file'",
            position=source.at_token(found),
            hint=usage,
        )
    target = source.text[rest[1].start : rest[-1].end + 1]
    return Copy(raw.text, position, query, target)


def _check_insert_columns(
    statement: Insert, declared: list[str] | None, where: SourcePosition
) -> list[SqlError]:
    """An INSERT column list names each column of the target once (when the target is
    defined in this program; otherwise the session checks it when it runs)."""
    if not statement.columns or declared is None:
        return []
    known = {name.lower() for name in declared}
    errors, seen = [], set()
    for name in statement.columns:
        if name.lower() not in known:
            errors.append(
                SqlError(
                    f"column '{name}' not found in table '{statement.target}'",
                    position=where,
                    hint="columns: " + ", ".join(declared),
                )
            )
        elif name.lower() in seen:
            errors.append(
                SqlError(f"column '{name}' is listed twice in INSERT INTO", position=where)
            )
        seen.add(name.lower())
    return errors


_CREATE_WORDS = {"CREATE", "OR", "REPLACE", "TEMPORARY", "TEMP", "TABLE", "VIEW", "IF", "NOT",
                 "EXISTS", "MATERIALIZED"}  # fmt: skip


def _created_name(raw: RawStatement) -> str | None:
    """The table or view name of a ``CREATE`` statement that did not parse, if it has one."""
    tokens = raw.tokens
    if tokens[0].token_type != TokenType.CREATE:
        return None
    i = 1
    while i < len(tokens) and tokens[i].text.upper() in _CREATE_WORDS:
        i += 1
    while i + 2 < len(tokens) and tokens[i + 1].token_type == TokenType.DOT:
        i += 2  # schema.name: the last part names it
    if i >= len(tokens) or tokens[i].token_type not in (TokenType.VAR, TokenType.IDENTIFIER):
        return None
    return tokens[i].text


def _name(node: exp.Create) -> str:
    target = node.this.this if isinstance(node.this, exp.Schema) else node.this
    return str(target.name)


def _set(
    node: exp.Set, raw: RawStatement, position: SourcePosition, source: SourceText
) -> SetOption:
    """``SET updating_ttl = <interval>``, the one option Arroyo has, checked as Arroyo's
    ``duration_from_sql`` does (an interval or a deprecated string; no months, no negatives)."""
    item = node.expressions[0] if node.expressions else None
    eq = item.this if isinstance(item, exp.SetItem) else None
    if not (isinstance(eq, exp.EQ) and eq.this is not None and eq.this.name == "updating_ttl"):
        name = eq.this.name if isinstance(eq, exp.EQ) and eq.this is not None else ""
        raise SqlError(
            f"invalid option '{name}'; supported options are 'updating_ttl'"
            if name
            else "invalid syntax for `SET` call",
            position=position,
            hint="the one SET option is updating_ttl: SET updating_ttl = interval '1' hour",
        )
    after = raw.text.index("=") + 1
    value = raw.text[after:].strip()
    start = raw.start + after + len(raw.text[after:]) - len(raw.text[after:].lstrip())
    where = source.position(start, value.split()[0] if value else None)
    expression = eq.expression
    if isinstance(expression, exp.Interval):
        amount = expression.this.name if expression.this is not None else ""
        unit = expression.unit.name if expression.unit is not None else ""
        text: str | None = f"{amount} {unit}".strip()
    elif isinstance(expression, exp.Literal) and expression.is_string:
        text = str(expression.this)
    else:
        text = None
    try:
        if text is None:
            raise ValueError(f"expected an interval, but found `{value}`")
        parse_duration(text)
    except ValueError as e:
        raise SqlError(
            str(e), position=where, hint="write SET updating_ttl = interval '1' hour"
        ) from e
    return SetOption(raw.text, position, "updating_ttl", value)


def _text_from(tokens: list[Token], index: int, source: SourceText) -> str:
    text = source.text[tokens[index].start : tokens[-1].end + 1]
    return _unwrap(text)


def _unwrap(text: str) -> str:
    """``(select ...)`` -> ``select ...`` when the parentheses enclose everything."""
    text = text.strip()
    while text.startswith("(") and text.endswith(")"):
        depth = 0
        for i, ch in enumerate(text):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(text) - 1:
                return text
        text = text[1:-1].strip()
    return text


def _query_after_as(raw: RawStatement, source: SourceText) -> str:
    depth = 0
    for i, token in enumerate(raw.tokens):
        if token.token_type in _OPEN:
            depth += 1
        elif token.token_type in _CLOSE:
            depth -= 1
        elif depth == 0 and token.token_type == TokenType.ALIAS and i + 1 < len(raw.tokens):
            return _text_from(raw.tokens, i + 1, source)
    # sqlglot also reads `CREATE VIEW v SELECT ...`; Arroyo's parser wants the AS.
    found = next(
        (t for t in raw.tokens if t.token_type in _QUERY_START or t.token_type in _OPEN),
        raw.tokens[-1],
    )
    raise SqlError(
        f"Expected AS, found: {found.text}",
        position=source.at_token(found),
        hint="write CREATE VIEW name AS SELECT ...",
    )


def _insert_query(raw: RawStatement, source: SourceText) -> str:
    """The query of ``[WITH ...] INSERT INTO t [(cols)] query``, as the user wrote it.

    A leading ``WITH`` clause belongs to the query, so it is kept in front of it.
    """
    tokens = raw.tokens
    start = next(
        (k for k, t in enumerate(tokens) if t.token_type == TokenType.INSERT), 0
    )
    prefix = ""
    if start > 0:
        prefix = source.text[tokens[0].start : tokens[start - 1].end + 1] + " "
    i = start + 1
    while i < len(tokens):
        token = tokens[i]
        if token.token_type in _QUERY_START:
            return prefix + _text_from(tokens, i, source)
        if token.token_type == TokenType.L_PAREN:
            nxt = tokens[i + 1] if i + 1 < len(tokens) else None
            if nxt is not None and nxt.token_type in _QUERY_START | {TokenType.L_PAREN}:
                return prefix + _text_from(tokens, i, source)
            # a column list: skip to its closing parenthesis
            depth = 0
            for j in range(i, len(tokens)):
                depth += tokens[j].token_type == TokenType.L_PAREN
                depth -= tokens[j].token_type == TokenType.R_PAREN
                if depth == 0:
                    i = j
                    break
        i += 1
    return raw.text


def _read_tables(
    parsed: ParsedStatement, source: SourceText
) -> list[tuple[str, SourcePosition]]:
    """Tables a statement's query reads (CTE names excluded), with their positions."""
    node = parsed.expression
    if isinstance(node, exp.Create | exp.Insert):
        node = node.expression
    if not isinstance(node, exp.Query):
        return []
    ctes = {cte.alias_or_name.lower() for cte in node.find_all(exp.CTE)}
    found = []
    for table in node.find_all(exp.Table):
        if table.name and table.name.lower() not in ctes:
            found.append((table.name, node_position(table, source) or parsed.position))
    return found


def _insert_target(parsed: ParsedStatement, source: SourceText) -> SourcePosition | None:
    """Where an INSERT names its target table (``None`` for other statements)."""
    node = parsed.expression
    if not isinstance(node, exp.Insert):
        return None
    target = node.this.this if isinstance(node.this, exp.Schema) else node.this
    return node_position(target, source) if isinstance(target, exp.Expr) else None


def _check_queries(
    statements: list[Statement],
    trees: list[exp.Expr],
    source: SourceText,
    catalog: Mapping[str, TableKind | None] | None,
    failed: set[str],
) -> list[SqlError]:
    """Bind every query over the program's tables (:mod:`arroyo_lite.sql.query_check`).

    Tables of an earlier REPL statement (``catalog``), failed definitions and the status
    table have no schema here: queries reading them are left to the session. DuckDB is
    imported only when there is something to bind (a file of tables alone needs none).
    """
    if not any(
        isinstance(s, Query | CreateView | Insert)
        or (isinstance(s, CreateTable) and s.table.virtual_columns)
        for s in statements
    ):
        return []
    from arroyo_lite.sql.query_check import QueryToCheck, check_queries, check_virtual_columns

    schemas = {s.table.name: s.table for s in statements if isinstance(s, CreateTable)}
    memory = {
        s.table.name.lower(): [c.name for c in s.table.columns]
        for s in statements
        if isinstance(s, CreateTable) and s.table.kind is TableKind.MEMORY
    }
    append_only = {
        s.table.name.lower()
        for s in statements
        if isinstance(s, CreateTable)
        and s.table.kind is TableKind.SINK
        and not s.table.writes_changes
    }
    queries: list[QueryToCheck] = []
    for statement, tree in zip(statements, trees, strict=True):
        if isinstance(statement, Query):
            queries.append(QueryToCheck(statement.query, tree, statement.position))
        elif isinstance(statement, CreateView) and isinstance(tree, exp.Create):
            body = tree.expression if isinstance(tree.expression, exp.Expr) else tree
            queries.append(
                QueryToCheck(statement.query, body, statement.position, view=statement.name)
            )
        elif isinstance(statement, Insert) and isinstance(tree, exp.Insert):
            body = tree.expression if isinstance(tree.expression, exp.Expr) else tree
            declared = memory.get(statement.target.lower())
            queries.append(
                QueryToCheck(
                    statement.query,
                    body,
                    statement.position,
                    insert_target=statement.target if declared is not None else None,
                    insert_columns=statement.columns or tuple(declared or ()),
                    insert_listed=bool(statement.columns),
                    appends_to=(
                        statement.target if statement.target.lower() in append_only else None
                    ),
                )
            )
    skip = set(failed) | {STATUS_TABLE}
    skip |= {name.lower() for name in catalog or {} if name.lower() not in schemas}
    errors = [
        error
        for s in statements
        if isinstance(s, CreateTable)
        for error in check_virtual_columns(s.table, source)
    ]
    return errors + check_queries(queries, schemas, source, skip=skip)


def _check_program(
    statements: list[Statement],
    reads: list[list[tuple[str, SourcePosition]]],
    targets: list[SourcePosition | None],
    catalog: Mapping[str, TableKind | None] | None,
    failed: set[str],
) -> list[SqlError]:
    """Rules between statements: duplicates, insert targets, reads of sinks and memory tables.

    ``catalog`` holds the tables defined before this program (a session's); without one the
    program is a whole file, so a memory table it reads must also be inserted into by it.
    """
    kinds: dict[str, TableKind | None] = {k.lower(): v for k, v in (catalog or {}).items()}
    errors = _define_names(statements, kinds)
    columns = {
        s.table.name.lower(): [c.name for c in s.table.columns]
        for s in statements
        if isinstance(s, CreateTable)
    }
    inserted: set[str] = set()
    for statement, statement_reads, target in zip(statements, reads, targets, strict=True):
        if isinstance(statement, Insert):
            where = target or statement.position
            errors.extend(_check_insert(statement, where, kinds, columns, inserted, failed))
        errors.extend(_check_sink_reads(statement_reads, kinds))
    if catalog is None:
        errors.extend(_check_memory_reads(reads, kinds, inserted))
    return errors


def _define_names(
    statements: list[Statement], kinds: dict[str, TableKind | None]
) -> list[SqlError]:
    """Add each CREATE TABLE / VIEW of ``statements`` to ``kinds`` (lower-cased name -> kind,
    ``None`` for views; a DROP removes it); a name defined twice is an error (a divergence:
    Arroyo keeps the second definition silently)."""
    errors: list[SqlError] = []
    for statement in statements:
        if isinstance(statement, Drop):
            kinds.pop(statement.name.lower(), None)  # the name is free again after it
            continue
        if not isinstance(statement, CreateTable | CreateView):
            continue
        name = statement.table.name if isinstance(statement, CreateTable) else statement.name
        # CREATE OR REPLACE VIEW may reuse a view's name (not a table's).
        replacing = isinstance(statement, CreateView) and statement.replace
        if name.lower() in kinds and not (replacing and kinds[name.lower()] is None):
            errors.append(
                SqlError(
                    f"table '{name}' is already defined",
                    position=statement.position,
                    hint="table names are case-insensitive; pick another name",
                )
            )
        kinds[name.lower()] = statement.table.kind if isinstance(statement, CreateTable) else None
    return errors


def _check_insert(
    statement: Insert,
    where: SourcePosition,
    kinds: Mapping[str, TableKind | None],
    columns: Mapping[str, list[str]],
    inserted: set[str],
    failed: set[str],
) -> list[SqlError]:
    """The target of one INSERT: it exists, is not a source, and a memory table is inserted
    into once (recorded in ``inserted``) with columns that match."""
    key = statement.target.lower()
    kind = kinds.get(key)
    if key not in kinds:
        if key in failed:  # its CREATE did not compile: that error is reported already
            return []
        hint = did_you_mean(key, kinds) or "define it first: CREATE TABLE name (columns)"
        return [SqlError(f"table '{statement.target}' not found", position=where, hint=hint)]
    if kind is TableKind.SOURCE:
        return [
            SqlError(
                f"attempted to insert into table '{statement.target}', but it is a source",
                position=where,
                hint="source tables are filled by their connector; insert into a memory "
                "table (CREATE TABLE name (columns) without WITH) instead",
            )
        ]
    if kind is not TableKind.MEMORY:
        return []
    errors = list(_check_insert_columns(statement, columns.get(key), where))
    if key in inserted:
        errors.append(
            SqlError(
                "Can only insert into a memory table once",
                position=where,
                hint="combine the queries with UNION ALL in one INSERT",
            )
        )
    inserted.add(key)
    return errors


def _check_sink_reads(
    statement_reads: list[tuple[str, SourcePosition]], kinds: Mapping[str, TableKind | None]
) -> list[SqlError]:
    """A statement may not read a sink table."""
    return [
        SqlError(
            f"attempted to read from table '{name}', but it is a sink",
            position=position,
            hint="read the table the sink is written from instead",
        )
        for name, position in statement_reads
        if kinds.get(name.lower()) is TableKind.SINK
    ]


def _check_memory_reads(
    reads: list[list[tuple[str, SourcePosition]]],
    kinds: Mapping[str, TableKind | None],
    inserted: set[str],
) -> list[SqlError]:
    """In a whole file, a memory table that is read must be inserted into (Arroyo's rule)."""
    return [
        SqlError(
            f"Can't query from memory table {name} without first inserting into it.",
            position=position,
            hint=f"add INSERT INTO {name} SELECT ... to the file",
        )
        for statement_reads in reads
        for name, position in statement_reads
        if kinds.get(name.lower()) is TableKind.MEMORY and name.lower() not in inserted
    ]
