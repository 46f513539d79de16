"""Windows over live sources: they close while the pipeline runs (the watermark advances
with each source batch), a source idle for its ``idle_micros`` does not hold back the
windows of the others (Arroyo's idle watermark), and the windows still open can be shown on
request, labelled partial, apart from the closed ones."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator

import pyarrow as pa
import pytest
from rich.console import Console

from arroyo_lite import Session
from arroyo_lite.errors import QueryError
from arroyo_lite.query.continuous import PARTIAL_KEY, WATERMARK_KEY, WindowedPlan
from arroyo_lite.query.engine import Engine
from arroyo_lite.terminal.repl_meta import MetaCommands, ReplOutput
from tests.support.windows import SECOND, keyed, two_tables


def batch(*seconds: float) -> pa.RecordBatch:
    return keyed(*((0, s) for s in seconds))


def test_an_impulse_feeds_windows_that_close_while_it_runs() -> None:
    # No message_count: the source never finishes, so every window seen closed on the way.
    with Session(env={}) as session:
        session.execute(
            "CREATE TABLE imp WITH (connector = 'impulse', event_rate = '200', "
            "event_time_interval = '100000');"  # each row 0.1 s of event time after the last
        )
        stream = session.stream(
            "SELECT tumble(interval '1 second') AS w, count(*) AS n FROM imp GROUP BY 1",
            timeout=120,
        )
        assert isinstance(stream.plan, WindowedPlan) and stream.incremental
        windows: list[tuple[object, int]] = []
        for b in stream:
            windows += [(r["w"]["start"], r["n"]) for r in b.to_pylist()]
            if len(windows) >= 3:
                break
        stream.close()
    starts = [start for start, _ in windows]
    assert len(set(starts)) == len(starts)  # each window once
    windows.sort(key=lambda w: str(w[0]))
    # Whole windows of ten 0.1 s rows (the first may have begun mid-window).
    assert [n for _, n in windows[1:]] == [10] * (len(windows) - 1)


UNION = (
    "SELECT tumble(interval '10 seconds') AS w, count(*) AS n FROM "
    "(SELECT * FROM t UNION ALL SELECT * FROM u) GROUP BY 1"
)


@pytest.fixture()
def engine() -> Iterator[Engine]:
    yield from two_tables()


def test_a_silent_source_holds_windows_back_unless_it_is_idle(engine: Engine) -> None:
    engine.idle_micros.update(t=None, u=None)  # idle_micros <= 0: never idle
    held = engine.stream(UNION, timeout=30)
    assert isinstance(held.plan, WindowedPlan)
    engine.store.append("t", batch(1, 2))
    engine.store.append("t", batch(15))  # t's watermark 15, u has none: nothing closes
    held.finish()
    assert [r for b in held for r in b.to_pylist()] == []

    engine.idle_micros["u"] = 100_000  # idle after 0.1 s without rows
    freed = engine.stream(UNION, timeout=30)
    time.sleep(0.3)  # u has brought nothing for longer than its idle time
    engine.store.append("t", batch(21))
    freed.finish()
    rows = sorted((r["w"]["start"].timestamp(), r["n"]) for b in freed for r in b.to_pylist())
    assert rows == [(0.0, 2), (10.0, 1)]  # closed by t's watermark alone


OPEN = "SELECT tumble(interval '10 seconds') AS w, count(*) AS n FROM t GROUP BY 1"


def test_open_windows_are_labelled_partial_and_never_mixed_with_closed_ones(
    engine: Engine,
) -> None:
    engine.store.append("t", batch(1, 2))
    engine.store.append("t", batch(12, 15))  # watermark 12: [0, 10) closes
    engine.store.append("t", batch(25))  # watermark 25: [10, 20) closes; [20, 30) is open
    partial = engine.open_windows(OPEN)
    assert partial.schema.metadata[PARTIAL_KEY] == b"true"
    assert int(partial.schema.metadata[WATERMARK_KEY]) == 25 * SECOND
    assert [(r["w"]["start"].timestamp(), r["n"]) for r in partial.to_pylist()] == [(20.0, 1)]
    # A running query hands the closed windows out, once each, and the open one on request.
    stream = engine.stream(OPEN, timeout=30)
    open_now = stream.open_windows()
    assert open_now is not None and open_now.num_rows == 1
    stream.finish()
    batches = list(stream)
    closed = sorted((r["w"]["start"].timestamp(), r["n"]) for b in batches for r in b.to_pylist())
    assert closed == [(0.0, 2), (10.0, 2)]
    assert not any(PARTIAL_KEY in (b.schema.metadata or {}) for b in batches)


def test_open_hop_windows_leave_out_the_closed_ones(engine: Engine) -> None:
    engine.store.append("t", batch(1, 3))
    engine.store.append("t", batch(5))  # watermark 5 (bin 4): windows ending at 2, 4 close
    partial = engine.open_windows(
        "SELECT hop(interval '2 seconds', interval '4 seconds') AS w, count(*) AS n "
        "FROM t GROUP BY 1"
    )
    rows = sorted((r["w"]["end"].timestamp(), r["n"]) for r in partial.to_pylist())
    assert rows == [(6.0, 2), (8.0, 1)]  # [2, 6): 3 and 5; [4, 8): 5


def test_only_a_windowed_query_has_open_windows(engine: Engine) -> None:
    with pytest.raises(QueryError, match="only a windowed query"):
        engine.open_windows("SELECT count(*) FROM t")


def test_the_repl_shows_open_windows_titled_partial() -> None:
    console, err = io.StringIO(), io.StringIO()
    output = ReplOutput(
        console=Console(file=console, width=200),
        err=Console(file=err, width=200),
        out=io.BytesIO(),
        pager=False,
    )
    with Session(env={}) as session:
        session.execute(
            "CREATE TABLE imp WITH (connector = 'impulse', event_rate = '1000', "
            "message_count = '5', event_time_interval = '1000000');"  # rows 1 s apart
        )
        deadline = time.monotonic() + 60
        while session.query("SELECT count(*) AS n FROM imp")["n"][0].as_py() < 5:
            assert time.monotonic() < deadline, "the impulse rows never arrived"
            time.sleep(0.05)
        commands = MetaCommands(session, output)
        query = "SELECT tumble(interval '1 hour') AS w, count(*) AS n FROM imp GROUP BY 1"
        assert commands.run(f"\\partial {query}").ok
        assert not commands.run("\\partial SELECT count(*) FROM imp").ok
    shown = console.getvalue()
    assert "partial: " in shown and "still open" in shown and "not final" in shown
    assert "only a windowed query" in err.getvalue()
