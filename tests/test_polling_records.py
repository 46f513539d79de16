"""Records from real APIs: ``records.path``, ``emit_behavior = 'dedup'``, metadata columns and
``changed.compare = 'rows'``, against local servers that behave like those APIs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from arroyo_lite.config import TableConfig
from arroyo_lite.connectors.polling_http import keys
from arroyo_lite.errors import ValidationErrors
from arroyo_lite.sql import compile_sql
from tests.support.feeds import FeedState, make_feed_app, quakes
from tests.support.polling import RunningSource

pytestmark = pytest.mark.timeout(60)

QUAKE_COLUMNS = """
  id TEXT PRIMARY KEY,
  properties STRUCT<mag DOUBLE, place TEXT, time BIGINT>,
  geometry STRUCT<coordinates DOUBLE[]>
"""


@pytest.fixture
async def feed(aiohttp_server: Any) -> Any:
    state = FeedState(quakes=quakes(40), window=(0, 10))
    server = await aiohttp_server(make_feed_app(state))
    server.state = state
    return server


def table(feed: Any, path: str, options: str, columns: str = QUAKE_COLUMNS) -> TableConfig:
    sql = f"""
    CREATE TABLE t ({columns}) WITH (
      connector = 'polling_http', endpoint = '{feed.make_url(path)}', format = 'json',
      poll_interval_ms = 1000{options}
    );
    """
    [config] = compile_sql(sql, env={}).tables
    return config


def errors_of(sql: str) -> list[Any]:
    with pytest.raises(ValidationErrors) as info:
        compile_sql(sql, env={})
    return list(info.value.errors)


# -- records.path ---------------------------------------------------------------------------


async def test_features_path_gives_one_row_per_feature(feed: Any) -> None:
    config = table(feed, "/usgs", ", 'records.path' = '$.features[*]'")
    async with RunningSource(config) as src:
        await src.sleeping_after(1)
    rows = src.rows()
    assert [r["id"] for r in rows] == [f"ci{40000000 + i}" for i in reversed(range(10))]
    assert rows[0]["properties"] == {"mag": 1.9, "place": "10 km NE of Ridgecrest, CA",
                                     "time": 1_700_000_009_000}  # fmt: skip
    assert rows[0]["geometry"] == {"coordinates": [-117.6, 35.7, 7.2]}


@pytest.mark.parametrize("path", ["$.data", "$.data[*]", "$[''data'']", "data"])
async def test_path_spellings_select_the_same_records(feed: Any, path: str) -> None:
    columns = "id BIGINT, name TEXT, tags STRUCT<k INT>"
    config = table(feed, "/wrapped?n=3", f", 'records.path' = '{path}'", columns)
    async with RunningSource(config) as src:
        await src.sleeping_after(1)
    assert src.rows() == [{"id": i, "name": f"item-{i}", "tags": {"k": i % 3}} for i in range(3)]


async def test_a_big_wrapped_body_is_read_natively(feed: Any) -> None:
    columns = "id BIGINT, name TEXT, tags STRUCT<k INT>"
    config = table(feed, "/wrapped?n=20000", ", 'records.path' = '$.data'", columns)
    async with RunningSource(config) as src:
        await src.sleeping_after(1)
    assert src.status.rows == 20_000
    assert src.rows()[-1] == {"id": 19_999, "name": "item-19999", "tags": {"k": 19_999 % 3}}
    decoder: Any = src.operator._decoder
    assert (decoder.fast_bodies, decoder.slow_bodies) == (1, 0)  # no Python per record


@pytest.mark.parametrize(
    "body",
    [b'{"other": []}', b'{"data": null}', b'{"data": []}', b"[]", b'{"data": {"x": 1}}'.replace(
        b'"x": 1', b'"name": "solo"'
    )],
)
async def test_a_path_selecting_nothing_is_an_empty_poll(feed: Any, body: bytes) -> None:
    feed.state.body = body + b" " * 2000  # also past the small-body threshold: the native read
    config = table(feed, "/wrapped", ", 'records.path' = '$.data'", "id BIGINT, name TEXT")
    async with RunningSource(config) as src:
        await src.sleeping_after(1)
    expected = [{"id": None, "name": "solo"}] if b"solo" in body else []
    assert src.rows() == expected
    assert src.status.failures == 0 and src.status.last_error is None


async def test_a_path_selecting_a_scalar_is_bad_data(feed: Any) -> None:
    feed.state.body = b'{"data": "maintenance"}'
    config = table(feed, "/wrapped", ", 'records.path' = '$.data', bad_data = 'drop'",
                   "id BIGINT, name TEXT")  # fmt: skip
    async with RunningSource(config) as src:
        await src.sleeping_after(1)
    assert src.rows() == []
    assert src.status.dropped_rows == 1
    assert "records.path '$.data' selects a string" in (src.status.last_error or "")
    config = table(feed, "/wrapped", ", 'records.path' = '$.data'", "id BIGINT, name TEXT")
    async with RunningSource(config) as src:
        assert src.task is not None
        failure = await src.task
    assert failure is not None and "selects a string, not an array or an object" in str(failure)
    assert src.status.state == "failed"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("'records.path' = '$.a[*].b'", "[*] is only allowed at the end"),
        ("'records.path' = '$..a'", "cannot read the path '$..a' at '..a'"),
        ("'records.path' = '$.data', format = 'raw_string'", "needs format = 'json'"),
        ("'records.path' = '$.data', framing = 'newline'", "remove 'framing'"),
        ("emit_behavior = 'dedup'", "emit_behavior = 'dedup' needs a PRIMARY KEY column"),
        ("'changed.compare' = 'rows'", "'changed.compare' applies only with emit_behavior"),
        ("'dedup.max_keys' = 0", "dedup.max_keys"),
    ],
)
def test_bad_record_options_are_validation_errors(options: str, message: str) -> None:
    fmt = "" if "format" in options else ", format = 'json'"
    sql = (
        "CREATE TABLE t (id BIGINT) WITH (\n  connector = 'polling_http',\n"
        f"  endpoint = 'http://127.0.0.1:1/x'{fmt},\n  {options}\n);"
    )
    errors = errors_of(sql)
    assert any(message in e.message for e in errors), [e.message for e in errors]
    assert all(e.position is not None and e.position.line >= 1 for e in errors)


# -- dedup ----------------------------------------------------------------------------------


async def test_usgs_feed_yields_each_quake_once_then_once_per_revision(feed: Any) -> None:
    config = table(feed, "/usgs", ", 'records.path' = '$.features', emit_behavior = 'dedup'")
    state = feed.state
    async with RunningSource(config) as src:
        await src.sleeping_after(1)
        for poll, window in enumerate([(5, 15), (10, 20), (10, 20)], start=2):
            state.window = window
            await src.manual.advance(1.0)
            await src.sleeping_after(poll)
        state.revise("ci40000012", 4.4)
        await src.manual.advance(1.0)
        await src.sleeping_after(5)
    ids = [r["id"] for r in src.rows()]
    assert sorted(ids[:20]) == [f"ci{40000000 + i}" for i in range(20)]
    assert len(set(ids[:20])) == 20, "each quake once across overlapping windows"
    assert ids[20:] == ["ci40000012"], "and once more for its revised magnitude"
    assert src.rows()[-1]["properties"]["mag"] == 4.4
    status = src.status
    assert status.rows == 21
    assert status.deduplicated_rows == (10 + 10 + 10 + 10 + 10) - 21
    assert status.state_keys == 20 and status.state_bytes == 20 * 24
    assert keys.STATE_KEY in src.state


async def test_a_key_repeated_within_one_body_is_emitted_once(feed: Any) -> None:
    # Records shifting between pages show the same record twice in one poll.
    records = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}, {"id": 1, "name": "a"},
               {"id": 2, "name": "b2"}]  # fmt: skip
    feed.state.body = json.dumps({"data": records}).encode()
    config = table(feed, "/wrapped", ", 'records.path' = '$.data', emit_behavior = 'dedup'",
                   "id BIGINT PRIMARY KEY, name TEXT")  # fmt: skip
    async with RunningSource(config) as src:
        await src.sleeping_after(1)
    assert src.rows() == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"},
                          {"id": 2, "name": "b2"}]  # fmt: skip


async def test_key_state_resumes_from_saved_state(feed: Any) -> None:
    config = table(feed, "/usgs", ", 'records.path' = '$.features', emit_behavior = 'dedup'")
    async with RunningSource(config) as first:
        await first.sleeping_after(1)
    feed.state.window = (5, 15)
    async with RunningSource(config, state=dict(first.state)) as second:
        await second.sleeping_after(1)
    assert [r["id"] for r in second.rows()] == [f"ci{40000000 + i}" for i in range(14, 9, -1)]


async def test_max_keys_forgets_the_least_recently_seen(feed: Any) -> None:
    config = table(feed, "/usgs", ", 'records.path' = '$.features', emit_behavior = 'dedup', "
                   "'dedup.max_keys' = 10")  # fmt: skip
    state = feed.state
    async with RunningSource(config) as src:
        await src.sleeping_after(1)
        state.window = (10, 20)  # ten new keys push the first ten out
        await src.manual.advance(1.0)
        await src.sleeping_after(2)
        state.window = (0, 10)  # forgotten: emitted again
        await src.manual.advance(1.0)
        await src.sleeping_after(3)
    assert src.status.rows == 30 and src.status.state_keys == 10


async def test_dedup_ignores_metadata_columns_in_the_content(feed: Any) -> None:
    columns = QUAKE_COLUMNS + ", poll BIGINT METADATA FROM 'poll'"
    config = table(feed, "/usgs", ", 'records.path' = '$.features', emit_behavior = 'dedup'",
                   columns)  # fmt: skip
    async with RunningSource(config) as src:
        await src.run_polls(2)
    assert src.status.rows == 10 and src.status.deduplicated_rows == 10


# -- metadata columns -----------------------------------------------------------------------


async def test_http_metadata_columns(feed: Any) -> None:
    feed.state.headers = {"X-Request-Id": "req-7", "ETag": '"v1"'}
    columns = """id BIGINT, name TEXT,
      code INT METADATA FROM 'status', url TEXT METADATA FROM 'url',
      rid TEXT METADATA FROM 'header.x-request-id', missing TEXT METADATA FROM 'header.nope',
      hdrs JSON METADATA FROM 'headers', latency DOUBLE METADATA FROM 'latency_ms',
      poll BIGINT METADATA FROM 'poll', page INT METADATA FROM 'page'"""
    config = table(feed, "/wrapped?n=2", ", 'records.path' = '$.data'", columns)
    async with RunningSource(config) as src:
        await src.run_polls(2)
    rows = src.rows()
    assert [(r["id"], r["poll"], r["page"]) for r in rows] == [(0, 1, 1), (1, 1, 1), (0, 2, 1),
                                                               (1, 2, 1)]  # fmt: skip
    first = rows[0]
    assert first["code"] == 200
    assert first["url"] == str(feed.make_url("/wrapped?n=2"))
    assert first["rid"] == "req-7" and first["missing"] is None
    headers = {k.lower(): v for k, v in json.loads(first["hdrs"]).items()}
    assert headers["etag"] == '"v1"'
    assert first["latency"] > 0


@pytest.mark.parametrize(
    ("column", "message"),
    [
        ("code TEXT METADATA FROM 'status'",
         "incorrect data type for metadata field 'status'; expected INT, but found TEXT"),
        ("p INT METADATA FROM 'poll'",
         "incorrect data type for metadata field 'poll'; expected BIGINT, but found INT"),
        ("x TEXT METADATA FROM 'header.'", "unknown metadata field 'header.'"),
        ("x TEXT METADATA FROM 'status_code'", "unknown metadata field 'status_code'"),
    ],
)  # fmt: skip
def test_metadata_fields_are_checked(column: str, message: str) -> None:
    sql = (f"CREATE TABLE t (id BIGINT, {column}) WITH (connector = 'polling_http', "
           "endpoint = 'http://127.0.0.1:1/x', format = 'json');")  # fmt: skip
    errors = errors_of(sql)
    assert len(errors) == 1 and errors[0].message.startswith(message), errors
    assert errors[0].position is not None and errors[0].position.line == 1


def test_integer_is_int_for_a_metadata_type() -> None:
    sql = ("CREATE TABLE t (id BIGINT, code INTEGER METADATA FROM 'status') WITH ("
           "connector = 'polling_http', endpoint = 'http://127.0.0.1:1/x', format = 'json');")
    [config] = compile_sql(sql, env={}).tables
    assert config.metadata_columns[0].metadata_key == "status"


# -- 'changed.compare' = 'rows' ---------------------------------------------------------------


async def test_rows_comparison_ignores_undeclared_fields(feed: Any) -> None:
    # The USGS body changes on every poll (metadata.generated); the declared rows do not.
    for compare, emitted in (("body", 20), ("rows", 10)):
        config = table(feed, "/usgs", ", 'records.path' = '$.features', emit_behavior = "
                       f"'changed', 'changed.compare' = '{compare}'")  # fmt: skip
        async with RunningSource(config) as src:
            await src.run_polls(2)
        assert src.status.rows == emitted, compare
        assert src.status.unchanged_polls == (1 if compare == "rows" else 0)
