"""Parse one statement's tokens with sqlglot, taking a ``CREATE TABLE``'s WITH clause apart.

The WITH options of a ``CREATE TABLE`` are cut out of the token stream before sqlglot sees the
statement: keys are then found with their exact positions (sqlglot keeps none for property
keys), any key is accepted (``type``, ``format`` and ``location`` would otherwise be parsed as
special properties), and each value is parsed on its own as an expression. sqlglot parse
errors become positioned :class:`~arroyo_lite.errors.SqlError` objects.

sqlglot's parser recurses once or more per nesting level, so nesting is bounded before it
runs: more than :data:`MAX_NESTING` levels of parentheses, brackets, braces and
``ARRAY<``/``STRUCT<``/``MAP<`` types is an error at the token that goes one level too deep
(Arroyo's parser has such a limit too: "recursion limit exceeded").
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from sqlglot import exp
from sqlglot.errors import ParseError
from sqlglot.tokenizer_core import Token, TokenType

from arroyo_lite.connectors.options import OptionValue
from arroyo_lite.errors import SourcePosition, SqlError, closest
from arroyo_lite.sql.dialect import Arroyo
from arroyo_lite.sql.source import RawStatement, SourceText

_OPEN = {TokenType.L_PAREN, TokenType.L_BRACKET, TokenType.L_BRACE}
_CLOSE = {TokenType.R_PAREN, TokenType.R_BRACKET, TokenType.R_BRACE}
_KEY_TYPES = {TokenType.VAR, TokenType.STRING, TokenType.IDENTIFIER}
#: Type keywords whose ``<`` opens a nesting level (closed by ``>``).
_NESTED_TYPES = {TokenType.ARRAY, TokenType.STRUCT, TokenType.MAP}
#: Deepest nesting accepted. sqlglot uses ~25 Python frames per level in the worst case
#: (nested function calls), so 32 levels stay well inside the default recursion limit of
#: 1000 however deep the caller is (the REPL, a test runner).
MAX_NESTING = 32


@dataclass(frozen=True, slots=True)
class ParsedStatement:
    """A statement as sqlglot parsed it, plus its WITH options (``None``: no WITH clause)."""

    raw: RawStatement
    expression: exp.Expr
    options: list[OptionValue] | None
    with_position: SourcePosition | None
    position: SourcePosition


def parse_statement(raw: RawStatement, source: SourceText) -> ParsedStatement:
    """Parse ``raw``; raises :class:`SqlError` positioned at the offending token."""
    tokens = raw.tokens
    if tokens[0].token_type == TokenType.VAR:
        # A word that is no keyword cannot start a statement (sqlglot would try it as an
        # expression and complain about a later token): name the word, as Arroyo's parser does.
        raise _not_a_statement(tokens[0], source)
    check_nesting(tokens, source)
    options: list[OptionValue] | None = None
    with_position = None
    span = _with_clause_span(tokens)
    if span is not None:
        start, end = span
        with_position = source.at_token(tokens[start])
        options = _parse_options(tokens[start + 2 : end], tokens[start + 1], source)
        tokens = tokens[:start] + tokens[end + 1 :]
    unclosed = _unclosed_column_list(raw.tokens, source)
    if unclosed is not None:
        raise unclosed  # (sqlglot would read on, and point at the end or parse it oddly)
    expressions = _parse_tokens(tokens, source)
    if len(expressions) != 1 or expressions[0] is None:
        raise SqlError("expected exactly one statement", position=source.at_token(raw.tokens[0]))
    return ParsedStatement(
        raw, expressions[0], options, with_position, source.at_token(raw.tokens[0])
    )


_STATEMENT_KEYWORDS = ("CREATE", "INSERT", "SELECT", "SET", "WITH")


def check_nesting(tokens: list[Token], source: SourceText) -> None:
    """Raise :class:`SqlError` at the first token nested more than :data:`MAX_NESTING` deep."""
    depth = 0
    types = 0  # open ARRAY</STRUCT</MAP< levels, the only ones a '>' closes
    for i, token in enumerate(tokens):
        kind = token.token_type
        opens = kind in _OPEN or (
            kind == TokenType.LT and i > 0 and tokens[i - 1].token_type in _NESTED_TYPES
        )
        if opens:
            depth += 1
            types += kind == TokenType.LT
            if depth > MAX_NESTING:
                raise SqlError(
                    f"recursion limit exceeded: more than {MAX_NESTING} nested levels of "
                    "parentheses, brackets or ARRAY<>/STRUCT<> types",
                    position=source.at_token(token),
                    hint="simplify the expression, or move a part of it into a view",
                )
        elif kind in _CLOSE or (kind == TokenType.GT and types):
            depth = max(0, depth - 1)
            types -= kind == TokenType.GT


def _unclosed_column_list(tokens: list[Token], source: SourceText) -> SqlError | None:
    """``CREATE TABLE t (a INT, v TEXT WITH (...)``: the column list's ``)`` is missing.

    Arroyo's parser (sqlparser's ``parse_columns``) stops at the first token after a column
    definition that is neither ``,`` nor ``)``: here the ``WITH``. sqlglot would read on and
    complain at the end of the statement (or, when the parentheses happen to balance, take
    the WITH clause as part of a column). So a ``WITH (`` directly inside the column list
    is reported where Arroyo reports it, in its words.
    """
    if not tokens or tokens[0].token_type != TokenType.CREATE:
        return None
    start = next((i for i, t in enumerate(tokens) if t.token_type == TokenType.L_PAREN), None)
    if start is None or not any(t.token_type == TokenType.TABLE for t in tokens[:start]):
        return None
    depth = 0
    for i in range(start, len(tokens)):
        token = tokens[i]
        if token.token_type in _OPEN:
            depth += 1
        elif token.token_type in _CLOSE:
            depth -= 1
            if depth == 0:
                return None  # the list is closed: the problem is elsewhere
        elif (
            depth == 1
            and token.token_type == TokenType.WITH
            and i + 1 < len(tokens)
            and tokens[i + 1].token_type == TokenType.L_PAREN
        ):
            return SqlError(
                f"Expected: ',' or ')' after column definition, found: {token.text}",
                position=source.at_token(token),
                hint=f"close the column list: add ')' before {token.text}",
            )
    return None


def _not_a_statement(token: Token, source: SourceText) -> SqlError:
    # Keywords are suggested bare (did you mean SELECT?), as SQL is written, not quoted.
    close = closest(token.text.upper(), _STATEMENT_KEYWORDS)
    return SqlError(
        f"Expected an SQL statement, found: {token.text}",
        position=source.at_token(token),
        hint=f"did you mean {close}?"
        if close
        else "arroyo-lite runs CREATE TABLE, CREATE VIEW, INSERT INTO, SELECT and SET",
    )


def parse_expression(tokens: list[Token], source: SourceText) -> exp.Expr:
    """Parse a token run as one expression (an option value)."""
    expressions = _parse_tokens(tokens, source)
    if len(expressions) != 1 or expressions[0] is None:
        raise SqlError("expected a single value", position=source.at_token(tokens[0]))
    return expressions[0]


class _NoCommandFallbackWarnings(logging.Filter):
    """Drop sqlglot's "Falling back to parsing as a 'Command'" warnings.

    Such statements come back as ``exp.Command`` and are reported as positioned errors by
    the compiler; the warning would only be noise on stderr.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "Falling back to parsing as a 'Command'" not in record.getMessage()


_FILTER = _NoCommandFallbackWarnings()


def _parse_tokens(tokens: list[Token], source: SourceText) -> list[exp.Expr | None]:
    logger = logging.getLogger("sqlglot")
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    try:
        result: list[exp.Expr | None] = Arroyo().parser().parse(tokens, source.text)
    except ParseError as e:
        raise _convert_parse_error(e, tokens, source) from e
    return result


def _convert_parse_error(e: ParseError, tokens: list[Token], source: SourceText) -> SqlError:
    info = e.errors[0] if e.errors else {}
    message = _clean(str(info.get("description") or "could not parse statement"))
    line, col = info.get("line"), info.get("col")
    position = source.at_token(tokens[-1]) if tokens else source.position(0)
    found: Token | None = None
    for token in tokens:
        # sqlglot reports the line and the *last* column of the token it stopped at.
        if token.line == line and token.col == col:
            position = source.at_token(token)
            found = token
            break
    else:
        if isinstance(line, int) and isinstance(col, int):
            highlight = str(info.get("highlight") or "")
            position = SourcePosition(
                source.file, line, max(1, col - len(highlight) + 1), highlight or None
            )
    hint = _parse_hint(message, found, tokens)
    if message == "Expecting )" and found is not None and _in_column_list(tokens, found):
        # Where sqlparser's parse_columns stops too, and in its words.
        message = f"Expected: ',' or ')' after column definition, found: {found.text}"
    return SqlError(message, position=position, hint=hint)


def _is_word(token: Token) -> bool:
    """A name (column names may be words sqlglot knows as keywords, like ``name``)."""
    return token.token_type in (TokenType.VAR, TokenType.IDENTIFIER) or token.text.isidentifier()


def _in_column_list(tokens: list[Token], found: Token) -> bool:
    """Whether ``found`` is a word directly inside ``CREATE TABLE t (...)``'s column list."""
    if not tokens or tokens[0].token_type != TokenType.CREATE or not _is_word(found):
        return False
    depth, seen_table = 0, False
    for token in tokens:
        if token is found:
            return seen_table and depth == 1
        seen_table = seen_table or token.token_type == TokenType.TABLE
        if token.token_type in _OPEN:
            depth += 1
        elif token.token_type in _CLOSE:
            depth -= 1
    return False


def _parse_hint(message: str, found: Token | None, tokens: list[Token]) -> str | None:
    """A likely fix for sqlglot's terse "Expecting )": a missing comma between two column
    definitions, or a parenthesis left open."""
    if message != "Expecting )" or found is None:
        return None
    if _is_word(found) and found is not tokens[-1]:
        return f"is a comma missing before '{found.text}'?"
    return "a '(' is not closed"


_TOKEN_REPR = re.compile(r"<Token token_type: TokenType\.(\w+), text: (.*?), line: .*?>")


_MISSING = re.compile(r"Required keyword: '\w+' missing for <class '[\w.]*\.(\w+)'>")


def _clean(message: str) -> str:
    """sqlglot sometimes embeds a token's repr in its message: show the token text instead."""

    def shown(match: re.Match[str]) -> str:
        return "end of statement" if match.group(1) == "SENTINEL" else f"'{match.group(2)}'"

    message = _TOKEN_REPR.sub(shown, message)
    missing = _MISSING.fullmatch(message)
    if missing:
        return f"syntax error: {missing.group(1).upper()} is incomplete"
    return message


def _with_clause_span(tokens: list[Token]) -> tuple[int, int] | None:
    """Indices of ``WITH`` and its closing ``)`` in a CREATE TABLE, or ``None``."""
    if not tokens or tokens[0].token_type != TokenType.CREATE:
        return None
    if not any(t.token_type == TokenType.TABLE for t in tokens[:4]):
        return None
    depth = 0
    for i, token in enumerate(tokens):
        if token.token_type in _OPEN:
            depth += 1
        elif token.token_type in _CLOSE:
            depth -= 1
        elif depth == 0 and token.token_type == TokenType.ALIAS:
            return None  # CREATE TABLE ... AS query: a WITH after this is a CTE
        elif (
            depth == 0
            and token.token_type == TokenType.WITH
            and i + 1 < len(tokens)
            and tokens[i + 1].token_type == TokenType.L_PAREN
        ):
            close = _matching(tokens, i + 1)
            if close is None:
                return None  # let sqlglot report the unbalanced parenthesis
            return i, close
    return None


def _matching(tokens: list[Token], open_index: int) -> int | None:
    depth = 0
    for j in range(open_index, len(tokens)):
        if tokens[j].token_type in _OPEN:
            depth += 1
        elif tokens[j].token_type in _CLOSE:
            depth -= 1
            if depth == 0:
                return j
    return None


def _parse_options(tokens: list[Token], paren: Token, source: SourceText) -> list[OptionValue]:
    """Split ``key = value, ...`` at top-level commas and parse each value."""
    items: list[list[Token]] = [[]]
    commas: list[Token] = []
    depth = 0
    for token in tokens:
        if token.token_type in _OPEN:
            depth += 1
        elif token.token_type in _CLOSE:
            depth -= 1
        if depth == 0 and token.token_type == TokenType.COMMA:
            items.append([])
            commas.append(token)
        else:
            items[-1].append(token)
    if items == [[]]:
        return []
    options = []
    for i, item in enumerate(items):
        if not item:
            # The comma that ends the empty item (the trailing comma for an empty last one).
            comma = commas[i] if i < len(commas) else commas[i - 1]
            raise SqlError(
                "invalid with option: ''; expected an `=` delimited key-value pair",
                position=source.at_token(comma),
                hint="remove the extra comma",
            )
        key_token = item[0]
        if (
            len(item) < 3
            or item[1].token_type != TokenType.EQ
            or not (key_token.token_type in _KEY_TYPES or key_token.text.isidentifier())
        ):
            text = source.text[item[0].start : item[-1].end + 1]
            dotted = len(item) > 1 and item[1].token_type == TokenType.DOT
            raise SqlError(
                f"invalid with option: '{text}'; expected an `=` delimited key-value pair",
                position=source.at_token(key_token),
                hint="quote dotted keys, e.g. 'json.unstructured' = true"
                if dotted
                else "write key = value",
            )
        value_tokens = item[2:]
        value_text = source.text[value_tokens[0].start : value_tokens[-1].end + 1]
        try:
            value = parse_expression(value_tokens, source)
        except SqlError as e:
            if e.hint is None:
                # Most often a missing comma: `a = 'x' b = 1` reads as one value.
                e.hint = (
                    f"could not read the value of '{key_token.text}': is a comma missing? "
                    "(key = value, key = value)"
                )
            raise
        options.append(
            OptionValue(
                key=key_token.text,
                value=value,
                text=value_text,
                key_position=source.at_token(key_token),
                value_position=source.at_token(value_tokens[0]),
            )
        )
    return options
