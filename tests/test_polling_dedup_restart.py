"""``emit_behavior = 'dedup'`` with ``--state-dir``: no duplicate after a clean restart or a
``kill -9``, because rows and the key state describing them are saved together."""

from __future__ import annotations

from pathlib import Path

import pytest

from arroyo_lite import Session
from tests.support.crash import kill_9, saved_bytes, session_process
from tests.support.feeds import FeedState, make_feed_app, quakes
from tests.support.threaded_server import serve, wait_for

pytestmark = pytest.mark.timeout(120)


def create(url: str) -> str:
    return f"""
    CREATE TABLE quakes (
      id TEXT PRIMARY KEY,
      properties STRUCT<mag DOUBLE, time BIGINT>
    ) WITH (
      connector = 'polling_http', endpoint = '{url}', format = 'json',
      poll_interval_ms = 20, 'records.path' = '$.features[*]', emit_behavior = 'dedup'
    );
    """


def ids(session: Session) -> list[str]:
    values: list[str] = session.query("SELECT id FROM quakes ORDER BY id").column("id").to_pylist()
    return values


def expected_prefix(found: list[str]) -> list[str]:
    """The contiguous run of quake ids starting at the first one found."""
    start = int(found[0][2:]) if found else 0
    return [f"ci{start + i}" for i in range(len(found))]


def test_clean_restart_emits_nothing_twice(tmp_path: Path) -> None:
    state = FeedState(quakes=quakes(200), window=(0, 30))
    with serve(make_feed_app(state)) as server:
        url = server.url("/usgs")
        with Session(state_dir=tmp_path, flush_interval=0.05) as session:
            session.execute(create(url))
            wait_for(lambda: len(ids(session)) == 30)
        server.call(lambda: setattr(state, "window", (10, 40)))
        with Session(state_dir=tmp_path) as session:
            session.execute(create(url))
            wait_for(lambda: len(ids(session)) == 40)
            found = ids(session)
            status = session.status()[0]
    assert found == expected_prefix(found)
    assert status.state_keys == 40


def test_kill_9_in_the_middle_leaves_no_duplicate_and_no_gap(tmp_path: Path) -> None:
    # The feed moves one quake on per request and shows 60: a poll lost by the crash is
    # still in the window when the table restarts.
    state = FeedState(quakes=quakes(100_000), window=(0, 60), slide=1)
    with serve(make_feed_app(state)) as server:
        url = server.url("/usgs")
        proc = session_process(tmp_path, create(url))
        try:
            wait_for(
                lambda: state.hits >= 40 and saved_bytes(tmp_path, "quakes") > 4_000, within=60
            )
        finally:
            kill_9(proc)
        hits_at_crash = state.hits
        with Session(state_dir=tmp_path) as session:
            session.execute(create(url))
            reloaded = ids(session)
            assert reloaded and reloaded == expected_prefix(reloaded)
            wait_for(lambda: state.hits > hits_at_crash + 20)
            found = ids(session)
    assert len(found) == len(set(found)), "a quake emitted twice"
    assert found == expected_prefix(found), "a quake lost"
    assert len(found) > len(reloaded)


def test_earthquakes_example_runs_against_a_usgs_stand_in() -> None:
    text = (Path(__file__).resolve().parents[1] / "sql_examples" / "earthquakes.sql").read_text()
    state = FeedState(quakes=quakes(50), window=(0, 10))
    with serve(make_feed_app(state)) as server:
        text = text.replace(
            "https://earthquake.usgs.gov/earthquakes/feed/v1.0/summary/all_hour.geojson",
            server.url("/usgs"),
        ).replace("poll_interval_ms = 60000", "poll_interval_ms = 20")
        with Session() as session:
            program = session.execute(text)
            assert [t.name for t in program.tables] == ["quakes"]
            def count() -> int:
                n: int = session.query("SELECT count(*) AS n FROM quakes")["n"][0].as_py()
                return n

            wait_for(lambda: count() == 10)
            server.call(lambda: setattr(state, "window", (5, 15)))
            server.call(lambda: state.revise("ci40000007", 6.1))
            wait_for(lambda: count() == 16)
            top = session.query("SELECT id, mag FROM latest ORDER BY mag DESC LIMIT 1").to_pylist()
            status = session.status()[0]
    assert top == [{"id": "ci40000007", "mag": 6.1}]
    assert status.deduplicated_rows > 0 and status.state_keys == 15
