"""Rendering of Arrow results and source status (arroyo_lite.terminal.render)."""

from __future__ import annotations

import csv
import decimal
import io

import orjson
import pyarrow as pa
from rich.console import Console

from arroyo_lite.connectors.base import SourceState, SourceStatus
from arroyo_lite.formats.encode import json_lines_python
from arroyo_lite.terminal import render

NS = 1_700_000_000_123_456_789


def sample() -> pa.Table:
    return pa.table(
        {
            "symbol": ["ACME", None],
            "price": [120.5, 7.25],
            "n": pa.array([3, None], pa.int64()),
            "tags": [["a", "b"], None],
            "amount": pa.array([decimal.Decimal("1.50"), None], pa.decimal128(10, 2)),
            "_timestamp": pa.array([NS, 0], pa.timestamp("ns")),
        }
    )


def text_of(renderable: object, width: int = 200) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    out = console.file.getvalue()
    assert isinstance(out, str)
    return out


def test_jsonl_one_object_per_row_with_iso_nanosecond_timestamps():
    lines = render.to_jsonl(sample()).splitlines()
    rows = [orjson.loads(line) for line in lines]
    assert rows == [
        {
            "symbol": "ACME",
            "price": 120.5,
            "n": 3,
            "tags": ["a", "b"],
            "amount": "1.50",
            "_timestamp": "2023-11-14T22:13:20.123456789",
        },
        {
            "symbol": None,
            "price": 7.25,
            "n": None,
            "tags": None,
            "amount": None,
            "_timestamp": "1970-01-01T00:00:00",
        },
    ]


def test_jsonl_extra_fields_come_first_and_batches_work():
    batch = sample().to_batches()[0]
    first = render.to_jsonl(batch, extra={"_query": 2}).splitlines()[0]
    assert first.startswith(b'{"_query":2,"symbol":"ACME"')


