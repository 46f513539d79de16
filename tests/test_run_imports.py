"""``run`` of a local table never imports pandas (behaviour, not time).

pyarrow imports pandas, when it is installed, the first time a Python value is converted
(``pa.array([...])``, ``pa.scalar``, ``schema.empty_table()``): about 0.5 s before the first
row. Those paths use :mod:`arroyo_lite.formats.pandas_free` instead; the speed figure is
``benchmarks/first_row.py``. An impulse run goes to its end; a ``polling_http`` run (small
bodies: the exact JSON path; a large one: pyarrow's reader; pages of a paginated poll;
newline-framed bodies, small and large with lines cut; metadata columns) is stopped with
SIGTERM once its rows were printed (the probe: :mod:`tests.support.cli_probe`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from arroyo_lite.formats.pandas_free import empty_table, int64_range, int64_scalar, string_scalar
from tests.support.cli_probe import probe_cli
from tests.support.http_app import make_app
from tests.support.threaded_server import ThreadedServer, serve


@pytest.fixture(scope="module")
def http_server() -> Iterator[ThreadedServer]:
    with serve(make_app()) as server:
        yield server


@pytest.mark.parametrize(
    ("path", "options", "rows"),
    [
        ("/counter", "", 1),  # a small body: the exact path, decoded with other polls' bodies
        ("/array?n=80", "", 80),  # over 1 KiB: pyarrow's JSON reader, the output builder
        ("/pages/link?n=3&per=40", ", 'pagination.type' = 'header_link'", 120),
        ("/counter?meta", "", 1),  # metadata columns, filled per page
        ("/ndjson?n=5", ", framing = 'newline'", 5),  # framed: the exact path
        ("/ndjson?n=80", ", framing = 'newline', 'framing.newline.max_length' = 99", 80),
    ],
)
def test_run_of_a_polling_http_table_to_its_rows_imports_no_pandas(
    tmp_path, http_server, path, options, rows
):
    pytest.importorskip("pandas")
    sql = tmp_path / "poll.sql"
    columns = "n BIGINT" if path.startswith("/counter") else "id BIGINT"
    if path.endswith("?meta"):
        columns += (
            ", status INT METADATA FROM 'status', page INT METADATA FROM 'page', "
            "latency DOUBLE METADATA FROM 'latency_ms'"
        )
    sql.write_text(
        f"CREATE TABLE t ({columns}) WITH (connector = 'polling_http', "
        f"endpoint = '{http_server.url(path)}', format = 'json'{options});\n"
        "SELECT * FROM t;\n"
    )
    argv = ["run", "--format", "jsonl", "--no-progress", str(sql)]
    done = probe_cli(argv, stop_after_lines=rows)
    # Every row of the first poll (a later poll's rows may come before the stop took effect).
    firsts = [json.loads(line) for line in done.rows[:rows]]
    assert len(firsts) == rows, done.rows
    if path == "/counter":
        assert firsts == [{"n": 1, "_timestamp": firsts[0]["_timestamp"]}]
    elif path.startswith("/counter"):
        assert [(r["status"], r["page"]) for r in firsts] == [(200, 1)]
        assert firsts[0]["latency"] > 0
    else:
        assert [row["id"] for row in firsts] == list(range(rows))
    assert "pandas" not in done.at_end


@pytest.mark.parametrize("fmt", ["jsonl", "table", "csv"])
def test_run_of_an_impulse_table_to_completion_imports_no_pandas(tmp_path, fmt):
    pytest.importorskip("pandas")  # installed, so pyarrow would import it if asked
    sql = tmp_path / "ticks.sql"
    sql.write_text(
        "CREATE TABLE t WITH (connector = 'impulse', event_rate = '100', message_count = '5');\n"
        "SELECT counter FROM t;\n"
    )
    done = probe_cli(["run", "--format", fmt, "--no-progress", str(sql)], timeout=60)
    for n in range(5):
        assert any(str(n) in row for row in done.rows), done.rows  # every row was printed
    assert "pandas" not in done.at_end


def test_the_builders_give_what_pyarrow_gives():
    schema = pa_schema()
    assert empty_table(schema).equals(schema.empty_table())
    assert empty_table(schema).schema.metadata == {b"k": b"v"}
    assert int64_range(3, 6).to_pylist() == [3, 4, 5]
    assert int64_range(3, 3).to_pylist() == [] == int64_range(3, 1).to_pylist()
    assert int64_scalar(-7).as_py() == -7
    assert string_scalar("é\n").as_py() == "é\n" and string_scalar("").as_py() == ""


def pa_schema():
    import pyarrow as pa

    return pa.schema([("a", pa.int64()), ("b", pa.string())], metadata={"k": "v"})
