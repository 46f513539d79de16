"""``'dedup.ttl'``: dedup's key state bounded by time as well as by ``dedup.max_keys``.

A key not seen for longer than the TTL is forgotten, so it is emitted again if it comes back;
a key seen within it is not. Time comes from a manual clock (no sleeping)."""

from __future__ import annotations

import numpy as np
import pytest

from arroyo_lite.clock import ManualClock
from arroyo_lite.connectors.polling_http.keys import KeyState
from arroyo_lite.errors import ValidationErrors
from arroyo_lite.sql import compile_sql
from tests.support.feeds import FeedState, make_feed_app, quakes
from tests.support.polling import RunningSource
from tests.support.threaded_server import serve

pytestmark = pytest.mark.timeout(60)


def table(url: str, extra: str) -> str:
    return f"""CREATE TABLE quakes (id TEXT PRIMARY KEY, properties STRUCT<mag DOUBLE>) WITH (
      connector = 'polling_http', endpoint = '{url}', format = 'json',
      'records.path' = '$.features[*]', emit_behavior = 'dedup',
      poll_interval_ms = 3600000{extra}
    );"""


def test_expire_forgets_keys_not_seen_since() -> None:
    state = KeyState(100)
    keys = np.array([1, 2, 3], np.uint64)
    state.admit(keys, keys, seen_at=10)
    state.admit(keys[:1], keys[:1], seen_at=20)
    assert state.expire(15) == 2
    assert state.keys.tolist() == [1]
    # Forgotten keys are new again; the kept one is not.
    assert state.admit(keys, keys, seen_at=30).tolist() == [False, True, True]
    again = KeyState.from_bytes(state.to_bytes(), 100)
    assert again.seen.tolist() == [30, 30, 30]


def test_a_key_state_saved_with_poll_counts_starts_its_clock_at_the_restart() -> None:
    state = KeyState(100)
    state.admit(np.array([7], np.uint64), np.array([7], np.uint64))  # stamped with poll 1
    old = b"ALK1" + state.to_bytes()[4:]  # as saved before stamps were times
    resumed = KeyState.from_bytes(old, 100, now=5_000)
    assert resumed.seen.tolist() == [5_000]
    assert resumed.expire(4_000) == 0


@pytest.mark.parametrize(("ttl", "again"), [("", 0), (",\n 'dedup.ttl' = interval '90' minute", 3)])
async def test_ttl_emits_a_key_again_after_it_was_forgotten(ttl: str, again: int) -> None:
    feed = FeedState(quakes=quakes(6), window=(0, 3))
    with serve(make_feed_app(feed)) as server:
        config = compile_sql(table(server.url("/usgs"), ttl), env={}).tables[0]
        clock = ManualClock()
        async with RunningSource(config, clock=clock) as src:
            await src.sleeping_after(1)  # quakes 0-2
            feed.window = (3, 6)
            await clock.advance(3600)
            await src.sleeping_after(2)  # quakes 3-5; 0-2 last seen an hour ago
            await clock.advance(3600)
            await src.sleeping_after(3)  # 3-5 again: seen an hour ago, kept
            feed.window = (0, 6)
            await clock.advance(3600)
            await src.sleeping_after(4)  # 0-2 not seen for 3 hours: forgotten with the TTL
    ids = [row["id"] for row in src.rows()]
    assert ids[:6] == [q.id for q in reversed(quakes(3))] + [q.id for q in reversed(quakes(6)[3:])]
    assert len(ids) == 6 + again
    assert src.status.state_keys == 6


def test_ttl_needs_dedup() -> None:
    with pytest.raises(ValidationErrors) as info:
        compile_sql(
            table("http://127.0.0.1:9/x", ",\n 'dedup.ttl' = '1 hour'").replace(
                "emit_behavior = 'dedup'", "emit_behavior = 'all'"
            ),
            env={},
        )
    assert "'dedup.ttl' applies only with emit_behavior = 'dedup'" in str(info.value)


def test_ttl_must_be_an_interval() -> None:
    with pytest.raises(ValidationErrors) as info:
        compile_sql(table("http://127.0.0.1:9/x", ",\n 'dedup.ttl' = 'soon'"), env={})
    assert "invalid duration for 'dedup.ttl'" in str(info.value)
