"""Round trips: rows -> JSON text (every body shape) -> decode == rows, fast and exact paths.

Hypothesis generates rows with hostile strings (``},{``, quotes, escapes, non-ASCII), nested
lists and structs, arbitrary values in a JSON column, nulls and missing keys; each is
serialized as a compact array, an array with one element per line, a pretty-printed array,
and NDJSON, and must decode to the same columns, identical on the native and exact paths.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from arroyo_lite.formats import make_decoder
from arroyo_lite.formats.json_decoder import JsonDecoder
from tests.support.format_tables import col, table

NOW = 1_600_000_000_000_000_000
COLUMNS = [
    col("id", pa.int64()),
    col("name", pa.string()),
    col("score", pa.float64()),
    col("ok", pa.bool_()),
    col("tags", pa.list_(pa.string())),
    col("inner", pa.struct([("s", pa.string()), ("n", pa.int64())])),
    col("items", pa.list_(pa.struct([("x", pa.int64())]))),
    col("payload", pa.string(), is_json=True),
]
HOSTILE = st.sampled_from(["},{", '"},{"', "},\n{", "}\n{", "[", "]", "\\", '"', "é", "日", " "])
TEXT = st.lists(st.one_of(HOSTILE, st.text(max_size=4)), max_size=4).map("".join)
INT = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FLOAT = st.floats(allow_nan=False, allow_infinity=False, width=64)

ROW = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.none(), INT),
        "name": st.one_of(st.none(), TEXT),
        "score": st.one_of(st.none(), FLOAT),
        "ok": st.one_of(st.none(), st.booleans()),
        "tags": st.one_of(st.none(), st.lists(st.one_of(st.none(), TEXT), max_size=3)),
        "inner": st.one_of(
            st.none(),
            st.fixed_dictionaries({}, optional={"s": TEXT, "n": INT, "junk": TEXT}),
        ),
        "items": st.one_of(
            st.none(), st.lists(st.fixed_dictionaries({"x": st.one_of(st.none(), INT)}), max_size=3)
        ),
        "payload": st.recursive(
            st.one_of(st.none(), st.booleans(), INT, FLOAT, TEXT),
            lambda inner: st.one_of(
                st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)
            ),
            max_leaves=6,
        ),
        "extra": st.one_of(TEXT, st.lists(st.integers(), max_size=2)),
    },
)


def expected_columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {c.name: [] for c in COLUMNS}
    for row in rows:
        for c in COLUMNS:
            value = row.get(c.name)
            if c.name == "inner" and value is not None:
                value = {"s": value.get("s"), "n": value.get("n")}
            if c.name == "payload" and c.name in row:
                value = ("json", value)
            out[c.name].append(value)
    return out


def bodies(rows: list[dict[str, Any]]) -> list[tuple[str, bytes, bool]]:
    compact = [json.dumps(r, separators=(",", ":"), ensure_ascii=False) for r in rows]
    return [
        ("compact array", ("[" + ",".join(compact) + "]").encode(), False),
        ("array per line", ("[\n" + ",\n".join(compact) + "\n]").encode(), False),
        ("pretty array", json.dumps(rows, indent=2).encode(), False),
        ("ndjson", ("\n".join(compact) + "\n").encode(), True),
        ("unframed ndjson", "\n".join(compact).encode(), False),
    ]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ROW, min_size=1, max_size=8))
@example([{"payload": 1e-06}, {"payload": 1e100}, {"payload": {"\x1f": [0.5, 2e21]}}])
def test_rows_round_trip_through_every_body_shape(rows: list[dict[str, Any]]) -> None:
    expected = expected_columns(rows)
    fast_bodies = 0
    for shape, body, newline in bodies(rows):
        config = table(*COLUMNS, newline=newline)
        decoder = make_decoder(config)
        assert isinstance(decoder, JsonDecoder)
        result = decoder.decode(body, NOW)
        assert result.rows == len(rows), shape
        assert result.batch is not None
        got = result.batch.to_pydict()
        for c in COLUMNS:
            want = expected[c.name]
            if c.is_json:
                # JSON columns hold compact text; compare what the text means.
                have = [None if t is None else ("json", json.loads(t)) for t in got[c.name]]
                assert have == want, (shape, c.name)
            else:
                assert got[c.name] == want, (shape, c.name)
        # Whatever path decode took, the native and the exact path agree exactly.
        exact = decoder._decode_exactly(body, NOW)
        assert exact.batch is not None and exact.batch.equals(result.batch), shape
        fast = decoder._decode_fast(body, NOW)
        if fast is not None:
            fast_bodies += 1
            assert fast.batch is not None and fast.batch.equals(exact.batch), shape
    # The native path takes these bodies, unless a row has no value in any column it reads
    # (indistinguishable there from a top-level null, so the exact path decides).
    read = [c.name for c in COLUMNS if not c.is_json]
    if all(any(row.get(name) is not None for name in read) for row in rows):
        assert fast_bodies >= len(bodies(rows)) - 1


def test_hostile_strings_in_arrays_stay_whole() -> None:
    config = table(col("s", pa.string()), col("items", pa.list_(pa.struct([("x", pa.int64())]))))
    body = (
        b'[{"s":"a},{\\"s\\":\\"b"},{"s":"c","items":[{"x":1},{"x":2}]},'
        b'{"s":"},\\n{"},{"items":[{"x":3},{"x":null}]}]'
    )
    decoder = make_decoder(config)
    result = decoder.decode(body, NOW)
    assert result.batch is not None
    assert result.batch.column("s").to_pylist() == ['a},{"s":"b', "c", "},\n{", None]
    assert result.batch.column("items").to_pylist() == [
        None,
        [{"x": 1}, {"x": 2}],
        None,
        [{"x": 3}, {"x": None}],
    ]
