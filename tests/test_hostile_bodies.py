"""Hostile response bodies never kill a source (issue 8, item 2).

Any body, whatever its bytes, is rows, or bad data handled by ``bad_data``: under ``drop`` the
table keeps running and counts the bad records; under ``fail`` it stops with a one-line
error, never a traceback. The decoders are checked directly for every format and framing,
then end to end: tables compiled from SQL poll a real server on 127.0.0.1 that serves the
attack, beside a control table that must keep receiving rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
from aiohttp import web

from arroyo_lite import Session
from arroyo_lite.clock import ManualClock
from arroyo_lite.config import BadData, TableConfig
from arroyo_lite.connectors.base import SourceState
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.formats import Decoder, DecodeResult, make_decoder
from arroyo_lite.formats.json_decoder import SMALL_BODY
from arroyo_lite.formats.result import UNDECODABLE_SUMMARY
from tests.support.format_tables import col, raw_bytes, raw_string, table
from tests.support.threaded_server import serve, wait_for

pytestmark = pytest.mark.timeout(120)

#: The attacks of the issue, and their neighbours.
HOSTILE = {
    "100 KB of [": b"[" * 100_000,
    "100 KB of {": b'{"v":' * 20_000,
    "lone surrogate": b'{"v":"\\ud800"}',
    "lone surrogate, big body": b'{"v":"\\ud800"}' + b" " * SMALL_BODY,
    "lone surrogate after a good value": b'{"v":"a"} {"v":"\\ud800"}',
    "lone surrogate in NDJSON": b'{"v":"a"}\n{"v":"\\udfff"}\n',
    "deep array after a good value": b'{"v":"a"}\n' + b"[" * 50_000,
    "invalid UTF-8": b'{"v":"\xff\xfe"}',
    "NUL bytes": b"\x00" * 5000,
}


def configs(bad_data: BadData) -> Iterator[tuple[str, TableConfig]]:
    """One table per format and framing."""
    text = col("v", pa.string())
    as_json = col("v", pa.string(), is_json=True)
    value_json = col("value", pa.string(), is_json=True, sql_type="JSON")
    yield "json", table(text, bad_data=bad_data)
    yield "json newline", table(text, newline=True, bad_data=bad_data)
    yield "json newline max_length", table(text, newline=True, max_line_length=7,
                                           bad_data=bad_data)  # fmt: skip
    yield "json JSON column", table(as_json, bad_data=bad_data)
    yield "json JSON column newline", table(as_json, newline=True, bad_data=bad_data)
    yield "json unstructured", table(value_json, unstructured=True, bad_data=bad_data)
    yield "raw_string newline", raw_string(newline=True, bad_data=bad_data)
    yield "raw_bytes", raw_bytes(bad_data=bad_data)


CASES = [
    pytest.param(config, body, id=f"{name}-{bad.value}-{attack}")
    for bad in BadData
    for name, config in configs(bad)
    for attack, body in HOSTILE.items()
]


@pytest.mark.parametrize(("config", "body"), CASES)
def test_decoder_turns_any_hostile_body_into_rows_or_bad_data(
    config: TableConfig, body: bytes
) -> None:
    decoder = make_decoder(config)
    try:
        result = decoder.decode(body, 1)
    except FatalSourceError as e:
        assert config.bad_data is BadData.FAIL
        assert "\n" not in e.message and len(e.message) <= 500
        assert UNDECODABLE_SUMMARY not in e.message and "could not be decoded (" not in e.message
        return
    assert result.rows == (result.batch.num_rows if result.batch is not None else 0)
    # The specific rule handled it, not the last-resort guard of Decoder.decode.
    assert UNDECODABLE_SUMMARY not in result.errors


def test_lone_surrogate_is_invalid_json_with_orjsons_message() -> None:
    config = table(col("v", pa.string()), newline=True, bad_data=BadData.DROP)
    result = make_decoder(config).decode(b'{"v":"a"}\n{"v":"\\ud800"}\n{"v":"b"}', 1)
    assert result.batch is not None
    assert result.batch.column("v").to_pylist() == ["a", "b"]
    assert result.dropped == 1
    assert result.errors[1] == "invalid JSON: no low surrogate in string: line 1 column 7 (char 6)"


class _Broken(Decoder):
    """A decoder (as a plugin could write one) whose body decoding has a bug."""

    def __init__(self, config: TableConfig) -> None:
        self.config = config

    def decode_body(self, body: bytes, received_at_ns: int) -> DecodeResult:
        raise IndexError(f"bug while reading {body!r}")


def test_an_unexpected_exception_is_bad_data_without_the_bodys_text() -> None:
    dropping = _Broken(raw_string(bad_data=BadData.DROP))
    result = dropping.decode(b"secret-ish body", 1)
    assert (result.rows, result.dropped) == (0, 1)
    assert result.errors == (UNDECODABLE_SUMMARY, "the body could not be decoded (IndexError)")
    with pytest.raises(FatalSourceError) as info:
        _Broken(raw_string()).decode(b"secret-ish body", 1)
    assert info.value.message == "bad data: the body could not be decoded (IndexError)"


# --- end to end: real server, tables from SQL --------------------------------------------

TABLES = {
    "j": "v TEXT) WITH (format = 'json'",
    "jn": "v TEXT) WITH (format = 'json', framing = 'newline'",
    "jj": "v JSON) WITH (format = 'json'",
    "ju": "value JSON) WITH (format = 'json', 'json.unstructured' = true",
    "rs": "value TEXT) WITH (format = 'raw_string', framing = 'newline'",
    "rb": "value BYTEA) WITH (format = 'raw_bytes'",
}


def _app(served: dict[str, bytes]) -> web.Application:
    """``/attack`` answers ``served["body"]`` (changed by the test), ``/good`` one good row."""
    app = web.Application()

    async def attack(request: web.Request) -> web.Response:
        return web.Response(body=served["body"], content_type="application/json")

    async def good(request: web.Request) -> web.Response:
        return web.Response(body=b'{"v": "ok"}\n', content_type="application/json")

    app.router.add_get("/attack", attack)
    app.router.add_get("/good", good)
    return app


def _sql(server: Any, bad_data: str) -> str:
    statements = [
        f"CREATE TABLE {name} ({columns}, connector = 'polling_http', bad_data = '{bad_data}', "
        f"endpoint = '{server.url('/attack')}');"
        for name, columns in TABLES.items()
    ]
    statements.append(
        "CREATE TABLE control (v TEXT) WITH (connector = 'polling_http', format = 'json', "
        f"endpoint = '{server.url('/good')}');"
    )
    return "\n".join(statements)


def _poll_once(session: Session, clock: ManualClock, polls: int) -> dict[str, Any]:
    """Advance the clock one interval; wait until every table finished poll ``polls``."""
    session.runtime.call(clock.advance(1.0))

    def done() -> dict[str, Any] | None:
        statuses = {s.table: s for s in session.status()}
        settled = all(
            s.polls >= polls or s.state is SourceState.FAILED for s in statuses.values()
        )
        sleeping = session.runtime.run_sync(lambda: clock.sleepers)
        live = sum(s.state is not SourceState.FAILED for s in statuses.values())
        return statuses if settled and sleeping >= live else None

    result: dict[str, Any] = wait_for(done)
    return result


@pytest.mark.parametrize("attack", ["100 KB of [", "lone surrogate", "lone surrogate in NDJSON"])
def test_drop_tables_keep_running_and_the_control_table_keeps_receiving(attack: str) -> None:
    clock = ManualClock()
    served = {"body": HOSTILE[attack]}
    with serve(_app(served)) as server, Session(clock=clock, env={}) as session:
        session.execute(_sql(server, "drop"))
        for poll in (1, 2, 3):
            statuses = _poll_once(session, clock, poll)
        for name, status in statuses.items():
            assert status.state is SourceState.RUNNING, (name, status.last_error)
        assert statuses["j"].dropped_rows >= 3
        assert "Traceback" not in str(statuses)
        served["body"] = b'{"v": "fine"}\n'
        _poll_once(session, clock, 4)
        assert session.query("SELECT count(*) FROM j").column(0)[0].as_py() >= 1
        assert session.query("SELECT count(*) FROM control").column(0)[0].as_py() >= 4


def test_fail_tables_stop_with_a_one_line_error_and_others_keep_running() -> None:
    clock = ManualClock()
    served = {"body": HOSTILE["100 KB of ["]}
    with serve(_app(served)) as server, Session(clock=clock, env={}) as session:
        session.execute(_sql(server, "fail"))
        for poll in (1, 2):
            statuses = _poll_once(session, clock, poll)
        assert statuses["j"].state is SourceState.FAILED
        assert statuses["j"].last_error.startswith("invalid JSON: depth limit exceeded")
        assert statuses["jj"].state is SourceState.FAILED
        for name in ("ju", "rs", "rb", "control"):  # no parsing: the bytes are the rows
            assert statuses[name].state is SourceState.RUNNING, name
        assert all("\n" not in (s.last_error or "") for s in statuses.values())
        control = session.query("SELECT count(*) FROM control").column(0)[0].as_py()
        assert control == statuses["control"].polls >= 2
