"""The Python API end to end: real sources (impulse, polling_http against a local aiohttp
server), the real store and DuckDB. Waits are bounded polls of a condition, never timed."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

import arroyo_lite
from arroyo_lite import QueryError, Session, SqlError, ValidationErrors
from arroyo_lite.connectors.base import SourceState
from arroyo_lite.query.continuous import ContinuousQuery
from tests.support.http_app import make_app
from tests.support.threaded_server import ThreadedServer, serve, wait_for


@pytest.fixture()
def server() -> Iterator[ThreadedServer]:
    with serve(make_app()) as s:
        yield s


@pytest.fixture()
def session() -> Iterator[Session]:
    with Session(env={}) as s:
        yield s


def scalar(session: Session, sql: str) -> object:
    return session.query(sql).to_pylist()[0]


def count(session: Session, table: str) -> int:
    value = session.query(f"SELECT count(*) AS n FROM {table}").column("n")[0].as_py()
    assert isinstance(value, int)
    return value


def polling_ddl(name: str, url: str, columns: str, **options: str) -> str:
    opts = {"connector": "polling_http", "endpoint": url, "poll_interval_ms": "20", **options}
    # Dotted keys must be quoted, as in Arroyo.
    body = ",\n  ".join(
        f"{repr(k) if '.' in k else k} = '{v}'" for k, v in opts.items()
    )
    cols = f"({columns})" if columns else ""
    return f"CREATE TABLE {name} {cols} WITH (\n  {body}\n);"


# --- snapshot queries over impulse tables ---------------------------------------------------


def test_readme_python_api_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("<!-- section: python-api -->")[1].split("<!-- /section")[0]
    code = section.split("```python\n")[1].split("```")[0]
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "new rows" in out
    assert "n: [[50]]" in out and "top: [[98]]" in out  # evens among counters 0..99
    assert "ticks" in out  # the status table lists the source


def test_snapshot_sees_rows_as_they_arrive(session: Session) -> None:
    program = session.execute(
        "CREATE TABLE imp WITH (connector = 'impulse', event_rate = '500', message_count = '300');"
        "SELECT count(*) FROM imp;"
    )
    assert [type(s).__name__ for s in program.statements] == ["CreateTable", "Query"]
    wait_for(lambda: count(session, "imp") == 300)
    rows = session.query("SELECT counter, subtask_index, _timestamp FROM imp ORDER BY counter")
    assert rows.column("counter").to_pylist() == list(range(300))
    assert set(rows.column("subtask_index").to_pylist()) == {0}
    # Microseconds for Python (to_pylist needs no pandas); nanoseconds on request.
    assert rows.schema.field("_timestamp").type == pa.timestamp("us")
    exact = session.query("SELECT _timestamp FROM imp", nanoseconds=True)
    assert exact.schema.field("_timestamp").type == pa.timestamp("ns")
    wait_for(lambda: session.status()[0].state is SourceState.FINISHED)


def test_joins_aggregates_windows_views_and_memory_tables(session: Session) -> None:
    session.execute(
        """
        CREATE TABLE a WITH (connector = 'impulse', event_rate = '1000', message_count = '100');
        CREATE TABLE b WITH (connector = 'impulse', event_rate = '1000', message_count = '50');
        CREATE TABLE labels (k BIGINT, label TEXT);
        INSERT INTO labels SELECT * FROM (VALUES (0, 'even'), (1, 'odd')) AS v(k, label);
        CREATE VIEW tagged AS
          SELECT a.counter, l.label FROM a JOIN labels l ON a.counter % 2 = l.k;
        """
    )
    wait_for(lambda: count(session, "a") == 100 and count(session, "b") == 50)
    joined = session.query("SELECT count(*) AS n FROM a JOIN b ON a.counter = b.counter")
    assert joined.column("n").to_pylist() == [50]
    by_label = session.query("SELECT label, count(*) AS n FROM tagged GROUP BY label ORDER BY 1")
    assert by_label.to_pylist() == [{"label": "even", "n": 50}, {"label": "odd", "n": 50}]
    ranked = session.query(
        "SELECT counter, row_number() OVER (ORDER BY counter DESC) AS r FROM b ORDER BY r LIMIT 2"
    )
    assert ranked.to_pylist() == [{"counter": 49, "r": 1}, {"counter": 48, "r": 2}]
    assert session.tables() == ["a", "b", "labels", "tagged"]
    assert session.schema("tagged").names == ["counter", "label"]
    assert session.schema("labels").names == ["k", "label", "_timestamp"]


def test_status_table_is_queryable(session: Session) -> None:
    session.execute("CREATE TABLE imp WITH (connector = 'impulse', event_rate = '100');")
    wait_for(lambda: count(session, "imp") >= 5)
    status = session.query(
        'SELECT "table", connector, state, rows, last_poll_at FROM arroyo_status'
    ).to_pylist()
    assert len(status) == 1
    row = status[0]
    assert (row["table"], row["connector"], row["state"]) == ("imp", "impulse", "running")
    assert row["rows"] >= 5 and row["last_poll_at"] is not None


# --- polling_http sources -----------------------------------------------------------------


def test_polling_ndjson_rows_and_changed_dedup(session: Session, server: ThreadedServer) -> None:
    session.execute(
        polling_ddl(
            "items", server.url("/ndjson?n=3"), "id BIGINT, name TEXT",
            format="json", framing="newline",
        )
        + polling_ddl(
            "once", server.url("/ndjson?n=2"), "id BIGINT, name TEXT",
            format="json", framing="newline", emit_behavior="changed",
        )
    )
    wait_for(lambda: count(session, "items") >= 9)
    # 'changed': the same body polled many times adds its rows once.
    wait_for(lambda: next(s for s in session.status() if s.table == "once").polls >= 5)
    assert count(session, "once") == 2
    names = session.query("SELECT DISTINCT name FROM items ORDER BY 1").column("name")
    assert names.to_pylist() == ["item-0", "item-1", "item-2"]


def test_unstructured_json_array_unnests_one_row_per_element(
    session: Session, server: ThreadedServer
) -> None:
    session.execute(
        polling_ddl(
            "raw", server.url("/array?n=4"), "value JSON",
            format="json", **{"json.unstructured": "true", "emit_behavior": "changed"},
        )
    )
    wait_for(lambda: count(session, "raw") >= 1)
    rows = session.query(
        """
        SELECT json_get_int(item, 'id') AS id, json_get_str(item, 'name') AS name,
               item ->> 'name' AS name2
        FROM (SELECT unnest(extract_json(value, '$[*]')) AS item FROM raw)
        ORDER BY id
        """
    ).to_pylist()
    assert rows == [{"id": i, "name": f"item-{i}", "name2": f"item-{i}"} for i in range(4)]


def test_failing_source_stops_only_its_table(session: Session, server: ThreadedServer) -> None:
    session.execute(
        polling_ddl("bad", server.url("/invalid"), "id BIGINT", format="json")
        + polling_ddl("good", server.url("/counter"), "n BIGINT", format="json")
    )
    bad = wait_for(
        lambda: next((s for s in session.status() if s.table == "bad" and s.last_error), None)
    )
    assert bad.state is SourceState.FAILED
    before = count(session, "good")
    wait_for(lambda: count(session, "good") > before + 3)
    good = next(s for s in session.status() if s.table == "good")
    assert good.state is SourceState.RUNNING
    # The status table reports the failure as data.
    failed = session.query("SELECT \"table\", last_error FROM arroyo_status WHERE state = 'failed'")
    assert failed.column("table").to_pylist() == ["bad"]


# --- continuous queries -------------------------------------------------------------------


def test_incremental_stream_emits_each_row_exactly_once(session: Session) -> None:
    session.execute(
        # 3 s of input: long enough that even a starved consumer thread sees it in several
        # evaluations (at 2000/s a loaded machine could deliver it all in one).
        "CREATE TABLE imp WITH (connector = 'impulse', event_rate = '500', "
        "message_count = '1500');"
    )
    stream = session.stream("SELECT counter FROM imp WHERE counter % 3 = 0", timeout=60)
    assert stream.incremental
    seen: list[int] = []
    batches = 0
    for batch in stream:
        batches += 1
        seen.extend(batch.column("counter").to_pylist())
        if len(seen) >= 500:
            stream.close()
    assert seen == list(range(0, 1500, 3))
    assert batches > 1  # rows arrived over several evaluations, none repeated


def test_incremental_stream_over_a_view_joined_with_a_memory_table(session: Session) -> None:
    session.execute(
        """
        CREATE TABLE imp WITH (connector = 'impulse', event_rate = '1000', message_count = '40');
        CREATE TABLE names (k BIGINT, label TEXT);
        INSERT INTO names VALUES (0, 'zero'), (1, 'one');
        CREATE VIEW labelled AS
          SELECT counter, label FROM imp JOIN names ON counter % 2 = k;
        """
    )
    stream = session.stream("SELECT * FROM labelled", timeout=60)
    assert stream.incremental
    rows: list[dict[str, object]] = []
    for batch in stream:
        rows.extend(batch.to_pylist())
        if len(rows) >= 40:
            stream.close()
    assert sorted(r["counter"] for r in rows) == list(range(40))  # type: ignore[type-var]
    assert {r["label"] for r in rows if r["counter"] == 3} == {"one"}


def test_aggregating_stream_yields_updated_results(session: Session) -> None:
    session.execute(
        "CREATE TABLE imp WITH (connector = 'impulse', event_rate = '1000', message_count = '300');"
    )
    stream = session.stream("SELECT count(*) AS n FROM imp", timeout=60)
    assert not stream.incremental
    counts: list[int] = []
    for batch in stream:
        assert batch.num_rows == 1  # the whole current result, replacing the previous one
        counts.append(batch.column("n")[0].as_py())
        if counts[-1] == 300:
            stream.close()
    assert counts == sorted(counts) and counts[-1] == 300


def test_stream_ends_when_the_session_closes() -> None:
    session = Session()
    session.execute("CREATE TABLE imp WITH (connector = 'impulse', event_rate = '10');")
    stream = session.stream("SELECT * FROM imp")
    first = next(stream)
    assert first.num_rows >= 1
    session.close()
    rest = list(stream)  # drains what was already evaluated, then stops
    assert all(b.num_rows for b in rest)
    with pytest.raises(StopIteration):
        next(stream)


# --- retention -----------------------------------------------------------------------------


def test_retention_max_rows_bounds_the_table(session: Session) -> None:
    session.execute(
        "CREATE TABLE imp WITH (connector = 'impulse', event_rate = '5000', "
        "'retention.max_rows' = '100');"
    )
    wait_for(lambda: session.status()[0].rows >= 1000)
    result = session.query("SELECT count(*) AS n, max(counter) - min(counter) AS span FROM imp")
    assert result.to_pylist() == [{"n": 100, "span": 99}]


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "message", "line", "col"),
    [
        ("SELECT nope FROM imp", 'Referenced column "nope" not found', 1, 8),
        ("SELECT counter\nFROM imp WHERE foo(1)", "Scalar Function with name foo", 2, 16),
        ("SELECT * FROM missing", "Table with name missing does not exist", 1, 15),
        ("SELEC 1", "syntax error", 1, 1),
    ],
)
def test_bad_queries_raise_query_error_with_position(
    session: Session, sql: str, message: str, line: int, col: int
) -> None:
    session.execute("CREATE TABLE imp WITH (connector = 'impulse', event_rate = '10');")
    with pytest.raises(QueryError) as info:
        session.query(sql)
    error = info.value
    assert message in error.message
    assert error.position is not None
    assert (error.position.line, error.position.col) == (line, col)
    assert count(session, "imp") >= 1  # the session goes on


def test_bad_view_points_into_the_file(session: Session) -> None:
    session.execute("CREATE TABLE imp WITH (connector = 'impulse', event_rate = '10');")
    with pytest.raises(QueryError) as info:
        session.execute("\n\nCREATE VIEW v AS\n  SELECT nope FROM imp;", file="p.sql")
    pos = info.value.position
    assert pos is not None and (pos.file, pos.line, pos.col) == ("p.sql", 4, 10)


def test_bad_create_table_as_points_into_the_file(session: Session) -> None:
    session.execute("CREATE TABLE imp WITH (connector = 'impulse', event_rate = '10');")
    with pytest.raises(QueryError) as info:
        session.execute("CREATE TABLE c AS SELECT nope FROM imp;", file="c.sql")
    pos = info.value.position
    assert pos is not None and (pos.file, pos.line, pos.col) == ("c.sql", 1, 26)
    session.execute("CREATE TABLE c AS SELECT counter FROM imp;")  # the name is still free
    assert "c" in session.tables()


def test_bad_insert_query_points_into_the_file(session: Session) -> None:
    session.execute("CREATE TABLE m (x BIGINT);")
    # Caught when the statement is compiled, before anything is applied.
    with pytest.raises(ValidationErrors) as info:
        session.execute("\nINSERT INTO m\nSELECT nope;", file="i.sql")
    (error,) = info.value
    assert error.message == "column 'nope' not found"
    pos = error.position
    assert pos is not None and (pos.file, pos.line, pos.col) == ("i.sql", 3, 8)


def test_bad_stream_query_fails_before_iteration(session: Session) -> None:
    session.execute("CREATE TABLE imp WITH (connector = 'impulse', event_rate = '10');")
    with pytest.raises(QueryError, match="nope"):
        session.stream("SELECT nope FROM imp")


def test_invalid_ddl_is_a_validation_error_and_applies_nothing(session: Session) -> None:
    with pytest.raises(ValidationErrors):
        session.execute(
            "CREATE TABLE ok WITH (connector = 'impulse', event_rate = '10');\n"
            "CREATE TABLE bad WITH (connector = 'impulse');"
        )
    assert session.tables() == []


def test_duplicate_table_and_second_insert_are_errors(session: Session) -> None:
    session.execute(
        "CREATE TABLE m (x BIGINT); INSERT INTO m VALUES (1);"
        "CREATE TABLE imp WITH (connector = 'impulse', event_rate = '10');"
    )
    with pytest.raises(SqlError, match="already defined"):
        session.execute("CREATE TABLE imp WITH (connector = 'impulse', event_rate = '10');")
    with pytest.raises(SqlError, match="once"):
        session.execute("INSERT INTO m VALUES (2);")
    assert session.query("SELECT x FROM m").column("x").to_pylist() == [1]


def test_close_stops_every_source_cleanly(server: ThreadedServer) -> None:
    from tests.support.http_app import STATE

    state = server.app[STATE]
    server.call(state.gate.clear)  # /gate answers only once the test opens it again
    session = Session(env={})
    try:
        session.execute(
            polling_ddl("polled", server.url("/counter"), "n BIGINT", format="json")
            # Stuck in a request that never ends: close must not wait for it.
            + polling_ddl("stuck", server.url("/gate"), "n BIGINT", format="json")
            + "CREATE TABLE imp WITH (connector = 'impulse', event_rate = '100');"
        )
        hits = state.hits
        wait_for(lambda: server.call(lambda: hits["/counter"] >= 2 and hits["/gate"] >= 1))
        wait_for(lambda: count(session, "imp") >= 1)
        session.close()
    finally:
        server.call(state.gate.set)
    states = {s.table: s.state for s in session.status()}
    assert states == {t: SourceState.STOPPED for t in ("polled", "stuck", "imp")}
    # The loop that ran them is gone: nothing can poll any more.
    assert session.runtime.closed and session.runtime.loop.is_closed()


def test_closed_session_refuses_work() -> None:
    session = Session()
    session.close()
    session.close()  # idempotent
    with pytest.raises(arroyo_lite.ArroyoLiteError, match="closed"):
        session.query("SELECT 1")


async def test_async_session() -> None:
    async with arroyo_lite.AsyncSession() as session:
        await session.execute(
            "CREATE TABLE imp WITH (connector = 'impulse', event_rate = '1000', "
            "message_count = '20');"
        )
        seen: list[int] = []
        async for batch in session.stream("SELECT counter FROM imp", timeout=60):
            seen.extend(batch.column("counter").to_pylist())
            if len(seen) >= 20:
                break
        assert seen == list(range(20))
        table = await session.query("SELECT count(*) AS n FROM imp")
        assert table.column("n").to_pylist() == [20]
        assert session.tables() == ["imp"]



def test_close_ends_streams_consumed_on_other_threads() -> None:
    session = Session()
    session.execute("CREATE TABLE imp WITH (connector = 'impulse', event_rate = '1000');")
    streams = [
        session.stream("SELECT counter FROM imp"),
        session.stream("SELECT count(*) FROM imp"),
    ]
    seen = [0, 0]
    errors: list[Exception] = []

    def consume(index: int, stream: ContinuousQuery) -> None:
        try:
            for _ in stream:
                seen[index] += 1
        except Exception as e:  # recorded: the assertion below fails on it
            errors.append(e)

    threads = [
        threading.Thread(target=consume, args=(i, s)) for i, s in enumerate(streams)
    ]
    for t in threads:
        t.start()
    # Close while both consumers are inside their iteration (blocked waiting for the next
    # batch): closing before a consumer thread got its first batch would test nothing.
    wait_for(lambda: all(n >= 1 for n in seen) and count(session, "imp") >= 50)
    session.close()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert errors == []


def test_interrupt_cancels_a_long_query_and_the_session_goes_on(session: Session) -> None:
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            session.query("SELECT sum(i) FROM range(100000000000) t(i)")
            outcome.append(None)
        except BaseException as e:  # recorded for the assertion below
            outcome.append(e)

    worker = threading.Thread(target=run)
    worker.start()
    # Interrupt until the query gives up (an interrupt before it starts has no effect).
    wait_for(lambda: session.interrupt() or not worker.is_alive(), within=60, every=0.05)
    worker.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], QueryError), outcome
    assert "interrupt" in outcome[0].message.lower()
    assert session.query("SELECT 42 AS x").column("x").to_pylist() == [42]


def test_stream_over_the_status_table_refreshes(session: Session) -> None:
    session.execute("CREATE TABLE imp WITH (connector = 'impulse', event_rate = '100');")
    stream = session.stream('SELECT "table", rows FROM arroyo_status', timeout=60)
    assert not stream.incremental
    seen: list[int] = []
    for batch in stream:
        seen.append(batch.column("rows")[0].as_py() if batch.num_rows else 0)
        if len(seen) >= 2 and seen[-1] > seen[0]:
            stream.close()
    assert seen[-1] > seen[0]  # re-evaluated as the source's counters moved


def test_retention_max_age_through_sql(session: Session) -> None:
    session.execute(
        "CREATE TABLE imp WITH (connector = 'impulse', event_rate = '1000', "
        "message_count = '20', 'retention.max_age' = interval '1 second');"
    )
    wait_for(lambda: session.status()[0].rows == 20)
    # Once a second has passed, every row is older than max_age: the table empties.
    wait_for(lambda: count(session, "imp") == 0)
    assert session.status()[0].rows == 20  # produced, then expired


def test_incremental_stream_unnests_each_polled_array_once(
    session: Session, server: ThreadedServer
) -> None:
    session.execute(
        polling_ddl(
            "raw", server.url("/array?n=3"), "value JSON",
            format="json", **{"json.unstructured": "true"},
        )
    )
    stream = session.stream(
        "SELECT json_get_int(item, 'id') AS id "
        "FROM (SELECT unnest(extract_json(value, '$[*]')) AS item FROM raw)",
        timeout=60,
    )
    assert stream.incremental
    ids: list[int] = []
    for batch in stream:
        ids.extend(batch.column("id").to_pylist())
        if len(ids) >= 12:
            stream.close()
    # Every body's three elements, in order, each body once.
    assert len(ids) % 3 == 0 and ids == [0, 1, 2] * (len(ids) // 3)