def test_zoned_timestamps_keep_their_offset():
    table = pa.table({"t": pa.array([NS // 1000], pa.timestamp("us", tz="UTC"))})
    assert orjson.loads(render.to_jsonl(table))["t"] == "2023-11-14T22:13:20.123456Z"


def test_csv_round_trips_through_the_csv_module():
    data = render.to_csv(sample(), extra={"_query": 1})
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert rows[0] == ["_query", "symbol", "price", "n", "tags", "amount", "_timestamp"]
    ts = "2023-11-14T22:13:20.123456789"
    assert rows[1] == ["1", "ACME", "120.5", "3", '["a","b"]', "1.50", ts]
    assert rows[2][1:5] == ["", "7.25", "", ""]
    no_header = render.to_csv(sample(), header=False).decode().splitlines()
    assert len(no_header) == 2 and no_header[0].startswith('"ACME"')


def test_rich_table_aligns_columns_and_counts_rows():
    text = text_of(render.rich_table(sample(), title="prices"))
    lines = text.splitlines()
    assert lines[0].strip() == "prices"
    header = next(line for line in lines if "symbol" in line)
    acme = next(line for line in lines if "ACME" in line)
    null_row = next(line for line in lines if "7.25" in line)
    # Numbers are right-aligned: the price column ends at the same place in every row.
    assert acme.index("120.5") + len("120.5") == null_row.index("7.25") + len("7.25")
    assert header.index("symbol") == acme.index("ACME")
    assert "NULL" in null_row
    assert "2023-11-14T22:13:20.123" in acme and "123456789" not in acme
    assert lines[-1].strip() == "2 rows"


def test_rich_table_says_when_rows_are_left_out():
    table = pa.table({"x": list(range(10))})
    text = text_of(render.rich_table(table, max_rows=3))
    assert "3 of 10 rows shown" in text
    assert [line.strip() for line in text.splitlines()][2:5] == ["0", "1", "2"]


def test_schema_table_lists_columns_and_json_type():
    schema = pa.schema(
        [
            pa.field("value", pa.string(), metadata={b"ARROW:extension:name": b"arroyo.json"}),
            pa.field("_timestamp", pa.timestamp("ns"), nullable=False),
        ]
    )
    text = text_of(render.schema_table("events", schema))
    value_line = next(line for line in text.splitlines() if line.strip().startswith("value"))
    assert value_line.split() == ["value", "json", "yes"]
    ts_line = next(line for line in text.splitlines() if "_timestamp" in line)
    assert ts_line.split() == ["_timestamp", "timestamp[ns]", "no"]


def test_status_table_and_line():
    ok = SourceStatus(table="prices", connector="polling_http", state=SourceState.RUNNING)
    ok.polls, ok.rows, ok.bytes = 12, 60, 4096
    bad = SourceStatus(table="weather", connector="polling_http", state=SourceState.BACKOFF)
    bad.polls, bad.failures, bad.last_error = 4, 2, "http server responded with 503"
    bad.last_poll_at_ns = 10_000_000_000
    text = text_of(render.status_table([ok, bad], now_ns=12_500_000_000))
    prices = next(line for line in text.splitlines() if "prices" in line)
    assert prices.split()[:7] == ["prices", "polling_http", "running", "12", "0", "60", "4096"]
    weather = next(line for line in text.splitlines() if "weather" in line)
    assert "backoff" in weather and "2.5s ago" in weather
    # The last error is a line of its own below the table (a column folded every cell).
    assert "weather: last error: http server responded with 503" in text.splitlines()
    narrow = text_of(render.status_table([ok, bad], now_ns=12_500_000_000), width=80)
    rows = [line.split()[:3] for line in narrow.splitlines()]
    assert ["prices", "polling_http", "running"] in rows  # not folded at 80 columns
    line = render.status_line([ok, bad])
    assert line == "prices: 12 polls, 60 rows | weather: 4 polls, 0 rows, 2 failed [backoff]"
    assert render.status_line([]) == "no sources"


def test_cell_text_is_not_markup():
    table = pa.table({"s": ["[bold]x[/bold]", "[ns]"]})
    text = text_of(render.rich_table(table))
    assert "[bold]x[/bold]" in text and "[ns]" in text


def test_jsonl_is_always_valid_json_binary_base64_non_finite_null():
    table = pa.table(
        {
            "raw": pa.array([b"\x00ab", None], pa.binary()),
            "f": [float("nan"), float("inf")],
            'we"ird': [1, 2],
        }
    )
    rows = [orjson.loads(line) for line in render.to_jsonl(table).splitlines()]
    assert rows == [{"raw": "AGFi", "f": None, 'we"ird': 1}, {"raw": None, "f": None, 'we"ird': 2}]


def test_jsonl_of_nothing():
    assert render.to_jsonl(pa.table({"a": pa.array([], pa.int64())})) == b""


def test_jsonl_duckdb_and_python_paths_agree():
    table = render.displayable(sample())
    assert render.to_jsonl(table) == json_lines_python(table)


def test_status_shows_deduplication_and_key_state():
    quakes = SourceStatus(table="quakes", connector="polling_http", state=SourceState.RUNNING)
    quakes.polls, quakes.rows, quakes.deduplicated_rows = 3, 21, 9
    quakes.state_keys, quakes.state_bytes = 20, 480
    text = text_of(render.status_table([quakes], now_ns=0))
    assert "quakes: 9 rows deduplicated; key state 20 keys (480 B)" in text.splitlines()
    assert render.status_line([quakes]) == "quakes: 3 polls, 21 rows, 9 deduplicated, 20 keys"


def test_terminal_tables_show_timestamps_to_the_microsecond():
    # Rows half a millisecond apart must not look the same (psql and the duckdb CLI show
    # microseconds); nanoseconds are cut, whole seconds have no fraction.
    second = 1_700_000_000 * 10**9
    stamps = pa.array([second, second + 500_000, second + 123_456_789], pa.timestamp("ns"))
    text = text_of(render.rich_table(pa.table({"at": stamps})))
    lines = [line.strip() for line in text.splitlines()]
    assert lines[2:5] == [
        "2023-11-14T22:13:20",
        "2023-11-14T22:13:20.000500",
        "2023-11-14T22:13:20.123456",
    ]
