"""REPL tab completion against a real session: keywords, tables, columns, meta commands."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from arroyo_lite import Session
from arroyo_lite.terminal.repl_input import SessionCompleter


@pytest.fixture()
def session() -> Iterator[Session]:
    with Session(env={}) as s:
        s.execute(
            "CREATE TABLE ticks WITH (connector = 'impulse', event_rate = '10');"
            "CREATE VIEW tick_view AS SELECT counter AS tick_no FROM ticks;"
        )
        yield s


def complete(session: Session, text: str) -> dict[str, str]:
    """Completion text -> its kind (``table``, ``column``, ``keyword`` or '' for commands)."""
    completer = SessionCompleter(session)
    found = completer.get_completions(Document(text, len(text)), CompleteEvent())
    return {c.text: c.display_meta_text for c in found}


def test_keywords_keep_the_case_typed(session: Session) -> None:
    assert complete(session, "SEL")["SELECT"] == "keyword"
    assert complete(session, "select * fr")["from"] == "keyword"
    assert "extract_json" in complete(session, "SELECT extract_j")


def test_tables_views_and_columns(session: Session) -> None:
    got = complete(session, "SELECT * FROM ti")
    assert got["ticks"] == "table" and got["tick_view"] == "table"
    assert got["tick_no"] == "column"  # a view's column
    assert complete(session, "SELECT coun")["counter"] == "column"
    assert complete(session, "SELECT _time")["_timestamp"] == "column"
    assert complete(session, "SELECT * FROM zz") == {}


def test_a_table_created_a_moment_ago_is_offered(session: Session) -> None:
    assert "pulses" not in complete(session, "SELECT * FROM pu")
    session.execute("CREATE TABLE pulses WITH (connector = 'impulse', event_rate = '10');")
    assert complete(session, "SELECT * FROM pu")["pulses"] == "table"


def test_meta_commands_and_their_arguments(session: Session) -> None:
    offered = set(complete(session, "\\"))
    for name in ("\\tables", "\\d", "\\status", "\\watch", "\\live", "\\pause", "\\resume",
                 "\\x", "\\timing", "\\pset", "\\o", "\\i", "\\e", "\\copy", "\\help", "\\q"):
        assert name in offered, name
    assert all(name.startswith("\\") for name in offered)
    assert set(complete(session, "\\st")) == {"\\status"}
    # The duckdb CLI's dot commands complete too.
    assert {".tables", ".timer"} <= set(complete(session, ".t"))
    # The argument of \d is a name, never a keyword.
    assert complete(session, "\\d tic") == {
        "ticks": "table",
        "tick_view": "table",
        "tick_no": "column",
    }
