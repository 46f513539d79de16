"""The push examples and Arroyo's corpus files over SSE/WebSocket, run against local stand-ins.

sql_examples/wikimedia_recent_changes.sql and sql_examples/bluesky_jetstream.sql run against
the demo API; the corpus files planner/mastodon_trends.sql and planner/bluesky_trends.sql run
with their endpoints pointed at the demo API's Mastodon and firesky stand-ins (same protocol,
same paths). Each test waits until rows arrived, then runs the file's own final query.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from arroyo_lite import Session
from arroyo_lite.demo import retarget
from arroyo_lite.demo.api import DemoServer
from arroyo_lite.sql.statements import Query
from tests.support.corpus import CORPUS, MISSING
from tests.support.threaded_server import wait_for

EXAMPLES = Path(__file__).parents[1] / "sql_examples"


def _run(sql: str, table: str, rows: int) -> list[tuple[object, ...]]:
    """Execute ``sql`` in a session, wait for ``rows`` rows in ``table``, run its last query."""
    with Session(env={}) as session:
        program = session.execute(sql)
        wait_for(
            lambda: (
                session.query(f"SELECT count(*) AS n FROM {table}").column(0)[0].as_py() >= rows
            ),
        )
        statuses = {s.table: s for s in session.status()}
        assert statuses[table].failures == 0, statuses[table].last_error
        query = [s for s in program.statements if isinstance(s, Query)][-1]
        result = session.query(query.query)
        return [tuple(r.values()) for r in result.to_pylist()]


def test_wikimedia_example_against_the_demo_api() -> None:
    with DemoServer(port=0) as demo:
        sql = retarget((EXAMPLES / "wikimedia_recent_changes.sql").read_text(), demo.port)
        sql = sql.replace("/recentchange'", "/recentchange?rate=400'")
        result = _run(sql, "recent_changes", 100)
    wikis = {row[0] for row in result}
    assert wikis <= {"enwiki", "dewiki", "frwiki", "wikidatawiki", "commonswiki"}
    assert len(wikis) >= 3
    assert sum(int(row[1]) for row in result) >= 100  # type: ignore[call-overload]


def test_jetstream_example_against_the_demo_api() -> None:
    with DemoServer(port=0) as demo:
        sql = retarget((EXAMPLES / "bluesky_jetstream.sql").read_text(), demo.port)
        sql = sql.replace("requireHello=true'", "requireHello=true&rate=400'")
        with Session(env={}) as session:
            session.execute(sql)
            wait_for(
                lambda: session.query("SELECT count(*) FROM jetstream").column(0)[0].as_py() >= 60,
            )
            # The subscription message asked for posts only: no like arrived.
            kinds = (
                session.query(
                    "SELECT DISTINCT json_extract_string(commit, '$.collection') AS c "
                    "FROM jetstream"
                )
                .column(0)
                .to_pylist()
            )
            assert kinds == ["app.bsky.feed.post"]
            top = session.query(
                "SELECT tag, count(*) AS posts FROM tags GROUP BY tag ORDER BY posts DESC, tag "
                "LIMIT 5"
            ).to_pylist()
    assert top and all(row["tag"] and not row["tag"].startswith('"') for row in top)
    assert top[0]["posts"] >= top[-1]["posts"]


@pytest.mark.skipif(CORPUS is None, reason=MISSING)
def test_corpus_mastodon_trends_against_a_mastodon_stand_in() -> None:
    assert CORPUS is not None
    text = (CORPUS / "planner" / "mastodon_trends.sql").read_text()
    with DemoServer(port=0) as demo:
        sql = text.replace(
            "http://mastodon.arroyo.dev/api/v1/streaming/public",
            f"http://127.0.0.1:{demo.port}/api/v1/streaming/public?rate=400",
        )
        assert sql != text
        result = _run(sql, "mastodon", 60)
    assert result, "top tags per hop window"
    # (count, tag, window, row_num): at most 5 tags per window, ranked by count.
    assert all(1 <= int(row[-1]) <= 5 for row in result)  # type: ignore[call-overload]
    assert {row[1] for row in result} <= {
        "python", "rust", "sql", "streaming", "duckdb", "arrow", "opensource", "bluesky"
    }  # fmt: skip


@pytest.mark.skipif(CORPUS is None, reason=MISSING)
def test_corpus_bluesky_trends_against_a_firesky_stand_in() -> None:
    assert CORPUS is not None
    text = (CORPUS / "planner" / "bluesky_trends.sql").read_text()
    with DemoServer(port=0) as demo:
        sql = text.replace("wss://firesky.tv/ws/app", f"ws://127.0.0.1:{demo.port}/ws/app?rate=400")
        assert sql != text
        result = _run(sql, "firesky", 60)
    assert result, "top tags per hop window"
    assert all(1 <= int(row[-1]) <= 5 for row in result)  # type: ignore[call-overload]
    # extract_json gives JSON text, as in Arroyo: the tags are quoted JSON strings.
    assert {row[1] for row in result} <= {
        f'"{t}"' for t in ("python", "rust", "sql", "streaming", "duckdb", "arrow",
                           "opensource", "bluesky")
    }  # fmt: skip
