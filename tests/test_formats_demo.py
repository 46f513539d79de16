"""Real bodies from the embedded demo API, decoded with the quickstart tables' decoders.

The demo app runs on an aiohttp test server (127.0.0.1, port 0); each quickstart table's
endpoint path is fetched and decoded, and the native and exact paths must agree.
"""

from __future__ import annotations

from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import pyarrow as pa

from arroyo_lite.config import TIMESTAMP_COLUMN
from arroyo_lite.demo.api import make_app
from arroyo_lite.formats import make_decoder
from arroyo_lite.formats.json_decoder import JsonDecoder
from arroyo_lite.sql import compile_sql

NOW = 1_700_000_000_000_000_000


async def test_quickstart_bodies_decode(aiohttp_client: Any) -> None:
    client = await aiohttp_client(make_app(seed=7, fail_every=0))
    text = resources.files("arroyo_lite.demo").joinpath("quickstart.sql").read_text()
    tables = [t for t in compile_sql(text).tables if t.format is not None]
    assert {t.name for t in tables} >= {"prices", "news", "weather"}
    for config in tables:
        url = urlsplit(config.connector_options.endpoint)
        path = url.path + (f"?{url.query}" if url.query else "")
        response = await client.get(path)
        assert response.status == 200, config.name
        body = await response.read()
        decoder = make_decoder(config)
        result = decoder.decode(body, NOW)
        assert result.batch is not None and result.rows > 0, config.name
        assert result.dropped == 0 and result.errors == ()
        assert result.batch.schema == config.output_schema()
        assert result.batch.column(TIMESTAMP_COLUMN).cast(pa.int64()).to_pylist() == (
            [NOW] * result.rows
        )
        if isinstance(decoder, JsonDecoder):
            exact = decoder._decode_exactly(body, NOW)
            assert exact.batch is not None and exact.batch.equals(result.batch), config.name
            # Many copies of the body make it big enough for the native path too.
            big = b"\n".join([body.rstrip(b"\n")] * 200) if config.framing else None
            if big is not None:
                fast = decoder._decode_fast(big, NOW)
                assert fast is not None and fast.batch is not None, config.name
                assert fast.rows == 200 * result.rows
                assert fast.batch.slice(0, result.rows).equals(result.batch)


def test_httpbin_bodies_decode(httpbin: Any) -> None:
    """The real httpbin app: a pretty-printed object (/json) and NDJSON (/stream/N)."""
    from urllib.request import urlopen

    with urlopen(httpbin.url + "/json") as response:
        pretty = response.read()
    config = compile_sql(
        "CREATE TABLE slides (slideshow STRUCT<author TEXT, title TEXT, "
        "slides STRUCT<title TEXT, type TEXT>[]>) WITH (connector = 'polling_http', "
        f"endpoint = '{httpbin.url}/json', format = 'json');"
    ).tables[0]
    result = make_decoder(config).decode(pretty, NOW)
    assert result.batch is not None and result.rows == 1
    show = result.batch.column("slideshow")[0].as_py()
    assert show["author"] == "Yours Truly"
    assert [s["type"] for s in show["slides"]] == ["all", "all"]

    with urlopen(httpbin.url + "/stream/40") as response:
        stream = response.read()
    config = compile_sql(
        "CREATE TABLE s (id BIGINT NOT NULL, url TEXT, headers JSON) WITH ("
        f"connector = 'polling_http', endpoint = '{httpbin.url}/stream/40', format = 'json', "
        "framing = 'newline');"
    ).tables[0]
    decoder = make_decoder(config)
    result = decoder.decode(stream, NOW)
    assert result.batch is not None
    assert result.batch.column("id").to_pylist() == list(range(40))
    assert all(h.startswith("{") for h in result.batch.column("headers").to_pylist())
    assert isinstance(decoder, JsonDecoder) and decoder.fast_bodies == 1
