"""The live printing machinery (arroyo_lite.terminal.watch) in-process, over a real Session."""

from __future__ import annotations

import io
import threading
import time

import orjson
import pytest

from arroyo_lite import Session
from arroyo_lite.connectors.base import SourceState, SourceStatus
from arroyo_lite.errors import ArroyoLiteError, QueryError, SourcePosition
from arroyo_lite.sql.statements import Query
from arroyo_lite.terminal.progress import SourceReporter
from arroyo_lite.terminal.watch import relocate, run_queries

WAIT = 60.0

IMPULSE = """
CREATE TABLE imp WITH (connector = 'impulse', event_rate = '1000', message_count = '5');
SELECT counter FROM imp;
SELECT count(*) AS n FROM imp;
"""


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


def query_at(line: int, col: int, text: str = "SELECT 1") -> Query:
    return Query(text=text, position=SourcePosition("p.sql", line, col), query=text)


def test_relocate_shifts_query_positions_into_the_file():
    q = query_at(10, 5)
    first_line = relocate(QueryError("bad", position=SourcePosition("<query>", 1, 8)), q)
    assert isinstance(first_line, QueryError)
    assert first_line.position == SourcePosition("p.sql", 10, 12)
    later = relocate(QueryError("bad", position=SourcePosition("<query>", 3, 4), hint="h"), q)
    assert later.position == SourcePosition("p.sql", 12, 4) and later.hint == "h"
    unpositioned = relocate(ArroyoLiteError("closed"), q)
    assert unpositioned.format() == "p.sql:10:5: error: closed"
    elsewhere = QueryError("x", position=SourcePosition("other.sql", 2, 2))
    assert relocate(elsewhere, q) is elsewhere


def test_reporter_prints_each_new_error_once_and_a_stop_always():
    reporter = SourceReporter()
    s = SourceStatus(table="w", connector="polling_http", state=SourceState.RUNNING)
    assert reporter.check([s]) == []
    s.failures, s.last_error, s.state = 1, "HTTP 503", SourceState.BACKOFF
    (first,) = reporter.check([s])
    assert first[0] == "warning: source 'w': HTTP 503 (1 failed poll so far; retrying)"
    s.failures = 2
    assert reporter.check([s]) == []  # same message: not repeated
    s.failures, s.last_error = 3, "timed out"
    assert "timed out (3 failed polls so far" in reporter.check([s])[0][0]
    s.state = SourceState.FAILED
    (stopped,) = reporter.check([s])
    assert stopped[0] == "error: source 'w' stopped: timed out"
    assert reporter.check([s]) == []


@pytest.fixture
def session():
    with Session(env={}) as s:
        yield s


def run_in_thread(session, queries, fmt, **kwargs):
    out, err = io.BytesIO(), io.StringIO()
    stop = threading.Event()
    result: dict[str, int] = {}

    def target() -> None:
        result["code"] = run_queries(
            session,
            queries,
            fmt=fmt,
            duration=None,
            out=out,
            err_stream=err,
            progress=False,
            refresh=0.0,
            stop=stop,
            **kwargs,
        )

    thread = threading.Thread(target=target)
    thread.start()
    return out, err, stop, thread, result


def test_jsonl_incremental_rows_once_and_aggregate_updates(session):
    program = session.execute(IMPULSE, file="imp.sql")
    queries = [s for s in program.statements if isinstance(s, Query)]
    wait_until(lambda: session.query("SELECT count(*) AS n FROM imp")["n"][0].as_py() == 5, "rows")
    out, err, stop, thread, result = run_in_thread(session, queries, "jsonl")

    def rows():
        return [orjson.loads(line) for line in out.getvalue().splitlines()]

    def done() -> bool:
        r = rows()
        return sum(x["_query"] == 1 for x in r) >= 5 and any(
            x["_query"] == 2 and x["n"] == 5 for x in r
        )

    try:
        wait_until(done, "all rows printed")
    finally:
        stop.set()
        thread.join(WAIT)
    assert result["code"] == 0, err.getvalue()
    counters = [r["counter"] for r in rows() if r["_query"] == 1]
    assert sorted(counters) == [0, 1, 2, 3, 4]  # each row exactly once
    assert all("_update" not in r for r in rows() if r["_query"] == 1)
    updates = [r["_update"] for r in rows() if r["_query"] == 2]
    assert updates == list(range(1, len(updates) + 1))  # one row per update, numbered


