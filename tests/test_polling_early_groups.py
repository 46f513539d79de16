"""Early decodes take the pages handed over since the previous decode started as one group
(connectors/polling_http/early.py): each page still gets its own result and arrival time,
in page order, whatever the groups were; a failing page's error is its own."""

from __future__ import annotations

import asyncio
import json

import pyarrow as pa
import pytest

from arroyo_lite.config import Format
from arroyo_lite.connectors.polling_http.early import EarlyDecodes
from arroyo_lite.errors import FatalSourceError
from arroyo_lite.formats import make_decoder
from tests.support.polling import ID_NAME, polling_table


def page(start: int, count: int = 60) -> bytes:
    return json.dumps([{"id": i, "name": f"r{i}"} for i in range(start, start + count)]).encode()


async def test_pages_handed_over_while_a_group_decodes_form_the_next_group() -> None:
    config = polling_table("http://127.0.0.1:1/", columns=ID_NAME, fmt=Format.JSON)
    decoder = make_decoder(config)
    early = EarlyDecodes(decoder, iter(range(100, 200)).__next__)
    bodies = [page(60 * n) for n in range(6)]
    bad = page(360).replace(b'"id": 365', b'"id": "x"')
    early.catch_up(bodies[:2])  # the first group: pages 1 and 2
    early.catch_up(bodies[:5])  # handed over while it decodes: the next group
    first, at = await early.result(0)
    assert first.batch is not None and first.batch.column("id").to_pylist() == list(range(60))
    assert at == 100
    early.catch_up([*bodies, bad])
    assert early.started == 7
    for index in range(6):
        result, at = await early.result(index)
        assert at == 100 + index
        assert result.batch is not None and result.rows == 60
        ids = result.batch.column("id").to_pylist()
        assert ids == list(range(60 * index, 60 * index + 60))
        stamps = set(result.batch.column("_timestamp").cast(pa.int64()).to_pylist())
        assert stamps == {100 + index}
    try:
        await early.result(6)
    except FatalSourceError as e:
        assert "JSON does not match schema" in e.message
    else:
        raise AssertionError("the bad page decoded")
    early.abandon()


async def test_abandon_cancels_the_pages_not_decoded() -> None:
    config = polling_table("http://127.0.0.1:1/", columns=ID_NAME, fmt=Format.JSON)
    early = EarlyDecodes(make_decoder(config), iter(range(10)).__next__)
    early.catch_up([page(0), page(60), page(120)])
    early.abandon()
    for index in range(3):
        with pytest.raises(asyncio.CancelledError):
            await early.result(index)
