"""Backoff: immediate first retry, full jitter within exponential bounds, cap, reset after data."""

from __future__ import annotations

import random

import pytest

from tickguard.settings import StreamSettings
from tickguard.stream.backoff import Backoff
from tickguard.stream.breaker import Breaker


def test_first_retry_is_immediate() -> None:
    backoff = Backoff(0.25, 30.0, 30.0, random.Random(1))
    assert backoff.next_delay() == 0.0
    assert 0.0 <= backoff.next_delay() <= 0.25
    assert backoff.attempt == 2


@pytest.mark.parametrize("seed", range(20))
def test_delays_stay_within_full_jitter_bounds(seed: int) -> None:
    backoff = Backoff(0.25, 30.0, 30.0, random.Random(seed))
    delays = [backoff.next_delay() for _ in range(40)]
    assert delays[0] == 0.0
    for attempt, delay in enumerate(delays[1:], start=1):
        assert 0.0 <= delay <= min(30.0, 0.25 * 2 ** (attempt - 1))


def test_jitter_spreads_delays_and_reaches_the_cap() -> None:
    backoff = Backoff(0.25, 2.0, 30.0, random.Random(7))
    for _ in range(10):
        backoff.next_delay()
    late = [backoff.next_delay() for _ in range(200)]
    assert max(late) <= 2.0
    assert max(late) > 1.8  # the ceiling is the cap, and jitter reaches near it
    assert min(late) < 0.2  # full jitter: anywhere from zero
    assert len(set(late)) > 150


def test_huge_attempt_counts_do_not_overflow() -> None:
    backoff = Backoff(0.25, 30.0, 30.0, random.Random(0))
    backoff.attempt = 5000
    assert 0.0 <= backoff.next_delay() <= 30.0


def test_reset_only_after_the_connection_carried_data_long_enough() -> None:
    backoff = Backoff(0.25, 30.0, 30.0, random.Random(3))
    for _ in range(5):
        backoff.next_delay()
    assert backoff.connection_carried_data(4.0) is False  # a 3–5 s flap is not a success
    assert backoff.attempt == 5
    assert backoff.next_delay() > 0.0
    assert backoff.connection_carried_data(0.0) is False  # connected, no data
    assert backoff.connection_carried_data(30.0) is True
    assert backoff.next_delay() == 0.0


def test_from_settings_uses_stream_settings() -> None:
    stream = StreamSettings(backoff_base_s=0.5, backoff_cap_s=4.0, backoff_reset_after_s=9.0)
    backoff = Backoff.from_settings(stream)
    assert (backoff.base_s, backoff.cap_s, backoff.reset_after_s) == (0.5, 4.0, 9.0)
    with pytest.raises(ValueError):
        Backoff(0.0, 1.0, 1.0)


def test_breaker_trips_on_more_than_n_reconnects_in_window_then_rearms() -> None:
    breaker = Breaker(max_reconnects=3, window_s=10.0, cooldown_s=7.0)
    assert [breaker.record_reconnect(t) for t in (0.0, 1.0, 2.0)] == [0.0, 0.0, 0.0]
    assert breaker.record_reconnect(3.0) == 7.0
    assert breaker.trips == 1
    assert breaker.record_reconnect(11.0) == 0.0  # fresh window after the trip


def test_breaker_forgets_reconnects_outside_the_window() -> None:
    breaker = Breaker(max_reconnects=2, window_s=5.0, cooldown_s=1.0)
    assert [breaker.record_reconnect(t) for t in (0.0, 4.0, 9.5, 14.9)] == [0.0] * 4
    assert breaker.trips == 0
