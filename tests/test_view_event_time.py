"""Views keep ``_timestamp`` through row-by-row SELECTs, so windows over views work."""

from __future__ import annotations

import pytest

from arroyo_lite.sql.event_time import carry_event_time


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT a FROM t", 'SELECT a, "_timestamp" FROM t'),
        (
            "SELECT b FROM (SELECT a AS b FROM t) WHERE b > 1",
            'SELECT b, "_timestamp" FROM (SELECT a AS b, "_timestamp" FROM t) WHERE b > 1',
        ),
        ("SELECT UNNEST(xs) AS x FROM t", 'SELECT UNNEST(xs) AS x, "_timestamp" FROM t'),
        (
            "SELECT a, ROW_NUMBER() OVER (ORDER BY a) AS r FROM t",
            'SELECT a, ROW_NUMBER() OVER (ORDER BY a) AS r, "_timestamp" FROM t',
        ),
        ("SELECT * FROM t", None),
        ("SELECT a, _timestamp FROM t", None),
        ("SELECT count(*) FROM t", None),
        ("SELECT a, count(*) FROM t GROUP BY a", None),
        ("SELECT DISTINCT a FROM t", None),
        ("SELECT t.a FROM t JOIN u ON t.a = u.a", None),
        ("SELECT 1", None),
        # The outer SELECT reads an aggregate: it has no _timestamp to carry.
        ("SELECT n FROM (SELECT count(*) AS n FROM t)", None),
        ("not sql at all (", None),
    ],
)
def test_rewrites(sql: str, expected: str | None) -> None:
    assert carry_event_time(sql) == expected


def test_window_over_a_view_of_a_live_table() -> None:
    import time

    from arroyo_lite import Session

    with Session(env={}) as session:
        session.execute(
            "CREATE TABLE imp WITH (connector = 'impulse', event_rate = 200);\n"
            "CREATE VIEW evens AS SELECT counter FROM imp WHERE counter % 2 = 0;\n"
            "CREATE VIEW counts AS SELECT count(*) AS n FROM imp;"
        )
        deadline = time.monotonic() + 30
        while session.query("SELECT count(*) FROM evens").column(0)[0].as_py() < 5:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert session.schema("evens").names == ["counter", "_timestamp"]
        assert session.schema("counts").names == ["n"]  # an aggregate: nothing to carry
        rows = session.query(
            "SELECT tumble(interval '1 hour') AS win, count(*) AS c FROM evens GROUP BY win"
        ).to_pylist()
        assert rows and sum(r["c"] for r in rows) >= 5
