"""``run`` of a paginated table with big pages imports no pandas either (behaviour, not time):
the pages of a poll read together (top-level arrays, ``json_pieces.read_arrays``) and the
records under a path read in pieces build their Arrow values from buffers. With pandas
installed, its import would cost ~0.4 s before the first row (tests/test_run_imports.py has
the small-page cases)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.cli_probe import probe_cli
from tests.support.http_app import make_app
from tests.support.threaded_server import ThreadedServer, serve


@pytest.fixture(scope="module")
def http_server() -> Iterator[ThreadedServer]:
    with serve(make_app()) as server:
        yield server


@pytest.mark.parametrize(
    ("path", "options"),
    [
        ("/pages/link?n=3&per=200", ", 'pagination.type' = 'header_link'"),
        (
            "/pages/json?n=3&per=200",
            ", 'pagination.type' = 'json_link', 'pagination.next_url_path' = '$.next', "
            "'records.path' = '$.items'",
        ),
    ],
    ids=["arrays", "records-path"],
)
def test_run_of_a_table_with_big_pages_to_its_rows_imports_no_pandas(
    tmp_path, http_server, path, options
):
    pytest.importorskip("pandas")
    sql = tmp_path / "pages.sql"
    sql.write_text(
        f"CREATE TABLE t (id BIGINT) WITH (connector = 'polling_http', "
        f"endpoint = '{http_server.url(path)}', format = 'json'{options});\n"
        "SELECT id FROM t;\n"
    )
    done = probe_cli(["run", "--format", "jsonl", "--no-progress", str(sql)], stop_after_lines=600)
    assert [json.loads(line)["id"] for line in done.rows[:600]] == list(range(600))
    assert "pandas" not in done.at_end
