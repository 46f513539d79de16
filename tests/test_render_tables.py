"""Terminal tables that read well: widths fitted to the terminal with `…`, timestamps never
cut, floats at their type's precision, one spelling for booleans, psql's expanded display."""

from __future__ import annotations

import io

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from arroyo_lite.terminal import render


def text_of(renderable, width: int) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None, emoji=False)
    console.print(renderable)
    return console.file.getvalue()


@pytest.mark.parametrize(
    ("value", "bits", "text"),
    [
        (314.04499999999996, 64, "314.045"),  # a sum's rounding, shown as the duckdb CLI does
        (0.1 + 0.2, 64, "0.3"),
        (2.0, 64, "2.0"),
        (-0.5, 64, "-0.5"),
        (1e20, 64, "1e+20"),
        (123456.789012345, 64, "123456.789012345"),
        (float("nan"), 64, "nan"),
        (float("-inf"), 64, "-inf"),
        (0.10000000149011612, 32, "0.1"),  # float32 0.1 widened to a double
        (3.140000104904175, 32, "3.14"),
    ],
)
def test_floats_print_at_their_types_precision(value, bits, text):
    assert render.format_float(value, bits) == text


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_a_printed_double_reads_back_within_its_precision(value):
    back = float(render.format_float(value))
    assert back == pytest.approx(value, rel=1e-14, abs=1e-300)


def test_float32_columns_and_booleans_in_a_table():
    table = pa.table(
        {
            "f32": pa.array([0.1, 2.5], pa.float32()),
            "f64": [314.04499999999996, None],
            "ok": [True, False],
        }
    )
    out = text_of(render.rich_table(table), 80)
    assert "0.1 " in out and "2.5" in out and "314.045" in out
    assert "0.10000000149011612" not in out and "314.04499999999996" not in out
    assert "true" in out and "false" in out and "True" not in out
    assert "NULL" in out
    # Everywhere else booleans are spelled the same way.
    assert render.to_csv(table.select(["ok"])).decode().splitlines()[1:] == ["true", "false"]
    assert b'"ok":true' in render.to_jsonl(table.select(["ok"]))


def test_wide_rows_are_cut_with_an_ellipsis_and_timestamps_stay_whole():
    table = pa.table(
        {
            "at": pa.array([1_767_323_045_123_456_789] * 3, pa.timestamp("ns")),
            "symbol": ["ACME", "INIT", "XYZ"],
            "payload": ["x" * 300, "short", "y" * 150],
            "price": [314.045, 1.5, 2.25],
        }
    )
    out = text_of(render.rich_table(table), 80)
    lines = out.splitlines()
    assert all(len(line) <= 80 for line in lines)
    # One line per row (header, rule, 3 rows, count): no cell wrapped into slivers.
    assert len(lines) == 6, out
    assert out.count("2026-01-02T03:04:05.123") == 3  # never split
    assert "…" in lines[2] and "…" in lines[4] and "short" in lines[3]
    assert "314.045" in lines[2] and "ACME" in lines[2]


def test_fit_widths_cuts_the_widest_first_never_a_fixed_one():
    assert render.fit_widths([5, 10], [False, False], 20) == [5, 10]
    assert render.fit_widths([10, 100, 30], [False, False, False], 60) == [10, 25, 25]
    assert render.fit_widths([23, 100], [True, False], 40) == [23, 17]
    # Too narrow for even the floors: the floors, too wide (the terminal wraps, we do not cut
    # below MIN_COLUMN_WIDTH).
    assert render.fit_widths([23, 100, 50], [True, False, False], 10) == [23, 8, 8]


def test_expanded_display_is_one_field_per_line():
    table = pa.table({"symbol": ["ACME", "INIT"], "price": [1.5, None]})
    out = text_of(render.expanded_table(table), 80)
    assert out.splitlines() == [
        "-[ RECORD 1 ]----",
        "symbol | ACME",
        "price  | 1.5",
        "-[ RECORD 2 ]----",
        "symbol | INIT",
        "price  | NULL",
        "2 rows",
    ]
    assert "(0 rows)" in text_of(render.expanded_table(table.slice(0, 0)), 80)


def test_tail_shows_the_latest_rows_with_the_count_given():
    table = pa.table({"n": list(range(10))})
    out = text_of(render.rich_table(table, max_rows=3, tail=True, count="latest 3 of 10"), 40)
    numbers = [line.strip() for line in out.splitlines()[2:5]]
    assert numbers == ["7", "8", "9"] and "latest 3 of 10" in out


def test_columns_that_cannot_fit_are_named_not_dropped_silently():
    table = pa.table(
        {
            "at": pa.array([1_767_323_045_123_456_789] * 2, pa.timestamp("ns")),
            **{f"column_{i}": [f"value number {i}"] * 2 for i in range(8)},
        }
    )
    out = text_of(render.rich_table(table), 60)
    lines = out.splitlines()
    assert all(len(line) <= 60 for line in lines), out
    header = lines[0]
    shown = [name for name in table.column_names if name in header]
    hidden = table.column_names[len(shown) :]
    assert shown == table.column_names[: len(shown)] and hidden, out
    assert f"{len(hidden)} more columns not shown (too wide for the terminal): " + ", ".join(
        hidden
    ) in " ".join(line.strip() for line in lines)
    assert "2 rows" in out
    # Wide enough: every column, no note.
    wide = text_of(render.rich_table(table), 400)
    assert "not shown" not in wide and "column_7" in wide


def test_a_timestamp_inside_a_struct_renders():
    # What `infer` declares for {"customer": {"since": "2024-05-01T10:00:00Z"}}: the nested
    # nanosecond timestamp comes out of Arrow as a pandas Timestamp (it was a traceback).
    at = 1_714_557_600_000_000_001
    struct = pa.struct([("name", pa.string()), ("since", pa.timestamp("ns"))])
    table = pa.table({"customer": pa.array([{"name": "Ann", "since": at}], struct)})
    out = text_of(render.rich_table(table), 120)
    assert '{"name":"Ann","since":"2024-05-01T10:00:00.000000001"}' in out
    assert "1 row" in out
