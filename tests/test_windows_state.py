"""A windowed plan's state holds the open windows' rows only: each closing drops the rows of
the windows it closed (issue 12 item 5: "windowed state is dropped when a window closes").
Real DuckDB over a real store through the engine: one source batch per window, each batch's
watermark (``_timestamp`` itself: no delay) closing the window before it, checked after
every closing over a hundred windows, so state that outlived its window would pile up."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from arroyo_lite.config import TIMESTAMP_COLUMN
from arroyo_lite.query.continuous import WindowedPlan
from arroyo_lite.query.engine import Engine
from arroyo_lite.runtime.store import Store

SCHEMA = pa.schema(
    [
        pa.field("k", pa.int64()),
        pa.field(TIMESTAMP_COLUMN, pa.timestamp("ns"), nullable=False),
    ]
)
SECOND = 1_000_000_000
#: Event time between batches; a batch's rows are at these offsets from its start. The
#: newest row is more than a second past the previous batch's, so each batch emits its
#: watermark (its oldest row: the batch's start).
STEP_S = 2
OFFSETS_S = (0.0, 1.0, 1.5)
WINDOWS = 100


def batch(start_s: int) -> pa.RecordBatch:
    times = [int((start_s + o) * SECOND) for o in OFFSETS_S]
    stamps = pa.array(times, pa.int64()).view(pa.timestamp("ns"))
    return pa.record_batch([pa.array([start_s] * len(times), pa.int64()), stamps], schema=SCHEMA)


@pytest.fixture()
def engine() -> Iterator[Engine]:
    store = Store()
    store.create("t", SCHEMA)
    engine = Engine(store)
    engine.watermarks["t"] = '"_timestamp"'
    yield engine
    engine.close()
    store.close()


@pytest.mark.parametrize(
    ("window", "open_batches"),
    [
        # A batch fills one 2 s window; the next batch's watermark closes it.
        ("tumble(interval '2 seconds')", 1),
        # Windows of 4 s every 2 s: after closing at the newest batch's start, the oldest
        # open window starts 2 s before it, so it holds the previous batch and the newest.
        ("hop(interval '2 seconds', interval '4 seconds')", 2),
    ],
)
def test_the_state_holds_only_the_open_windows_rows(
    engine: Engine, window: str, open_batches: int
) -> None:
    stream = engine.stream(f"SELECT {window} AS w, count(*) AS n FROM t GROUP BY w", timeout=60)
    plan = stream.plan
    assert isinstance(plan, WindowedPlan)
    engine.store.append("t", batch(0))  # the first watermark: no window has ended
    sizes = []
    emitted = 0
    for i in range(1, WINDOWS + 1):
        start = i * STEP_S
        engine.store.append("t", batch(start))  # its watermark closes what ended by `start`
        emitted += next(stream).num_rows  # blocks until that closing's result
        windows = plan.windows
        assert windows is not None and windows.late_rows == 0
        assert windows.open_rows == open_batches * len(OFFSETS_S)
        kept = windows.closing(None)  # every row the state holds
        oldest = pc.min(kept.column(TIMESTAMP_COLUMN)).cast(pa.int64()).as_py()
        assert oldest == (start - STEP_S * (open_batches - 1)) * SECOND
        sizes.append(kept.get_total_buffer_size())
    # What the state holds is its rows' buffers alone, the same after 100 windows as after
    # the first few (rows or buffers of closed windows kept would grow it with each one).
    assert max(sizes[5:]) <= max(sizes[:5])
    stream.close()
    assert emitted >= WINDOWS  # each closing emitted its window(s)
