"""``arroyo-lite infer URL``: a CREATE TABLE from one real response, and ``test``'s warning.

The command runs in a subprocess against the shared test app (``server``; ``/sequence``
serves whatever body a test scripts) or httpbin. Every printed statement is checked with
``arroyo-lite validate``; the tables it describes are then polled by ``arroyo-lite test``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from arroyo_lite.cli import main
from arroyo_lite.cli.infer_cmd import table_name
from arroyo_lite.infer.sample import InferError, locate_records
from arroyo_lite.infer.schema import infer_columns, quote_identifier
from tests.support.cli import run_until
from tests.support.http_app import STATE, url
from tests.support.inprocess import invoke

ORDERS = {
    "count": 2,
    "next": None,
    "results": [
        {
            "id": 17,
            "customer": {"name": "Ada", "tier": "gold", "since": "2020-05-01T00:00:00Z"},
            "items": ["apple", "pear"],
            "total": 12.5,
            "paid": True,
            "placedAt": "2026-01-02T03:04:05.123Z",
        },
        {
            "id": 18,
            "customer": {"name": "Bo", "tier": None},
            "items": [],
            "total": 3,
            "paid": False,
            "placedAt": "2026-01-02T03:05:00+02:00",
        },
    ],
}

QUAKES = {
    "type": "FeatureCollection",
    "metadata": {"count": 2},
    "features": [
        {
            "type": "Feature",
            "id": "us7000abcd",
            "properties": {"mag": 4.2, "place": "off the coast", "time": 1767322800000},
            "geometry": {"type": "Point", "coordinates": [142.1, 38.3, 10.0]},
        },
        {
            "type": "Feature",
            "id": "us7000abce",
            "properties": {"mag": 2.9, "place": "inland", "time": 1767322900000},
            "geometry": {"type": "Point", "coordinates": [141.0, 37.9, 33.5]},
        },
    ],
}


def validate(path: Path) -> str:
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    return result.output


def serve(server: Any, body: object) -> str:
    """Make ``/sequence`` answer ``body`` (JSON-encoded unless bytes); return its URL."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    server.app[STATE].sequence = [raw]
    return url(server, "/sequence")


def ddl_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("--")]


async def test_wrapped_records_give_their_columns_and_the_record_path(server, tmp_path):
    done = await invoke("infer", serve(server, ORDERS), "--name", "orders")
    assert done.code == 0, done.stderr
    out = done.stdout
    assert "-- the records are the array at $.results (top-level keys: count, next, results)" in out
    ddl = "\n".join(ddl_lines(out))
    assert "    'records.path' = '$.results'\n);" in ddl
    assert "CREATE TABLE orders (" in ddl
    assert "    id BIGINT PRIMARY KEY," in ddl
    assert "    customer STRUCT<name TEXT, tier TEXT, since TIMESTAMP>," in ddl
    assert "    items TEXT[]," in ddl
    assert "    total DOUBLE," in ddl
    assert "    paid BOOLEAN," in ddl
    assert '    "placedAt" TIMESTAMP' in ddl
    assert "framing" not in ddl
    path = tmp_path / "orders.sql"
    path.write_text(out)
    assert "table orders  connector=polling_http" in validate(path)


async def test_the_inferred_table_reads_wrapped_records(server, tmp_path):
    """The printed CREATE TABLE (with its records.path) gives the records as rows, nested
    timestamps included, in `run` and in `test`."""
    done = await invoke("infer", serve(server, ORDERS), "--name", "orders")
    assert done.code == 0, done.stderr
    path = tmp_path / "orders.sql"
    path.write_text(done.stdout + 'SELECT id, paid, total, "placedAt", customer FROM orders;\n')
    validate(path)
    tested = await invoke("test", str(path))
    assert tested.code == 0, tested.stdout + tested.stderr
    assert "2 row(s) decoded" in tested.stdout and "warning" not in tested.stdout
    ran = await run_until(
        "run", str(path), "--format", "jsonl", until=lambda out: out.count("\n") >= 2
    )
    assert ran.code == 0, ran.stderr
    rows = [json.loads(line) for line in ran.stdout.splitlines()]
    first = {(r["id"], r["paid"], r["total"]) for r in rows}
    assert first == {(17, True, 12.5), (18, False, 3.0)}
    assert {r["placedAt"][:19] for r in rows} == {"2026-01-02T03:04:05", "2026-01-02T01:05:00"}


async def test_ndjson_is_detected_and_the_table_decodes_it(server, tmp_path):
    done = await invoke("infer", url(server, "/ndjson?n=4"))
    assert done.code == 0, done.stderr
    assert "-- the body is newline-delimited JSON (one record per line)" in done.stdout
    assert "    framing = 'newline'" in done.stdout
    assert "CREATE TABLE ndjson (" in done.stdout
    assert "    id BIGINT PRIMARY KEY," in done.stdout
    path = tmp_path / "nd.sql"
    path.write_text(done.stdout)
    assert "framing=newline" in validate(path)
    tested = await invoke("test", str(path))
    assert tested.code == 0, tested.stdout + tested.stderr
    assert "4 row(s) decoded" in tested.stdout
    assert "warning" not in tested.stdout


