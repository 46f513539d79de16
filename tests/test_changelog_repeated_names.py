"""A re-evaluated query whose result repeats a column name (``SELECT A.counter, B.counter``,
as Arroyo's ``updating_inner_join``) is diffed into changes from its second evaluation on.

DuckDB reads such a result back from ``EXCEPT ALL`` with the repeated name renamed
(``counter_1``); the diff used to cast it by name and raise, which ended the ``INSERT``'s pump
thread after its first evaluation: the sink kept the rows of the first batches only (the
suite saw "16 rows, expected 50" when load spread the input over several evaluations).
"""

from __future__ import annotations

from collections.abc import Iterator

import duckdb
import pyarrow as pa
import pytest

from arroyo_lite.config import RETRACT_COLUMN, TIMESTAMP_COLUMN
from arroyo_lite.query.changelog import diff, net
from arroyo_lite.query.engine import Engine
from arroyo_lite.runtime.store import Store

SCHEMA = pa.schema(
    [
        pa.field("counter", pa.int64()),
        pa.field(TIMESTAMP_COLUMN, pa.timestamp("ns"), nullable=False),
    ]
)
REPEATED = pa.schema([("counter", pa.int64()), ("counter", pa.int64())])


def _pairs(*values: int) -> pa.Table:
    return pa.Table.from_arrays([pa.array(values, pa.int64())] * 2, schema=REPEATED)


def _rows(*values: int) -> pa.RecordBatch:
    column = pa.array(values, pa.int64())
    return pa.record_batch([column, column.view(pa.timestamp("ns"))], schema=SCHEMA)


def test_diff_keeps_a_repeated_column_name() -> None:
    con = duckdb.connect(":memory:")
    changes = diff(con, _pairs(1, 3), _pairs(3, 5))
    assert changes.schema.names == ["counter", "counter", RETRACT_COLUMN]
    assert changes.column(0).to_pylist() == [1, 5]  # retracted first, then added
    assert changes.column(1).to_pylist() == [1, 5]
    assert changes.column(RETRACT_COLUMN).to_pylist() == [True, False]


@pytest.fixture()
def engine() -> Iterator[Engine]:
    store = Store(fanin=4)
    store.create("impulse", SCHEMA)
    engine = Engine(store)
    yield engine
    engine.close()
    store.close()


def test_an_updating_join_with_a_repeated_name_yields_changes_after_its_first_result(
    engine: Engine,
) -> None:
    sql = (
        "SELECT A.counter, B.counter FROM impulse A "
        "JOIN (SELECT * FROM impulse WHERE counter % 2 = 1) B ON A.counter = B.counter"
    )
    stream = engine.stream(sql, changelog=True, timeout=60)
    try:
        engine.store.append("impulse", _rows(0, 1, 2, 3))
        first = pa.Table.from_batches([next(stream)])
        engine.store.append("impulse", _rows(4, 5, 6, 7))
        second = pa.Table.from_batches([next(stream)])  # raised ValueError before the fix
    finally:
        stream.close()
    assert sorted(first.column(0).to_pylist()) == [1, 3]
    assert sorted(second.column(0).to_pylist()) == [5, 7]
    assert second.column(RETRACT_COLUMN).to_pylist() == [False, False]
    left = net(pa.concat_tables([first, second]))
    assert sorted(left.column(0).to_pylist()) == [1, 3, 5, 7]
