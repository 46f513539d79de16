"""The embedded demo API: real aiohttp servers on 127.0.0.1, real HTTP requests."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import sys
import urllib.error
import urllib.request
from pathlib import Path

import aiohttp
import orjson
import pytest

from arroyo_lite.demo import DEFAULT_PORT, quickstart_sql, retarget
from arroyo_lite.demo.api import SYMBOLS, DemoServer, make_app

REPO = Path(__file__).resolve().parents[1]


async def test_prices_move_on_every_request(aiohttp_client):
    client = await aiohttp_client(make_app(seed=7))
    first = await (await client.get("/prices")).json()
    second = await (await client.get("/prices")).json()
    assert [r["symbol"] for r in first] == list(SYMBOLS)
    assert {"symbol", "price", "volume", "ts"} <= set(first[0])
    assert [r["price"] for r in first] != [r["price"] for r in second]
    assert all(r["price"] > 0 for r in first + second)


async def test_prices_ndjson_is_one_object_per_line(aiohttp_client):
    client = await aiohttp_client(make_app(seed=1))
    response = await client.get("/prices", params={"format": "ndjson"})
    assert response.content_type == "application/x-ndjson"
    lines = (await response.read()).decode().splitlines()
    assert [orjson.loads(line)["symbol"] for line in lines] == list(SYMBOLS)


async def test_news_changes_only_every_few_requests(aiohttp_client):
    client = await aiohttp_client(make_app(news_every=3))
    bodies = [await (await client.get("/news")).read() for _ in range(7)]
    # Requests 1-3 see story 1, 4-6 story 2, 7 story 3: byte-identical within a story.
    assert bodies[0] == bodies[1] == bodies[2]
    assert bodies[3] == bodies[4] == bodies[5]
    assert len({bodies[0], bodies[3], bodies[6]}) == 3
    assert [orjson.loads(b)["id"] for b in (bodies[0], bodies[3], bodies[6])] == [1, 2, 3]


async def test_weather_fails_now_and_then_with_retry_after(aiohttp_client):
    client = await aiohttp_client(make_app(fail_every=3))
    statuses = []
    for _ in range(6):
        response = await client.get("/weather")
        statuses.append(response.status)
        if response.status == 503:
            assert response.headers["Retry-After"] == "1"
        else:
            rows = [orjson.loads(x) for x in (await response.read()).splitlines()]
            assert {r["city"] for r in rows} >= {"Lisbon", "Oslo"}
    assert statuses == [200, 200, 503, 200, 200, 503]


async def test_metrics_count_requests(aiohttp_client):
    client = await aiohttp_client(make_app())
    for _ in range(2):
        await client.get("/prices")
    text = await (await client.get("/metrics")).text()
    assert 'demo_requests_total{path="/prices"} 2' in text.splitlines()


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        body: bytes = response.read()
        return body


def test_server_runs_on_a_background_thread_and_stops():
    with DemoServer(port=0) as server:
        assert server.port != 0
        assert orjson.loads(_get(server.url + "/"))["endpoints"]
    with pytest.raises(urllib.error.URLError):
        _get(server.url + "/")


def test_taken_port_falls_back_to_a_free_one():
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        with DemoServer(port=taken) as server:
            assert server.port != taken
            assert len(orjson.loads(_get(server.url + "/prices"))) == len(SYMBOLS)
        with pytest.raises(OSError):
            DemoServer(port=taken, fallback=False).start()


def test_retarget_rewrites_only_the_demo_host_and_port():
    sql = "endpoint = 'http://127.0.0.1:8765/prices' -- not 8765 alone, not 10.0.0.1:8765"
    assert retarget(sql, 9999) == sql.replace("127.0.0.1:8765", "127.0.0.1:9999")
    assert retarget(sql, DEFAULT_PORT) == sql


def test_packaged_quickstart_is_the_one_in_sql_examples():
    # sql_examples/quickstart.sql is a link to the packaged file (one copy, shipped in wheels).
    example = REPO / "sql_examples" / "quickstart.sql"
    assert example.resolve() == (REPO / "arroyo_lite" / "demo" / "quickstart.sql").resolve()
    assert quickstart_sql() == example.read_text()
    assert f"127.0.0.1:{DEFAULT_PORT}" in quickstart_sql()


async def test_standalone_api_prints_its_url_and_stops_on_ctrl_c():
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "arroyo_lite.demo.api",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
    match = re.match(r"demo API on (http://127\.0\.0\.1:\d+) ", line)
    assert match, line
    async with aiohttp.ClientSession() as http, http.get(match.group(1) + "/prices") as response:
        assert len(await response.json()) == len(SYMBOLS)
    proc.send_signal(signal.SIGINT)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0 and b"Traceback" not in err


async def test_standalone_api_on_a_taken_port_says_so():
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "arroyo_lite.demo.api",
            "--port",
            str(taken),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    assert f"cannot listen on 127.0.0.1:{taken}" in err.decode()
