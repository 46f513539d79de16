"""``json_lines`` (DuckDB writes each row's JSON text and its newline) against the row-by-row
fallback, over chunked tables with nulls, text that needs escaping and empty chunks."""

from __future__ import annotations

import orjson
import pyarrow as pa
import pytest

from arroyo_lite.formats.encode import json_lines, json_lines_python, json_objects


def chunked_table() -> pa.Table:
    first = pa.table(
        {
            "n": pa.array([1, None, 3], pa.int64()),
            "s": pa.array(["a", 'q"uote\nline', None]),
            "b": pa.array([True, False, None]),
        }
    )
    second = pa.table(
        {
            "n": pa.array([-7], pa.int64()),
            "s": pa.array(["ünï©ødé ✓"]),
            "b": pa.array([True]),
        }
    )
    return pa.concat_tables([first, first.slice(0, 0), second, first.slice(1, 2)])


def test_json_lines_equal_the_row_by_row_lines():
    table = chunked_table()
    assert table.column("n").num_chunks > 1
    out = json_lines(table)
    assert out == json_lines_python(table)
    lines = out.split(b"\n")
    assert lines[-1] == b"" and len(lines) == table.num_rows + 1
    assert [orjson.loads(line) for line in lines[:-1]] == table.to_pylist()


def test_json_objects_have_no_newline():
    table = chunked_table()
    objects = json_objects(table)
    assert objects is not None
    texts = objects.to_pylist()
    assert len(texts) == table.num_rows
    assert all("\n" not in t.replace("\\n", "") for t in texts)
    assert b"".join(t.encode() + b"\n" for t in texts) == json_lines(table)


@pytest.mark.parametrize("rows", [0, 1])
def test_json_lines_of_tiny_tables(rows):
    table = pa.table({"n": pa.array(range(rows), pa.int64())})
    assert json_lines(table) == b"".join(b'{"n":%d}\n' % i for i in range(rows))
