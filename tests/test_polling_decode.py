"""The polling source with structured JSON and bad data, tables compiled from real SQL."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from arroyo_lite.clock import ManualClock
from arroyo_lite.config import TableConfig
from arroyo_lite.connectors.base import SourceState
from arroyo_lite.connectors.polling_http.operator import PollingHttpOperator
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.formats import make_decoder
from arroyo_lite.sql import compile_sql
from tests.support.http_app import STATE, wait_until
from tests.support.polling import RunningSource

pytestmark = pytest.mark.timeout(60)



def table(server: Any, path: str, *, name: str = "t", extra: str = "") -> TableConfig:
    sql = f"""
    CREATE TABLE {name} (id BIGINT, name TEXT) WITH (
      connector = 'polling_http',
      endpoint = '{server.make_url(path)}',
      format = 'json'{extra}
    );
    """
    [config] = compile_sql(sql, env={}).tables
    return config


async def test_top_level_array_becomes_rows(server: Any) -> None:
    async with RunningSource(table(server, "/array?n=4")) as src:
        await src.sleeping_after(1)
    assert src.rows() == [{"id": i, "name": f"item-{i}"} for i in range(4)]
    assert src.status.rows == 4
    assert len(set(src.timestamps())) == 1, "all rows of one poll share the arrival time"


async def test_gzip_json_decodes(server: Any) -> None:
    async with RunningSource(table(server, "/gzip?n=2")) as src:
        await src.sleeping_after(1)
    assert [r["id"] for r in src.rows()] == [0, 1]


async def test_big_body_is_decoded_off_the_loop_correctly(server: Any) -> None:
    # ~50,000 objects: well over the 256 KiB inline threshold.
    async with RunningSource(table(server, "/array?n=50000")) as src:
        await src.sleeping_after(1)
    assert src.status.rows == 50_000
    assert src.rows()[-1] == {"id": 49_999, "name": "item-49999"}


async def test_bad_data_fail_stops_only_this_table(server: Any) -> None:
    clock = ManualClock()
    bad = table(server, "/invalid", name="bad")
    good = table(server, "/array?n=1", name="good")
    async with (
        RunningSource(bad, clock=clock) as failing,
        RunningSource(good, clock=clock) as healthy,
    ):
        await wait_until(lambda: failing.task is not None and failing.task.done())
        assert failing.task is not None
        error = failing.task.result()
        assert isinstance(error, FatalSourceError)
        assert failing.status.state is SourceState.FAILED
        assert failing.status.last_error == error.message
        # The other table (sharing the HTTP session) keeps polling.
        await healthy.sleeping_after(1)
        await clock.advance(1.0)
        await healthy.sleeping_after(2)
        assert healthy.status.rows == 2
        assert healthy.status.state is SourceState.RUNNING


async def test_bad_data_drop_keeps_good_rows_and_polling(server: Any) -> None:
    config = table(server, "/mixed", extra=",\n framing = 'newline',\n bad_data = 'drop'")
    async with RunningSource(config) as src:
        await src.run_polls(2)
        assert src.status.state is SourceState.RUNNING
    assert src.rows() == [{"id": 1, "name": "a"}, {"id": 3, "name": None}] * 2
    assert src.status.dropped_rows == 2
    assert src.status.last_error is not None and "dropped 1 bad record(s)" in src.status.last_error
    assert src.status.failures == 0


async def test_invalid_json_with_drop_is_counted(server: Any) -> None:
    async with RunningSource(table(server, "/invalid", extra=",\n bad_data = 'drop'")) as src:
        await src.sleeping_after(1)
    assert src.rows() == []
    assert src.status.dropped_rows == 1


async def test_wrongly_typed_body_with_fail(server: Any) -> None:
    async with RunningSource(table(server, "/wrong-types")) as src:
        await wait_until(lambda: src.task is not None and src.task.done())
        assert src.task is not None
        assert isinstance(src.task.result(), FatalSourceError)
    assert server.app[STATE].count("/wrong-types") == 1


async def test_decode_errors_are_masked(server: Any) -> None:
    # /echo reflects the request headers into the body; a decode error must not leak them.
    secret = "echo-secret-value"
    sql = f"""
    CREATE TABLE t (headers INT) WITH (
      connector = 'polling_http',
      endpoint = '{server.make_url("/echo")}',
      headers = 'X-Key: {{{{ KEY }}}}',
      format = 'json'
    );
    """
    [config] = compile_sql(sql, env={"KEY": secret}).tables
    async with RunningSource(config, env={"KEY": secret}) as src:
        await wait_until(lambda: src.task is not None and src.task.done())
    assert src.status.state is SourceState.FAILED
    assert secret not in (src.status.last_error or "")


async def test_changed_with_big_bodies_hashes_off_the_loop(server: Any) -> None:
    config = table(server, "/array?n=30000", extra=",\n emit_behavior = 'changed'")
    async with RunningSource(config) as src:
        await src.run_polls(2)
    assert src.status.rows == 30_000
    assert src.status.unchanged_polls == 1
    assert src.status.bytes > 256 * 1024 * 2


async def test_dropped_records_warn_once_per_streak(
    server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="arroyo_lite.polling_http")
    config = table(server, "/mixed", extra=",\n framing = 'newline',\n bad_data = 'drop'")
    async with RunningSource(config) as src:
        for poll in (1, 2):
            await src.sleeping_after(poll)
            await src.manual.advance(1.0)
        await src.sleeping_after(3)
    levels = [r.levelno for r in caplog.records if r.name == "arroyo_lite.polling_http"]
    assert levels == [logging.WARNING, logging.DEBUG, logging.DEBUG]


class ThreadRecording(PollingHttpOperator):
    """The real operator; it notes which thread each body is decoded on."""

    threads: list[int]

    def _work(self, *args: Any) -> Any:
        self.threads = [*getattr(self, "threads", []), threading.get_ident()]
        return super()._work(*args)


@pytest.mark.parametrize(
    ("columns", "fmt", "queries"),
    [
        ("id BIGINT, name TEXT", "json", False),
        ("value TEXT", "raw_string", False),
        ("id BIGINT, doubled BIGINT GENERATED ALWAYS AS (id * 2)", "json", True),
        ("id BIGINT, payload JSON", "json", True),
        ("value TEXT, n INT GENERATED ALWAYS AS (length(value))", "raw_string", True),
    ],
)
async def test_decoders_running_duckdb_stay_off_the_loop(
    server: Any, columns: str, fmt: str, queries: bool
) -> None:
    # Virtual columns and JSON column text run DuckDB queries, which block: even for a small
    # body they must run on a worker thread. Other small bodies are decoded inline.
    sql = f"""
    CREATE TABLE t ({columns}) WITH (
      connector = 'polling_http', endpoint = '{server.make_url("/array?n=3")}', format = '{fmt}'
    );
    """
    [config] = compile_sql(sql, env={}).tables
    assert make_decoder(config).runs_queries is queries
    async with RunningSource(config, operator_class=ThreadRecording) as src:
        await src.sleeping_after(1)
    assert src.status.rows >= 1
    loop_thread = threading.get_ident()
    assert isinstance(src.operator, ThreadRecording)
    assert (src.operator.threads[0] != loop_thread) is queries