def test_jsonl_numbers_whole_result_updates_and_marks_an_empty_one(session):
    # Rows older than a second are dropped, so the count's result goes from rows to none.
    session.execute(
        "CREATE TABLE fading WITH (connector = 'impulse', event_rate = '1000', "
        "message_count = '3', 'retention.max_age' = interval '1' second);"
    )
    text = "SELECT counter % 2 AS parity, count(*) AS n FROM fading GROUP BY 1"
    # The source finishes after 3 rows; the watch goes on to see retention empty the table.
    out, err, stop, thread, result = run_in_thread(
        session, [query_at(1, 1, text)], "jsonl", end_with_sources=False
    )

    def lines():
        return [orjson.loads(line) for line in out.getvalue().splitlines()]

    try:
        wait_until(lambda: any(set(r) == {"_update"} for r in lines()), "an empty result")
    finally:
        stop.set()
        thread.join(WAIT)
    assert result["code"] == 0, err.getvalue()
    seen = lines()
    assert any(r.get("n") for r in seen)  # rows first, then the empty result's marker
    assert set(seen[-1]) == {"_update"}
    numbers = [r["_update"] for r in seen]
    assert numbers == sorted(numbers) and numbers[-1] == max(numbers)


def test_csv_headers_and_table_titles(session):
    session.execute(IMPULSE, file="imp.sql")
    wait_until(lambda: session.query("SELECT count(*) AS n FROM imp")["n"][0].as_py() == 5, "rows")
    query = [query_at(1, 1, "SELECT counter FROM imp")]
    out, _, stop, thread, _ = run_in_thread(session, query, "csv")
    wait_until(lambda: out.getvalue().count(b"\n") >= 6, "csv rows")
    stop.set()
    thread.join(WAIT)
    lines = out.getvalue().decode().splitlines()
    assert lines[0] == '"counter"' and sorted(lines[1:]) == ["0", "1", "2", "3", "4"]

    agg = [query_at(1, 1, "SELECT count(*) AS n FROM imp")]
    out, _, stop, thread, _ = run_in_thread(session, agg, "table")
    wait_until(lambda: b"(updated " in out.getvalue(), "a table")
    stop.set()
    thread.join(WAIT)
    text = out.getvalue().decode()
    assert text.startswith("SELECT count(*) AS n FROM imp  (updated ")
    assert "1 row" in text


def test_table_output_prints_text_as_is_no_emoji_or_markup(session):
    session.execute(IMPULSE, file="imp.sql")
    wait_until(lambda: session.query("SELECT count(*) AS n FROM imp")["n"][0].as_py() == 5, "rows")
    text_query = "SELECT 'a:b:c [bold]x[/bold] :smile:' AS s, counter FROM imp"
    out, _, stop, thread, _ = run_in_thread(session, [query_at(1, 1, text_query)], "table")
    wait_until(lambda: out.getvalue().count(b"a:b:c") >= 5, "five rows")
    stop.set()
    thread.join(WAIT)
    assert "a:b:c [bold]x[/bold] :smile:" in out.getvalue().decode()


def test_a_query_that_fails_to_start_returns_1(session):
    out, err, stop, thread, result = run_in_thread(
        session, [query_at(3, 1, "SELECT * FROM nowhere")], "jsonl"
    )
    thread.join(WAIT)
    stop.set()
    assert result["code"] == 1
    assert err.getvalue().startswith("p.sql:3:15: error: ")
    assert out.getvalue() == b""
