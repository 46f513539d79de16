"""DuckDB databases opened in the background share one thread, in order (behaviour, never time).

``run --format jsonl`` opens two databases while its SQL compiles (its output's and the
engine's): :func:`arroyo_lite.query.connection.open_in_order` runs such openings one after
another on one thread, so that only one busy thread runs beside the compile. The speed figure
is ``benchmarks/first_row.py --source impulse``.
"""

from __future__ import annotations

import logging
import threading

from arroyo_lite.query.connection import PendingConnection, open_in_order, wait_for_openings


def test_openings_run_in_order_on_one_thread_that_then_ends():
    ran: list[tuple[int, str]] = []
    release = threading.Event()

    def job(n: int) -> None:
        if n == 0:
            release.wait(30)  # the others are queued behind it meanwhile
        ran.append((n, threading.current_thread().name))

    for n in range(3):
        open_in_order(lambda n=n: job(n))
    release.set()
    wait_for_openings()
    assert ran == [(0, "duckdb-connect"), (1, "duckdb-connect"), (2, "duckdb-connect")]
    assert not [t for t in threading.enumerate() if t.name == "duckdb-connect"]


def test_a_failing_opening_is_logged_and_the_next_one_still_runs(caplog):
    after: list[str] = []

    def fails() -> None:
        raise OSError("no database today")

    with caplog.at_level(logging.ERROR, logger="arroyo_lite.query.connection"):
        open_in_order(fails)
        pending = PendingConnection()  # queued behind the failure
        con = pending.take()
        open_in_order(lambda: after.append("ran"))
        wait_for_openings()
    assert con.execute("SELECT 41 + 1").fetchone() == (42,)
    con.close()
    assert after == ["ran"]
    assert "a background DuckDB opening failed" in caplog.text
    assert "no database today" in caplog.text


def test_two_pending_connections_open_two_databases():
    first, second = PendingConnection(), PendingConnection()
    a, b = first.take(), second.take()
    a.execute("CREATE TABLE only_here (x INT)")
    assert b.execute("SELECT count(*) FROM duckdb_tables()").fetchone() == (0,)
    a.close()
    b.close()
    first.close()
    second.close()
    assert not [t for t in threading.enumerate() if t.name == "duckdb-connect"]
