"""Arroyo's end-to-end SQL suite through ``arroyo-lite run`` (the runner: tests/arroyo_suite.py).

:data:`MATCHING` lists the queries whose output matches Arroyo's golden output today; the list
may only grow (README: "Arroyo's end-to-end suite" states the figure and the divergences of the
others). The comparison itself is tested on small changelogs, so a broken comparison cannot
pass a query.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import arroyo_suite

#: Queries that match (only ever add to this list).
MATCHING = [
    "active_drivers",
    "aggregates",
    "cast_to_sink_type",
    "debezium_agg",
    "debezium_coercion",
    "debezium_pass_through",
    "every_aggregate",
    "filter_updating_aggregates",
    "global_session_window",
    "grouped_aggregates",
    "hourly_by_event_type",
    "json_operators",
    "memory_table",
    "month_loose_watermark",
    "most_active_driver_last_hour",
    "most_active_driver_last_hour_unaligned",
    "offset_impulse_join",
    "reinvoke_window_function",
    "select_star",
    "session_window",
    "sliding_window_end",
    "test_merge_sink",
    "tight_watermark",
    "union",
    "unnest_in_view",
    "updating_full_join",
    "updating_inner_join",
    "updating_inner_join_with_updating",
    "updating_left_join",
    "updating_right_join",
    "windowed_inner_join",
    "windowed_outer_join",
]

pytestmark = pytest.mark.skipif(
    not arroyo_suite.QUERIES.is_dir(),
    reason=f"Arroyo's SQL corpus not found at {arroyo_suite.CORPUS}",
)


def test_the_suite_has_its_queries() -> None:
    names = arroyo_suite.runnable()
    assert len(names) == 32  # 36 queries, 4 of which need Arroyo's test crate
    assert set(MATCHING) <= set(names)


@pytest.mark.parametrize("name", MATCHING)
def test_query_matches_arroyo(name: str, tmp_path: Path) -> None:
    outcome = arroyo_suite.run_query(name, tmp_path)
    assert outcome.matched, outcome.reason


def _write(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_changelogs_compare_by_their_final_rows(tmp_path: Path) -> None:
    golden = _write(tmp_path / "g.json", '{"before":null,"after":{"k":1,"n":2},"op":"c"}')
    ours = _write(
        tmp_path / "o.json",
        '{"before":null,"after":{"k":1,"n":1},"op":"c"}',
        '{"before":{"k":1,"n":1},"after":null,"op":"d"}',
        '{"before":null,"after":{"n":2,"k":1},"op":"c"}',
    )
    assert arroyo_suite.compare(ours, golden, ["k"]) is None
    wrong = _write(tmp_path / "w.json", '{"before":null,"after":{"k":1,"n":3},"op":"c"}')
    assert "final rows differ" in (arroyo_suite.compare(wrong, golden, ["k"]) or "")


def test_a_changelog_that_cannot_be_replayed_is_an_error(tmp_path: Path) -> None:
    golden = _write(tmp_path / "g.json", '{"before":null,"after":{"k":1},"op":"c"}')
    twice = _write(tmp_path / "o.json", *['{"before":null,"after":{"k":1},"op":"c"}'] * 2)
    with pytest.raises(ValueError, match="over an existing row"):
        arroyo_suite.compare(twice, golden, ["k"])
    missing = _write(tmp_path / "m.json", '{"before":{"k":2},"after":null,"op":"d"}')
    with pytest.raises(ValueError, match="does not exist"):
        arroyo_suite.compare(missing, golden, None)


def test_rows_compare_sorted_with_json_number_kinds(tmp_path: Path) -> None:
    golden = _write(tmp_path / "g.json", '{"a":1,"b":"x"}', '{"a":2,"b":"y"}')
    same = _write(tmp_path / "s.json", '{"b":"y","a":2}', '{"b":"x","a":1}')
    assert arroyo_suite.compare(same, golden, None) is None
    floats = _write(tmp_path / "f.json", '{"a":1.0,"b":"x"}', '{"a":2,"b":"y"}')
    assert "differs" in (arroyo_suite.compare(floats, golden, None) or "")
    short = _write(tmp_path / "h.json", '{"a":1,"b":"x"}')
    assert "1 lines, expected 2" in (arroyo_suite.compare(short, golden, None) or "")