async def test_a_top_level_array_needs_no_record_path(server, tmp_path):
    done = await invoke("infer", url(server, "/array?n=3"), "--name", "items")
    assert done.code == 0, done.stderr
    assert "records.path" not in done.stdout and "the records are" not in done.stdout
    assert ddl_lines(done.stdout)[:3] == [
        "CREATE TABLE items (",
        "    id BIGINT PRIMARY KEY,  -- suggested key: present, non-null and distinct in every "
        "sample record",
        "    name TEXT",
    ]
    path = tmp_path / "items.sql"
    path.write_text(done.stdout)
    tested = await invoke("test", str(path))
    assert tested.code == 0 and "3 row(s) decoded" in tested.stdout
    assert "warning" not in tested.stdout


async def test_geojson_features_are_the_records(server, tmp_path):
    done = await invoke("infer", serve(server, QUAKES), "--name", "quakes")
    assert done.code == 0, done.stderr
    assert "-- the records are the array at $.features (top-level keys: " in done.stdout
    assert "    'records.path' = '$.features'" in done.stdout
    ddl = "\n".join(ddl_lines(done.stdout))
    assert "    type TEXT," in ddl
    assert "    id TEXT PRIMARY KEY," in ddl
    assert "    properties STRUCT<mag DOUBLE, place TEXT, time BIGINT>," in ddl
    assert "    geometry STRUCT<type TEXT, coordinates DOUBLE[]>" in ddl
    path = tmp_path / "quakes.sql"
    path.write_text(done.stdout)
    validate(path)


async def test_headers_use_the_environment_and_print_only_the_template(server, tmp_path):
    secret = "s3cr3t-value"
    done = await invoke(
        "infer",
        url(server, "/echo"),
        "-H",
        "Authorization: Bearer {{ INFER_TOKEN }}",
        "--header",
        "X-Trace: on",
        INFER_TOKEN=secret,
    )
    assert done.code == 0, done.stderr
    seen = server.app[STATE].requests[-1].headers
    assert seen["Authorization"] == f"Bearer {secret}" and seen["X-Trace"] == "on"
    assert secret not in done.stdout + done.stderr
    assert "headers = 'Authorization: Bearer {{ INFER_TOKEN }}, X-Trace: on'," in done.stdout
    # The echoed request headers are a nested object whose keys need quoting.
    assert '"Authorization" TEXT' in done.stdout
    path = tmp_path / "echo.sql"
    path.write_text(done.stdout)
    env = {"INFER_TOKEN": secret}
    result = CliRunner(env=env).invoke(main, ["validate", str(path)])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/invalid", "error: the response body is not JSON"),
        ("/status/404", "error: HTTP request failed: http server responded with 404"),
        ("/array?n=0", "error: the top-level array is empty"),
        ("/sequence", "error: the records have no field that can be a column"),
    ],
)
async def test_a_body_without_records_is_a_clear_error(server, path, expected):
    server.app[STATE].sequence = [b'[{"": 1}, {}]']
    done = await invoke("infer", url(server, path))
    assert done.code == 1
    assert done.stdout == ""
    assert done.stderr.startswith(expected), done.stderr
    assert "Traceback" not in done.stderr


async def test_bad_options_get_the_tables_wording(server):
    bad_url = await invoke("infer", "ftp://example.com/x")
    assert bad_url.code == 1
    assert "invalid endpoint 'ftp://example.com/x': the scheme must be http or https" in (
        bad_url.stderr
    )
    missing = await invoke("infer", url(server, "/array"), "-H", "X-Key: {{ INFER_NOT_SET }}")
    assert missing.code == 1 and "INFER_NOT_SET" in missing.stderr
    assert server.app[STATE].count("/array") == 0  # nothing was sent


def test_httpbin_json_is_one_record_with_nested_structs(httpbin, tmp_path):
    done = CliRunner().invoke(main, ["infer", httpbin.url + "/json"])
    assert done.exit_code == 0, done.output
    assert "-- inferred by arroyo-lite from 1 record of one response" in done.stdout
    assert "records.path" not in done.stdout and "the records are" not in done.stdout
    assert (
        "    slideshow STRUCT<author TEXT, date TEXT, slides STRUCT<title TEXT, type TEXT, "
        "items TEXT[]>[], title TEXT>" in done.stdout
    )
    path = tmp_path / "slides.sql"
    path.write_text(done.stdout)
    validate(path)


# --- the pieces, on bodies given directly ---------------------------------------------------


