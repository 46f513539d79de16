"""The pure schedule rules: ticks, exponential backoff, Retry-After parsing."""

from __future__ import annotations

import email.utils

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arroyo_lite.connectors.polling_http.backoff import (
    MAX_RETRY_AFTER,
    BackoffPolicy,
    next_tick,
    parse_retry_after,
)


@pytest.mark.parametrize(
    ("previous", "interval", "now", "expected"),
    [
        (10.0, 1.0, 10.2, 11.0),  # on time: one interval after the previous start
        (10.0, 1.0, 11.0, 11.0),  # exactly at the tick
        (10.0, 1.0, 13.7, 13.7),  # overrun: at once, and later ticks re-base on 13.7
    ],
)
def test_next_tick(previous: float, interval: float, now: float, expected: float) -> None:
    assert next_tick(previous, interval, now) == expected


@given(
    previous=st.floats(0, 1e6),
    interval=st.floats(0.001, 1e4),
    elapsed=st.floats(0, 1e5),
)
def test_next_tick_never_in_the_past_and_never_early(
    previous: float, interval: float, elapsed: float
) -> None:
    now = previous + elapsed
    tick = next_tick(previous, interval, now)
    assert tick >= now
    assert tick >= previous + interval or tick == now


def test_backoff_doubles_from_the_interval_up_to_the_cap() -> None:
    policy = BackoffPolicy(interval=0.5, max_backoff=5.0)
    assert [policy.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]


def test_backoff_cap_below_the_interval_keeps_the_interval() -> None:
    assert BackoffPolicy(interval=10.0, max_backoff=1.0).delay(5) == 10.0


def test_backoff_survives_huge_streaks() -> None:
    assert BackoffPolicy(interval=1.0, max_backoff=60.0).delay(10_000) == 60.0


def test_retry_after_lengthens_but_never_shortens() -> None:
    policy = BackoffPolicy(interval=1.0, max_backoff=60.0)
    assert policy.delay(1, retry_after=30.0) == 30.0
    assert policy.delay(5, retry_after=2.0) == 16.0
    assert policy.delay(1, retry_after=1e9) == MAX_RETRY_AFTER


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("", None),
        (None, None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("99999999999", MAX_RETRY_AFTER),
    ],
)
def test_parse_retry_after_seconds(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, now_wall=1_000_000.0) == expected


def test_parse_retry_after_http_date() -> None:
    now = 1_445_412_470.0  # 2015-10-21 07:27:50 UTC
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now) == 10.0
    assert parse_retry_after(email.utils.formatdate(now + 90, usegmt=True), now) == 90.0
    # A date in the past means "now".
    assert parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now) == 0.0
