"""Sinks: ``INSERT INTO`` a ``stdout`` table pumps a continuous query into it while sources run.

End to end through ``arroyo-lite run`` in a subprocess against a real local HTTP server, and
through :class:`arroyo_lite.Session` with the real stdout sink writing to captured stdout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from arroyo_lite import Session
from arroyo_lite.config import TableConfig, TableKind
from arroyo_lite.connectors.base import SourceContext, SourceState
from arroyo_lite.connectors.stdout.operator import StdoutSink
from arroyo_lite.errors import ArroyoLiteError, FatalSourceError
from tests.support import cli
from tests.support.threaded_server import wait_for
from tests.test_encode import batch

IMPULSE_TO_STDOUT = """
CREATE TABLE imp WITH (connector = 'impulse', event_rate = '1000', message_count = '50');
CREATE TABLE out WITH (connector = 'stdout', format = 'json');
INSERT INTO out SELECT counter, counter * 2 AS twice FROM imp WHERE counter % 10 = 0;
"""


def sink_status(session: Session, name: str = "out") -> Any:
    return next(s for s in session.status() if s.table == name)


def test_impulse_rows_reach_stdout_as_json_lines(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    with Session() as session:
        session.execute(IMPULSE_TO_STDOUT)
        wait_for(lambda: sink_status(session).rows == 5)
        status = sink_status(session)
        assert status.connector == "stdout" and status.state is SourceState.RUNNING
    out = capsysbinary.readouterr().out
    rows = [orjson.loads(line) for line in out.splitlines()]
    assert rows == [{"counter": n, "twice": 2 * n} for n in range(0, 50, 10)]
    assert status.bytes == len(out)
    # Closing the session finished the sink (flushed, closed) after its source stopped.
    assert sink_status(session).state is SourceState.FINISHED


def test_declared_sink_columns_are_filled_by_position_or_column_list(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    sql = """
    CREATE TABLE imp WITH (connector = 'impulse', event_rate = '1000', message_count = '3');
    CREATE TABLE out (a TEXT, b BIGINT, c DOUBLE) WITH (connector = 'stdout');
    INSERT INTO out (b, a) SELECT counter, 'row-' || CAST(counter AS TEXT) FROM imp;
    """
    with Session() as session:
        session.execute(sql)
        wait_for(lambda: sink_status(session).rows == 3)
    rows = [orjson.loads(line) for line in capsysbinary.readouterr().out.splitlines()]
    assert rows == [{"a": f"row-{n}", "b": n, "c": None} for n in range(3)]


def test_sink_draining_at_close_writes_what_arrived(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    # Close as soon as the source is done: rows stored but not yet pumped are still written.
    with Session() as session:
        session.execute(IMPULSE_TO_STDOUT)
        wait_for(lambda: session.status()[0].state is SourceState.FINISHED)
    assert len(capsysbinary.readouterr().out.splitlines()) == 5


@pytest.mark.parametrize(
    ("insert", "message", "started"),
    [
        (
            # refused when the program is validated, before any table starts
            "INSERT INTO out SELECT count(*) AS n FROM imp",
            "input is updating, but sink is not configured as an updating sink "
            "(hint: use `format = 'debezium_json'`)",
            [],
        ),
        (
            "INSERT INTO out2 SELECT counter, counter FROM imp",
            "the query returns 2 column(s)",
            ["imp"],
        ),
    ],
)
def test_inserts_a_sink_cannot_take_are_refused_at_the_statement(
    insert: str, message: str, started: list[str]
) -> None:
    sql = f"""
    CREATE TABLE imp WITH (connector = 'impulse', event_rate = '10');
    CREATE TABLE out WITH (connector = 'stdout');
    CREATE TABLE out2 (x BIGINT) WITH (connector = 'stdout');
    {insert};
    """
    with Session() as session, pytest.raises(ArroyoLiteError) as info:
        session.execute(sql)
    assert message in info.value.message
    assert info.value.position is not None and info.value.position.line == 5
    # Nothing was started for the refused insert.
    assert [s.table for s in session.status()] == started


def test_a_format_without_encoder_fails_at_create() -> None:
    with (
        Session() as session,
        pytest.raises(ArroyoLiteError, match="format 'raw_bytes' cannot be written"),
    ):
        session.execute(
            "CREATE TABLE o3 (value BYTEA) WITH (connector = 'stdout', format = 'raw_bytes')"
        )


async def test_run_writes_polled_rows_to_stdout_through_a_sink(server: Any, tmp_path: Any) -> None:
    base = str(server.make_url("")).rstrip("/")
    path = tmp_path / "to_stdout.sql"
    path.write_text(
        f"""
CREATE TABLE items (id BIGINT, name TEXT) WITH (
    connector = 'polling_http',
    endpoint = '{base}/ndjson?n=3',
    format = 'json',
    framing = 'newline',
    poll_interval_ms = 100
);
CREATE TABLE out WITH (connector = 'stdout', format = 'json');
INSERT INTO out SELECT id, upper(name) AS name FROM items WHERE id > 0;
"""
    )
    done = await cli.run_until(
        "run", str(path), "--format", "jsonl", until=lambda out: out.count("\n") >= 4
    )  # two polls
    assert done.code == 0, done.stderr
    rows = [orjson.loads(line) for line in done.stdout.splitlines()]
    # Every poll's rows (id 1 and 2 pass the filter), one JSON object per line, no _timestamp.
    assert rows and len(rows) % 2 == 0
    assert set(map(orjson.dumps, rows)) == {
        orjson.dumps({"id": i, "name": f"ITEM-{i}"}) for i in (1, 2)
    }


def test_readme_sinks_example_prints_what_it_shows(
    capsysbinary: pytest.CaptureFixture[bytes],
) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("<!-- section: sinks -->")[1].split("<!-- /section: sinks -->")[0]
    sql = section.split("```sql\n")[1].split("```")[0]
    shown = section.split("prints, on stdout:\n\n```\n")[1].split("```")[0]
    with Session() as session:
        session.execute(sql, file="README.md")
        wait_for(lambda: sink_status(session).rows == 3)
    assert capsysbinary.readouterr().out.decode() == shown


async def test_a_closed_stdout_fails_the_sink_cleanly(tmp_path: Any) -> None:
    out = (tmp_path / "out.jsonl").open("wb")
    sink = StdoutSink(
        TableConfig(name="out", kind=TableKind.SINK, columns=(), connector="stdout"),
        SourceContext(),
        out=out,
    )
    await sink.write(batch())
    await sink.flush()
    assert (tmp_path / "out.jsonl").read_bytes().count(b"\n") == 2
    out.close()
    with pytest.raises(FatalSourceError, match="cannot write to stdout"):
        await sink.write(batch())
