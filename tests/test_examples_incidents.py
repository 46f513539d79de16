"""sql_examples/open_incidents.sql runs against the demo API's /incidents: the table holds
exactly the incidents the API lists as open (all pages), and the example's updating query
yields changes whose sum is the current result."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from arroyo_lite import Session
from arroyo_lite.demo import retarget
from arroyo_lite.demo.api import DemoServer
from arroyo_lite.demo.incidents import BOARD, IncidentBoard

pytestmark = pytest.mark.timeout(120)
EXAMPLE = Path(__file__).parents[1] / "sql_examples" / "open_incidents.sql"
QUERY = EXAMPLE.read_text(encoding="utf-8").rsplit(";", 2)[1].strip()


def test_open_incidents_example_against_the_demo_api() -> None:
    with DemoServer(port=0, seed=11) as demo:
        sql = retarget(EXAMPLE.read_text(encoding="utf-8"), demo.port)
        sql = sql.replace("poll_interval_ms = 1000", "poll_interval_ms = 30")
        board = demo.app[BOARD]
        with Session() as session:
            session.execute(sql)
            stream = session.stream(QUERY, timeout=60)
            result: Counter[tuple[str, str, int]] = Counter()

            def take() -> None:
                for change in next(stream).to_pylist():
                    row = (change["service"], change["urgency"], change["open"])
                    result[row] += -1 if change["_retract"] else 1

            while session.status()[0].deleted_rows == 0 or session.status()[0].updated_rows == 0:
                take()
            session.pause("incidents")
            table = session.query(
                "SELECT id, status, urgency, service.summary AS service FROM incidents"
            ).to_pylist()
            # ... and the changes of the example's query add up to its current result.
            current = Counter(
                (r["service"], r["urgency"], r["open"]) for r in session.query(QUERY).to_pylist()
            )
            while +result != current:
                take()
            stream.close()
    assert all(count >= 0 for count in result.values())
    # The table is the open list of one of the board's states (the one its last complete
    # poll read: the board moves on at each poll's first page), replayed from the seed.
    replay = IncidentBoard(seed=11)
    states = []
    for _ in range(board.steps):
        replay.step()
        states.append({
            str(r["id"]): (r["status"], r["urgency"], r["service"]["summary"])  # type: ignore[index]
            for r in replay.open.values()
        })  # fmt: skip
    polled = {r["id"]: (r["status"], r["urgency"], r["service"]) for r in table}
    assert polled in states[-2:]
    assert max(len(s) for s in states) > 5  # some polls read more than one page of five
