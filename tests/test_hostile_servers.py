"""Hostile servers on raw sockets (issue 8): attacks that already hold, kept holding.

Each attack is a real TCP server on 127.0.0.1 speaking broken or malicious HTTP by hand:
a lying Content-Length, an endless body, a header bomb, a reset in the middle of the body,
a body that trickles slower than the timeout, a garbage status line, an echo of the request
headers in an error body. For each, the attacked table fails that poll cleanly (counted, one
line, retried) and never dies, a control table beside it keeps receiving rows, and neither
the status nor any log line (debug level included) holds the secret or any 8-character piece
of it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from arroyo_lite.connectors.base import SourceState
from tests.support.polling import RunningSource, polling_table

pytestmark = pytest.mark.timeout(60)

SECRET = "hostile-Secret-4711-abcdef"
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _request_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


def _attack(send: Callable[[bytes], list[bytes | float]]) -> Handler:
    """A handler that reads the request head, then writes the parts ``send(head)`` gives
    (bytes are written, a float sleeps that long), then closes the connection."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await _request_head(reader)
            for part in send(head):
                if isinstance(part, float):
                    await asyncio.sleep(part)
                else:
                    writer.write(part)
                    await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    return handle


def _reset(head: bytes) -> list[bytes | float]:
    return [b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", b"x" * 10]


ATTACKS: dict[str, Handler] = {
    "lying content-length": _attack(
        lambda head: [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"]
    ),
    "endless chunked body": _attack(
        lambda head: [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"]
        + [b"400\r\n" + b"y" * 1024 + b"\r\n"] * 64
    ),
    "header bomb": _attack(
        lambda head: [b"HTTP/1.1 200 OK\r\nX-Bomb: " + b"h" * 200_000 + b"\r\n\r\n"]
    ),
    "reset mid-body": _attack(_reset),
    "slow trickle": _attack(
        lambda head: [b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n"] + [b"z", 0.1] * 50
    ),
    "garbage status line": _attack(lambda head: [b"HTTTP/9 banana\r\n\r\n"]),
    "headers echoed in a 500": _attack(
        lambda head: [
            b"HTTP/1.1 500 Oops\r\nContent-Length: %d\r\n\r\n" % len(head),
            head,
        ]
    ),
}


async def _serve(handler: Handler) -> tuple[asyncio.Server, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/feed"


def _good(head: bytes) -> list[bytes | float]:
    return [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"]


def pieces(secret: str) -> list[str]:
    return [secret[i : i + 8] for i in range(len(secret) - 7)]


@pytest.mark.parametrize("attack", list(ATTACKS))
async def test_an_attack_fails_a_poll_cleanly_and_the_control_keeps_going(
    attack: str, caplog: pytest.LogCaptureFixture
) -> None:
    hostile, hostile_url = await _serve(ATTACKS[attack])
    good, good_url = await _serve(_attack(_good))
    attacked = polling_table(
        hostile_url,
        headers=(("X-Api-Key", "{{ KEY }}"),),
        timeout_ms=1000,
        max_body_bytes=20_000,
        name="attacked",
    )
    control = polling_table(good_url, name="control")
    env = {"KEY": SECRET}
    try:
        with caplog.at_level(logging.DEBUG):
            async with RunningSource(attacked, env=env) as src, RunningSource(control) as ctl:
                await src.sleeping_after(1)
                await ctl.sleeping_after(1)
                await src.manual.advance(src.pending_delay())  # the retry (after any backoff)
                await src.sleeping_after(2)
                status: Any = src.status
                assert status.state in (SourceState.RUNNING, SourceState.BACKOFF)
                assert status.failures == 2, status
                assert status.last_error and "\n" not in status.last_error
                assert ctl.rows() == [{"value": "ok"}]
    finally:
        hostile.close()
        good.close()
    outputs = "\n".join(r.getMessage() for r in caplog.records) + repr(src.status)
    assert not [p for p in pieces(SECRET) if p in outputs], outputs