@pytest.mark.parametrize(
    ("body", "framing", "path", "count"),
    [
        (b'{"a": 1}', None, (), 1),
        (b'[{"a": 1}, {"a": 2}, 3]', None, (), 2),
        (b'{"a": 1}\n{"a": 2}\n', "newline", (), 2),
        (b'{"data": {"items": [{"a": 1}]}, "ok": true}', None, ("data", "items"), 1),
        (b'{"hits": {"total": 1, "hits": [{"a": 1}]}}', None, ("hits", "hits"), 1),
        (b'{"page": 1, "things": [{"a": 1}, {"a": 2}]}', None, ("things",), 2),
        # A record with a nested list and other nested values is a record, not a wrapper.
        (b'{"city": "x", "alerts": [{"a": 1}], "now": {"t": 1}}', None, (), 1),
    ],
)
def test_locate_records(body, framing, path, count):
    found = locate_records(body)
    assert (found.framing, found.path, found.count) == (framing, path, count)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "the response body is empty"),
        (b"42", "the response body is a single JSON int"),
        (b'{"results": []}\n', None),
        (b"# HELP x\nx 1\n", "the response body is not JSON"),
    ],
)
def test_locate_records_errors(body, message):
    if message is None:
        # An empty wrapper is not recognised as one: the envelope itself is the record.
        assert locate_records(body).path == ()
        return
    with pytest.raises(InferError, match=message):
        locate_records(body)


def test_keys_that_cannot_be_columns_are_left_out_with_a_comment():
    from arroyo_lite.infer.ddl import Source, create_table

    records = locate_records(b'[{"a": 1, "A": "x", "": 3, "_timestamp": 5}]')
    columns, key = infer_columns(records.ndjson)
    text = create_table("t", Source("http://127.0.0.1:1/x"), records, columns, key)
    # DuckDB folds `A` into `A_1` (its names are case-insensitive): only `a` can be declared.
    assert "CREATE TABLE t (\n    a BIGINT\n) WITH (" in text
    assert "-- field 'A_1' left out: no record has that key" in text
    assert "-- field '_timestamp' left out: that column name is reserved" in text
    assert "-- a field with an empty key is left out" in text


def test_types_come_from_duckdb_and_fall_back_to_json():
    ndjson = b"\n".join(
        [
            b'{"n": 1, "x": 1, "when": "2026-01-02", "mixed": 1, "nothing": null, "o": {}}',
            b'{"n": 2, "x": 2.5, "when": "2026-01-03", "mixed": "a", "nothing": null, "o": {}}',
        ]
    )
    columns, key = infer_columns(ndjson)
    kinds = {c.name: (c.sql_type, c.note) for c in columns}
    assert kinds["n"] == ("BIGINT", None)
    assert kinds["x"] == ("DOUBLE", None)
    assert kinds["when"][0] == "TEXT" and "DATE" in (kinds["when"][1] or "")
    assert kinds["mixed"] == ("JSON", None)
    assert kinds["nothing"][0] == "JSON" and "always null" in (kinds["nothing"][1] or "")
    assert kinds["o"] == ("JSON", None)
    assert key is None  # `n` is not an id-like name


@pytest.mark.parametrize(
    ("name", "quoted"),
    [
        ("id", "id"),
        ("type", "type"),
        ("userId", '"userId"'),
        ("select", '"select"'),
        ("order", '"order"'),
        ('a"b', '"a""b"'),
        ("a b", '"a b"'),
    ],
)
def test_quote_identifier(name, quoted):
    assert quote_identifier(name) == quoted


@pytest.mark.parametrize(
    ("endpoint", "name"),
    [
        ("https://api.example.com/v2/Orders.json?page=1", "orders"),
        ("http://127.0.0.1:8765/prices", "prices"),
        ("http://h/api/v1/", "api"),
        ("http://h/", "source"),
        ("http://h/2024-stats", "t_2024_stats"),
    ],
)
def test_table_name(endpoint, name):
    assert table_name(endpoint) == name


def test_infer_help_lists_its_options():
    result = CliRunner().invoke(main, ["infer", "--help"])
    assert result.exit_code == 0
    for word in ("--header", "--method", "--body", "--name", "--timeout", "STRUCT", "PRIMARY"):
        assert word in result.output


async def test_method_and_body_are_sent_and_kept_in_the_table(server, tmp_path):
    body = '{"q": "it\'s"}'
    done = await invoke("infer", url(server, "/echo"), "--method", "POST", "--body", body)
    assert done.code == 0, done.stderr
    seen = server.app[STATE].requests[-1]
    assert (seen.method, seen.body) == ("POST", body.encode())
    assert "    method = 'POST'," in done.stdout
    assert "    body = '{\"q\": \"it''s\"}'," in done.stdout
    assert "CREATE TABLE echo (" in done.stdout
    path = tmp_path / "echo.sql"
    path.write_text(done.stdout)
    validate(path)


@pytest.mark.parametrize(
    "keys", [("results",), ("data", "items"), ("odd key",), ("it's", "a\\b"), ("ünï", "x.y")]
)
def test_the_record_path_reads_back_as_its_keys(keys):
    from arroyo_lite.formats.records import RecordPath
    from arroyo_lite.infer.ddl import record_path_text

    assert RecordPath.parse(record_path_text(keys)).keys == keys
