"""A per-group state's DuckDB database starts no thread, at creation or at a renewal
(query/incremental.py, "Memory"): DuckDB 2.0 starts 8 async I/O threads per database by
default, and a renewal every few seconds then meant 8 threads started and 8 ended each
time, each new one handed a glibc arena, which spread the state's allocations over arenas
and grew glibc's held memory. The engine's database and a windowed plan's, opened once each,
start DuckDB's worker threads and no async I/O thread either (``query/duck.py``,
``DATABASE_CONFIG``). The count is the process's own tasks (``/proc/self/task``)."""

from __future__ import annotations

import os
import threading

import pytest

from arroyo_lite.query.incremental import AggregateState, compile_aggregate
from tests.test_incremental_agg import SCHEMA, batch

TASKS = "/proc/self/task"

pytestmark = pytest.mark.skipif(not os.path.isdir(TASKS), reason="needs Linux's /proc")


def native_threads() -> int:
    """Threads of this process, native ones included (DuckDB's are not in ``threading``)."""
    return len(os.listdir(TASKS))


def new_state() -> AggregateState:
    query = compile_aggregate("SELECT k, count(*), sum(v) FROM t GROUP BY k", frozenset({"t"}))
    return AggregateState(query, SCHEMA)


def test_creating_and_renewing_a_state_starts_no_thread() -> None:
    # Arrow's and DuckDB's process-wide thread pools start on first use: not counted.
    warm = new_state()
    warm.apply(batch([(0, "x", 0, 1.0)]))
    warm.close()
    before = native_threads()
    python_before = threading.active_count()
    state = new_state()
    try:
        during = [native_threads()]
        for round_ in range(3):
            state.apply(batch([(round_, "x", round_, 1.0), (round_ + 1, "y", 2, 2.0)]))
            state.renew()
            during.append(native_threads())
        assert state.renewals == 3
        assert state.groups == 4
    finally:
        state.close()
    # Any other thread of the test process that came or went (Python's own) is allowed for.
    python_change = threading.active_count() - python_before
    assert [n - python_change for n in during] == [before] * len(during)


def test_the_engine_and_a_windowed_plan_start_no_async_io_thread() -> None:
    # Their databases start DuckDB's worker threads (``threads`` - 1: the caller is one),
    # and none of the 8 async I/O threads DuckDB 2.0 adds by default (query/connection.py,
    # DATABASE_CONFIG): they scan Arrow data in memory.
    from arroyo_lite.query.connection import open_database
    from arroyo_lite.query.continuous import WindowedPlan
    from arroyo_lite.query.engine import Engine
    from arroyo_lite.runtime.store import Store
    from tests.support.windows import SCHEMA as WINDOWED_SCHEMA

    probe = open_database()
    ((workers,),) = probe.execute("SELECT current_setting('threads') - 1").fetchall()
    probe.close()
    store = Store()
    store.create("t", WINDOWED_SCHEMA)
    warm = Engine(store)  # process-wide pools (Arrow's, DuckDB's) start on first use
    warm.stream("SELECT tumble(interval '1 second') AS w, count(*) FROM t GROUP BY w").close()
    warm.close()
    before = native_only()
    engine = Engine(store)
    try:
        with_engine = native_only()
        stream = engine.stream(
            "SELECT tumble(interval '1 second') AS w, count(*) AS n FROM t GROUP BY w"
        )
        assert isinstance(stream.plan, WindowedPlan)
        with_stream = native_only()
        stream.close()
    finally:
        engine.close()
        store.close()
    assert with_engine - before <= workers
    assert with_stream - with_engine <= workers


def native_only() -> int:
    """Threads of this process that are not Python's (DuckDB's, Arrow's)."""
    return native_threads() - threading.active_count()
