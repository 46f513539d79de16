"""Property: deduplicating random overlapping snapshots by key yields exactly the distinct
(key, content) rows, in order of first appearance (real decoder, DuckDB hashes, key state)."""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from arroyo_lite.connectors.polling_http.keys import KeyState, RowHasher
from arroyo_lite.formats import make_decoder
from arroyo_lite.formats.records import RecordPath
from arroyo_lite.sql import compile_sql

CONFIG = compile_sql(
    "CREATE TABLE t (id BIGINT PRIMARY KEY, v TEXT, n STRUCT<x INT>) WITH (connector = "
    "'polling_http', endpoint = 'http://127.0.0.1:1/', format = 'json', "
    "emit_behavior = 'dedup');",
    env={},
).tables[0]
DECODER = make_decoder(CONFIG, records=RecordPath.parse("$.data"))
HASHER = RowHasher(CONFIG.primary_key, CONFIG.decode_schema().names)


def run(polls: list[list[dict[str, Any]]], max_keys: int = 10_000) -> list[tuple[Any, ...]]:
    """Decode each poll's wrapped body and keep what the key state admits."""
    state = KeyState(max_keys)
    out: list[tuple[Any, ...]] = []
    for records in polls:
        body = json.dumps({"data": records, "generated": len(out)}).encode()
        batch = DECODER.decode(body, 0).batch
        if batch is None:
            state.admit(*HASHER.hashes(pa.RecordBatch.from_pylist([], CONFIG.output_schema())))
            continue
        mask = state.admit(*HASHER.hashes(batch))
        kept = batch.filter(pa.array(mask, pa.bool_()))
        out += [(r["id"], r["v"], r["n"]["x"]) for r in kept.to_pylist()]
    return out


def record(key: int, version: int) -> dict[str, Any]:
    return {"id": key, "v": f"v{version}", "n": {"x": version}}


# A feed: per poll, an overlapping window of keys, each key's content at its current version;
# versions only move forward (revisions), so the distinct (key, content) pairs are the output.
feeds = st.lists(
    st.tuples(st.integers(0, 30), st.integers(0, 15), st.sets(st.integers(0, 45), max_size=4)),
    min_size=1,
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(feeds)
def test_overlapping_snapshots_give_each_distinct_row_once_in_order(feed: Any) -> None:
    versions: dict[int, int] = {}
    polls = []
    for start, width, revised in feed:
        for key in revised:
            versions[key] = versions.get(key, 0) + 1
        polls.append([record(k, versions.get(k, 0)) for k in range(start, start + width)])
    expected: list[tuple[Any, ...]] = []
    for records in polls:
        for r in records:
            row = (r["id"], r["v"], r["n"]["x"])
            if row not in expected:
                expected.append(row)
    assert run(polls) == expected


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 2)), max_size=12),
                max_size=6))  # fmt: skip
def test_any_sequence_matches_the_row_by_row_rule(polls: Any) -> None:
    # Contents may go back and forth and keys repeat within a poll: a row is emitted when its
    # key is new or its content differs from the one last emitted for that key.
    last: dict[int, int] = {}
    expected = []
    for poll in polls:
        for key, version in poll:
            if last.get(key) != version:
                expected.append((key, f"v{version}", version))
            last[key] = version
    assert run([[record(k, v) for k, v in poll] for poll in polls]) == expected
