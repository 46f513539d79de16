"""``arroyo-lite test`` warns when a table's declared columns miss the records of the body.

``(id BIGINT)`` over ``{"results": [...]}`` decodes to rows of NULLs without any error; the
warning names the body's keys and points at ``arroyo-lite infer``. Real server (``server``).
"""

from __future__ import annotations

from pathlib import Path

from tests.support.http_app import STATE, url
from tests.support.inprocess import Finished, invoke

WRAPPED = b'{"count": 2, "next": null, "results": [{"id": 1, "total": 2.5}, {"id": 2}]}'


def wrapped(server) -> str:
    server.app[STATE].sequence = [WRAPPED]
    return url(server, "/sequence")


async def run_arroyo_test(tmp_path: Path, sql: str, **env: str) -> tuple[Finished, str]:
    """``arroyo-lite test`` on a file holding ``sql``: its result, and its output with every
    run of whitespace made one space (so a phrase wrapped across lines still matches)."""
    path = tmp_path / "tables.sql"
    path.write_text(sql)
    done = await invoke("test", str(path), **env)
    return done, " ".join(done.stdout.split())


async def test_warns_when_every_row_is_null_and_names_the_keys(server, tmp_path):
    done, out = await run_arroyo_test(
        tmp_path,
        f"CREATE TABLE orders (id BIGINT, total DOUBLE) WITH (connector = 'polling_http', "
        f"endpoint = '{wrapped(server)}', format = 'json');\n",
    )
    assert "warning: every decoded row is entirely NULL (1 row(s))" in out
    assert "the body's top-level keys are: count, next, results" in out
    assert "(wrapped inside the object?)" in out
    assert "add 'records.path' = '$.results' (the records look like the array there), or" in out
    assert f"`arroyo-lite infer {url(server, '/sequence')} --name orders`" in out
    assert done.code == 0  # a warning, not a failure: the request and decoding worked


async def test_the_suggested_command_keeps_header_templates_not_secrets(server, tmp_path):
    done, out = await run_arroyo_test(
        tmp_path,
        f"CREATE TABLE orders (id BIGINT) WITH (connector = 'polling_http', "
        f"endpoint = '{wrapped(server)}', headers = 'X-Key: {{{{ WARN_TOKEN }}}}', "
        "format = 'json');\n",
        WARN_TOKEN="hunter2-secret",
    )
    assert "-H 'X-Key: {{ WARN_TOKEN }}' --name orders`" in out
    assert "hunter2-secret" not in done.stdout + done.stderr


async def test_warns_when_most_columns_match_no_field(server, tmp_path):
    done, out = await run_arroyo_test(
        tmp_path,
        f"CREATE TABLE items (id BIGINT, title TEXT, price DOUBLE) WITH (connector = "
        f"'polling_http', endpoint = '{url(server, '/array')}', format = 'json');\n",
    )
    assert "warning: 2 of 3 declared columns match no field (title, price)" in out
    assert "the array's objects' keys are: id, name" in out
    assert "wrapped" not in out and "records.path" not in out


async def test_does_not_warn_when_the_columns_fit(server, tmp_path):
    done, _ = await run_arroyo_test(
        tmp_path,
        f"CREATE TABLE items (id BIGINT, name TEXT, extra TEXT) WITH (connector = "
        f"'polling_http', endpoint = '{url(server, '/array')}', format = 'json');\n",
    )
    assert done.code == 0 and "warning" not in done.stdout


async def test_the_suggested_record_path_gives_the_rows(server, tmp_path):
    done, _ = await run_arroyo_test(
        tmp_path,
        f"CREATE TABLE orders (id BIGINT, total DOUBLE) WITH (connector = 'polling_http', "
        f"endpoint = '{wrapped(server)}', format = 'json', 'records.path' = '$.results');\n",
    )
    assert done.code == 0, done.stdout + done.stderr
    assert "2 row(s) decoded" in done.stdout and "warning" not in done.stdout
