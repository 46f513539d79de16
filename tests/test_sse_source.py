"""The sse source against a real aiohttp event-stream server on 127.0.0.1.

Covers Arroyo's behaviour (events filter, Last-Event-ID as state, every format) and ours
(reconnects with backoff, ``retry:``, 204, bounded memory under a slow consumer).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from arroyo_lite import Session
from arroyo_lite.clock import ManualClock
from arroyo_lite.connectors.sse.operator import STATE_KEY
from arroyo_lite.connectors.streaming.batcher import MAX_BYTES
from arroyo_lite.errors import FatalSourceError
from tests.support.http_app import url, wait_until
from tests.support.stream_app import STREAM_STATE, make_stream_app
from tests.support.stream_source import RunningStream, SlowConsumer, source_table
from tests.support.threaded_server import serve, wait_for


@pytest.fixture
async def stream_server(aiohttp_server: Any) -> Any:
    return await aiohttp_server(make_stream_app())


def sse_sql(endpoint: str, *, columns: str = "n BIGINT", fmt: str = "json", extra: str = "") -> str:
    return (
        f"CREATE TABLE t ({columns}) WITH (connector = 'sse', format = '{fmt}', "
        f"endpoint = '{endpoint}'{extra});"
    )


async def test_events_become_rows(stream_server: Any) -> None:
    config = source_table(sse_sql(url(stream_server, "/sse?n=5")))
    async with RunningStream(config) as src:
        await wait_until(lambda: len(src.rows()) == 5, what="5 rows")
        assert src.column("n") == [0, 1, 2, 3, 4]
        assert src.status.extra["last_event_id"] == "4"
        assert src.status.extra["connected"] is True
        assert src.status.polls == 1
    headers = stream_server.app[STREAM_STATE].requests[0][1]
    assert headers["Accept"] == "text/event-stream"
    assert "Last-Event-ID" not in headers


async def test_events_filter_keeps_named_types(stream_server: Any) -> None:
    config = source_table(
        sse_sql(
            url(stream_server, "/sse?n=6&types=update,delete,status"),
            extra=", events = 'update,status'",
        )
    )
    async with RunningStream(config) as src:
        await wait_until(lambda: src.status.extra["events"] == 6, what="6 events")
        await wait_until(lambda: len(src.rows()) == 4, what="4 rows")
        assert src.column("n") == [0, 2, 3, 5]
        assert src.status.extra["skipped_events"] == 2
        # The id of a skipped event still counts (the WHATWG last event ID).
        assert src.status.extra["last_event_id"] == "5"


@pytest.mark.parametrize(
    ("columns", "fmt", "expected"),
    [
        ("value TEXT", "raw_string", ['{"n": 0}', '{"n": 1}']),
        ("value BYTEA", "raw_bytes", [b'{"n": 0}', b'{"n": 1}']),
        ("value JSON", "json', 'json.unstructured' = 'true", ['{"n": 0}', '{"n": 1}']),
        ("n INT", "json", [0, 1]),
    ],
)
async def test_every_format(
    stream_server: Any, columns: str, fmt: str, expected: list[Any]
) -> None:
    config = source_table(sse_sql(url(stream_server, "/sse?n=2"), columns=columns, fmt=fmt))
    async with RunningStream(config) as src:
        name = columns.split()[0]
        await wait_until(lambda: len(src.rows()) == 2, what="2 rows")
        assert src.column(name) == expected


async def test_multiline_data_and_framing(stream_server: Any) -> None:
    state = stream_server.app[STREAM_STATE]
    state.raw_body = (
        b'data: {"n":\ndata: 1}\n\n'  # one JSON value over two data lines
        b'data: {"n": 2}\n\n'
        b'data: [{"n": 3}, {"n": 4}]\n\n'
    )
    config = source_table(sse_sql(url(stream_server, "/sse/raw")))
    async with RunningStream(config) as src:
        await wait_until(lambda: len(src.rows()) == 4, what="4 rows")
        assert src.column("n") == [1, 2, 3, 4]
    # With framing, each line of an event's data is a message.
    state.raw_body = b"data: a\ndata: b\n\ndata: c\n\n"
    config = source_table(
        sse_sql(
            url(stream_server, "/sse/raw"),
            columns="value TEXT",
            fmt="raw_string",
            extra=", framing = 'newline'",
        )  # fmt: skip
    )
    async with RunningStream(config) as src:
        await wait_until(lambda: len(src.rows()) == 3, what="3 rows")
        assert src.column("value") == ["a", "b", "c"]


async def test_last_event_id_is_state_and_resumes(stream_server: Any) -> None:
    config = source_table(sse_sql(url(stream_server, "/sse?n=3")))
    state: dict[str, bytes] = {}
    async with RunningStream(config, state=state) as src:
        await wait_until(lambda: len(src.rows()) == 3, what="3 rows")
        await wait_until(lambda: state.get(STATE_KEY) == b"2", what="state to be committed")
    # A new source with the saved state (what --state-dir restores) resumes after event 2.
    async with RunningStream(config, state=state) as src:
        await wait_until(lambda: len(src.rows()) == 3, what="3 more rows")
        assert src.column("n") == [3, 4, 5]
    assert stream_server.app[STREAM_STATE].requests[1][1]["Last-Event-ID"] == "2"


async def test_server_closing_after_each_event(stream_server: Any) -> None:
    # /sse/one sends 'retry: 1' (ms) and closes after one event: every reconnect resumes.
    config = source_table(sse_sql(url(stream_server, "/sse/one")))
    async with RunningStream(config) as src:
        await wait_until(lambda: len(src.rows()) >= 6, what="6 rows")
        assert src.column("n")[:6] == [0, 1, 2, 3, 4, 5]
        assert src.status.failures == 0  # clean ends after an event are not failures
        assert src.status.extra["reconnects"] >= 5
    sent = [h.get("Last-Event-ID") for _, h in stream_server.app[STREAM_STATE].requests[:4]]
    assert sent == [None, "0", "1", "2"]


async def test_dropped_connection_reconnects_with_last_event_id(stream_server: Any) -> None:
    config = source_table(
        sse_sql(url(stream_server, "/sse/drop?after=2"), extra=", reconnect_delay_ms = 1")
    )
    async with RunningStream(config) as src:
        await wait_until(lambda: len(src.rows()) >= 6, what="6 rows")
        # The half-sent event (id 999) was never dispatched: no gap, no duplicate.
        assert src.column("n")[:6] == [0, 1, 2, 3, 4, 5]
        assert 999 not in src.column("n")
    sent = [h.get("Last-Event-ID") for _, h in stream_server.app[STREAM_STATE].requests[:3]]
    assert sent == [None, "1", "3"]


async def test_failed_attempts_back_off_exponentially_and_honour_retry_after(
    stream_server: Any,
) -> None:
    clock = ManualClock()
    config = source_table(
        sse_sql(url(stream_server, "/sse/status/500"), extra=", max_backoff_ms = 8000")
    )
    async with RunningStream(config, clock=clock) as src:
        assert await src.backoff_delays(5) == [1.0, 2.0, 4.0, 8.0, 8.0]
        assert src.status.failures >= 5
        assert src.status.last_status_code == 500
        assert "responded with 500" in src.status.last_error
        assert src.status.state.value == "backoff"
    config = source_table(sse_sql(url(stream_server, "/sse/status/503?retry_after=30")))
    async with RunningStream(config, clock=ManualClock()) as src:
        await wait_until(lambda: src.status.next_poll_at_ns is not None, what="a backoff")
        assert src.pending_delay() == 30.0


async def test_recovers_after_failures(stream_server: Any) -> None:
    config = source_table(
        sse_sql(url(stream_server, "/sse/fail?times=2"), extra=", reconnect_delay_ms = 1")
    )
    async with RunningStream(config) as src:
        await wait_until(lambda: len(src.rows()) == 3, what="3 rows")
        assert src.status.failures == 2
        assert src.status.consecutive_failures == 0
        assert src.status.state.value == "running"


async def test_retry_field_sets_the_reconnect_delay(stream_server: Any) -> None:
    clock = ManualClock()
    config = source_table(sse_sql(url(stream_server, "/sse?n=1&close=1&retry=7000")))
    async with RunningStream(config, clock=clock) as src:
        await wait_until(lambda: src.status.next_poll_at_ns is not None, what="a reconnect wait")
        assert src.pending_delay() == 7.0


async def test_refused_connection_is_a_failure_not_a_crash() -> None:
    config = source_table(sse_sql("http://127.0.0.1:9/none"))
    async with RunningStream(config, clock=ManualClock()) as src:
        await wait_until(lambda: src.status.failures == 1, what="a failure")
        assert "error connecting to SSE server 'http://127.0.0.1:9/none'" in src.status.last_error
        assert not src.task.done()


async def test_204_stops_the_source(stream_server: Any) -> None:
    config = source_table(sse_sql(url(stream_server, "/sse/status/204")))
    async with RunningStream(config) as src:
        await asyncio.wait_for(src.task, 20)
        assert src.status.state.value == "finished"


async def test_bad_data_fail_stops_and_drop_counts(stream_server: Any) -> None:
    state = stream_server.app[STREAM_STATE]
    state.raw_body = b'data: {"n": 1}\n\ndata: oops\n\ndata: {"n": 3}\n\n'
    config = source_table(sse_sql(url(stream_server, "/sse/raw")))
    async with RunningStream(config) as src:
        error = await asyncio.wait_for(src.task, 20)
        assert isinstance(error, FatalSourceError) and "invalid JSON" in error.message
        assert src.status.state.value == "failed"
    config = source_table(sse_sql(url(stream_server, "/sse/raw"), extra=", bad_data = 'drop'"))
    async with RunningStream(config) as src:
        await wait_until(lambda: len(src.rows()) == 2, what="2 good rows")
        assert src.column("n") == [1, 3]
        assert src.status.dropped_rows == 1


async def test_header_secrets_are_sent_and_never_shown(stream_server: Any) -> None:
    config = source_table(
        sse_sql(
            url(stream_server, "/sse/status/401"),
            extra=", headers = 'Authorization: Bearer {{ TOKEN }}'",
        ),
        env={"TOKEN": "s3cr3t"},
    )
    async with RunningStream(config, env={"TOKEN": "s3cr3t"}, clock=ManualClock()) as src:
        await wait_until(lambda: src.status.failures == 1, what="a failure")
        assert "s3cr3t" not in repr(src.status)
    assert stream_server.app[STREAM_STATE].requests[0][1]["Authorization"] == "Bearer s3cr3t"


async def test_slow_consumer_is_backpressured_with_bounded_memory(stream_server: Any) -> None:
    """A consumer much slower than the server: the server is held back by TCP, the source
    never buffers more than its two batches, and no event is lost."""
    events = 40_000  # ~42 MB of events
    config = source_table(
        # raw_string: the test is about flow control, not JSON decoding speed.
        sse_sql(
            url(stream_server, f"/sse/flood?events={events}"),
            columns="value TEXT",
            fmt="raw_string",
        )  # fmt: skip
    )
    state = stream_server.app[STREAM_STATE]
    slow = SlowConsumer(lambda: state.flood_sent, row_bytes=1030)
    async with RunningStream(config, on_batch=slow) as src:
        await wait_until(lambda: slow.received == events, within=120, what="every event")
        assert [json.loads(v)["n"] for v in src.column("value")] == list(range(events))
        assert src.status.extra["max_buffered_bytes"] <= 2 * MAX_BYTES + 1024 * 1024
    # Kernel socket buffers (~8 MB on loopback) + aiohttp's read buffer + two batches.
    assert slow.ahead < 16 * 1024 * 1024


def test_debezium_json_events_make_an_updating_table() -> None:
    """The format Arroyo's sse source takes that the others here do not exercise: each
    event a Debezium envelope, applied to the table's current rows (``c``, ``u``, ``d``)."""
    app = make_stream_app()
    changes = [
        {"before": None, "after": {"id": 1, "v": "a"}, "op": "c"},
        {"before": None, "after": {"id": 2, "v": "b"}, "op": "c"},
        {"before": {"id": 1, "v": "a"}, "after": {"id": 1, "v": "a2"}, "op": "u"},
        {"before": {"id": 2, "v": "b"}, "after": None, "op": "d"},
        {"before": None, "after": {"id": 3, "v": "c"}, "op": "c"},
    ]
    # (retry: one hour, so the stream is not read again after it ends)
    app[STREAM_STATE].raw_body = b"retry: 3600000\n\n" + b"".join(
        b"id: %d\ndata: %s\n\n" % (i, json.dumps(change).encode())
        for i, change in enumerate(changes)
    )
    with serve(app) as server, Session(env={}) as session:
        session.execute(
            "CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT) WITH (connector = 'sse', "
            f"format = 'debezium_json', endpoint = '{server.url('/sse/raw')}');"
        )

        def current() -> list[tuple[int, str]]:
            rows = session.query("SELECT id, v FROM t ORDER BY id").to_pylist()
            return [(row["id"], row["v"]) for row in rows]

        wait_for(lambda: current() == [(1, "a2"), (3, "c")])
        status = {s.table: s for s in session.status()}["t"]
    assert status.extra["last_event_id"] == "4" and status.failures == 0
