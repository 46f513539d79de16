"""A stalled ``stream()`` reader learns how many rows retention dropped unread (issue 8,
item 8).

The reader is not held back and the source is not slowed (retention keeps memory bounded);
instead the rows missed are counted on the query, carried by the first batch after the gap,
and logged. Real session, real impulse source, a manual clock so the counts are exact.
"""

from __future__ import annotations

import logging

import pytest

from arroyo_lite import Session
from arroyo_lite.clock import ManualClock
from arroyo_lite.query.continuous import MISSED_ROWS_KEY
from tests.support.threaded_server import wait_for

IMPULSE = (
    "CREATE TABLE imp WITH (connector = 'impulse', event_rate = '10', "
    "'retention.max_rows' = '5');"
)


def _emitted(session: Session, clock: ManualClock, rows: int) -> None:
    """Wait until the source emitted ``rows`` rows in all and sleeps on the clock."""
    wait_for(
        lambda: session.status()[0].rows >= rows
        and session.runtime.run_sync(lambda: clock.sleepers) >= 1
    )


def test_a_stalled_reader_is_told_how_many_rows_it_missed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    with Session(clock=clock) as session:
        session.execute(IMPULSE)
        _emitted(session, clock, 1)
        stream = session.stream("SELECT counter FROM imp")
        first = next(stream)
        assert first.column("counter").to_pylist() == [0]
        assert stream.missed_rows == 0 and not first.schema.metadata
        # The reader stalls while 20 rows arrive; retention keeps the last 5 (16..20).
        session.runtime.call(clock.advance(2.0))
        _emitted(session, clock, 21)
        with caplog.at_level(logging.WARNING, logger="arroyo_lite.query.continuous"):
            after_gap = next(stream)
        assert after_gap.column("counter").to_pylist() == [16, 17, 18, 19, 20]
        assert stream.missed_rows == 15
        assert after_gap.schema.metadata[MISSED_ROWS_KEY] == b"15"
        [warning] = [r.getMessage() for r in caplog.records]
        assert "retention dropped 15 row(s) of 'imp' before it read them" in warning
        # A reader that keeps up misses nothing more.
        session.runtime.call(clock.advance(0.3))
        _emitted(session, clock, 24)
        assert next(stream).column("counter").to_pylist() == [21, 22, 23]
        assert stream.missed_rows == 15
        stream.close()


def test_rows_dropped_before_the_query_started_are_not_missed() -> None:
    clock = ManualClock()
    with Session(clock=clock) as session:
        session.execute(IMPULSE)
        session.runtime.call(clock.advance(2.0))
        _emitted(session, clock, 21)
        stream = session.stream("SELECT counter FROM imp")
        assert next(stream).column("counter").to_pylist() == [16, 17, 18, 19, 20]
        assert stream.missed_rows == 0
        stream.close()
