"""A per-group state's DuckDB database starts no thread, at creation or at a renewal
(query/incremental.py, "Memory"): DuckDB 2.0 starts 8 async I/O threads per database by
default, and a renewal every few seconds then meant 8 threads started and 8 ended each
time, each new one handed a glibc arena, which spread the state's allocations over arenas
and grew glibc's held memory. The count is the process's own tasks (``/proc/self/task``)."""

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
