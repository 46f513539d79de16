"""``records.path`` in the decoder: the native read (a byte-searched span, proven, or a nested
schema) gives exactly what the exact path gives, for bodies built to mislead the search."""

from __future__ import annotations

import json
from typing import Any

import pytest

from arroyo_lite.formats import make_decoder
from arroyo_lite.formats.records import RecordPath, RecordPathError
from arroyo_lite.sql import compile_sql

CONFIG = compile_sql(
    "CREATE TABLE t (id BIGINT, name TEXT) WITH (connector = 'polling_http', "
    "endpoint = 'http://127.0.0.1:1/', format = 'json');",
    env={},
).tables[0]
RECORDS = [{"id": i, "name": f"n{i}"} for i in range(60)]
PAD = "x" * 2000  # past the small-body threshold, so the native read is tried first


def bodies() -> list[tuple[str, Any]]:
    decoy = [{"id": -1, "name": "decoy"}]
    return [
        ("plain", {"data": RECORDS}),
        ("records first, objects after", {"data": RECORDS, "included": decoy, "pad": PAD}),
        ("a nested decoy before", {"meta": {"data": decoy}, "data": RECORDS, "pad": PAD}),
        ("the key inside a string first", {"note": '"data": [{"id": -1}]', "data": RECORDS,
                                           "pad": PAD}),  # fmt: skip
        ("records nested in records", {"data": [{"id": 1, "name": "a", "kids": decoy}],
                                       "pad": PAD}),  # fmt: skip
        ("an empty array, objects after", {"data": [], "other": decoy, "pad": PAD}),
    ]


@pytest.mark.parametrize(("name", "value"), bodies(), ids=[b[0] for b in bodies()])
@pytest.mark.parametrize("indent", [None, 2])
def test_native_and_exact_paths_agree(name: str, value: Any, indent: int | None) -> None:
    body = json.dumps(value, indent=indent).encode()
    decoder: Any = make_decoder(CONFIG, records=RecordPath.parse("$.data"))
    fast = decoder.decode(body, 0)
    exact = decoder._decode_records_exactly(body, 0)
    rows = [] if fast.batch is None else fast.batch.drop_columns(["_timestamp"]).to_pylist()
    expected = [] if exact.batch is None else exact.batch.drop_columns(["_timestamp"]).to_pylist()
    assert rows == expected
    assert rows == [{"id": r["id"], "name": r["name"]} for r in value["data"]]
    assert decoder.slow_bodies == 0, "decoded natively"


def test_nested_paths() -> None:
    body = json.dumps({"result": {"items": RECORDS[:3], "cursor": "c"}, "pad": PAD}).encode()
    decoder: Any = make_decoder(CONFIG, records=RecordPath.parse("$.result.items[*]"))
    result = decoder.decode(body, 0)
    assert result.rows == 3 and decoder.slow_bodies == 0


@pytest.mark.parametrize(
    ("text", "keys"),
    [("$", ()), ("$.a.b", ("a", "b")), ("$['a b'].c[*]", ("a b", "c")), ('$["x"]', ("x",)),
     ("a.b", ("a", "b")), ("$.data[ * ]", ("data",))],
)  # fmt: skip
def test_path_syntax(text: str, keys: tuple[str, ...]) -> None:
    assert RecordPath.parse(text).keys == keys


@pytest.mark.parametrize("text", ["", "$.a[0]", "$.a[*].b", "$.", "$..a", "$.a b"])
def test_bad_paths(text: str) -> None:
    with pytest.raises(RecordPathError) as info:
        RecordPath.parse(text)
    assert info.value.hint
