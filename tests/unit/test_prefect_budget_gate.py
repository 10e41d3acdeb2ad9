"""The plain decisions behind supervision: session window and restart budget."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from tickguard.calendar import TradingCalendar
from tickguard.models import KST
from tickguard.orchestration.budget import RestartPolicy, assess
from tickguard.orchestration.gate import Closed, Window, parse_instant, session_window

POLICY = RestartPolicy(3, timedelta(minutes=30), 5.0, 60.0)
NOW = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)


def kst(day: date, hh: int, mm: int) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=KST)


@pytest.fixture(scope="module")
def cal() -> TradingCalendar:
    return TradingCalendar()


def test_no_failures_no_delay() -> None:
    assert assess([], NOW, POLICY).allowed
    assert assess([], NOW, POLICY).delay_s == 0


def test_delay_grows_then_the_budget_refuses() -> None:
    fails = [NOW - timedelta(minutes=m) for m in (1, 2, 3, 4)]
    delays = [assess(fails[:n], NOW, POLICY).delay_s for n in (1, 2, 3)]
    assert delays == [5.0, 10.0, 20.0]
    refused = assess(fails, NOW, POLICY)
    assert not refused.allowed and refused.failures == 4


def test_old_failures_fall_out_of_the_window_and_delay_is_capped() -> None:
    old = [NOW - timedelta(minutes=31)] * 10
    assert assess(old, NOW, POLICY).failures == 0
    capped = RestartPolicy(10, timedelta(minutes=30), 5.0, 12.0)
    assert assess([NOW] * 5, NOW, capped).delay_s == 12.0


def test_window_on_a_trading_day_ends_at_the_close(cal: TradingCalendar) -> None:
    day = date(2026, 11, 26)
    got = session_window(cal, kst(day, 8, 20), day=day)
    assert isinstance(got, Window)
    assert got.end == kst(day, 15, 30).astimezone(UTC)


def test_late_open_on_csat_day_moves_the_close(cal: TradingCalendar) -> None:
    day = date(2025, 11, 13)  # 수능: the session runs 10:00-16:30
    got = session_window(cal, kst(day, 8, 20), day=day)
    assert isinstance(got, Window)
    assert got.end == kst(day, 16, 30).astimezone(UTC)


def test_holiday_and_after_close_are_closed(cal: TradingCalendar) -> None:
    holiday = session_window(cal, kst(date(2026, 1, 1), 8, 20), day=date(2026, 1, 1))
    assert isinstance(holiday, Closed) and "not an XKRX trading day" in holiday.reason
    late = session_window(cal, kst(date(2026, 11, 26), 16, 0), day=date(2026, 11, 26))
    assert isinstance(late, Closed) and "is over" in late.reason


def test_persist_drain_extends_past_the_close(cal: TradingCalendar) -> None:
    day = date(2026, 11, 26)
    got = session_window(cal, kst(day, 15, 35), day=day, extra=timedelta(minutes=15))
    assert isinstance(got, Window) and got.end == kst(day, 15, 45).astimezone(UTC)


def test_override_and_explicit_end_skip_the_calendar(cal: TradingCalendar) -> None:
    holiday = kst(date(2026, 1, 1), 12, 0)
    got = session_window(cal, holiday, override=holiday + timedelta(minutes=5))
    assert isinstance(got, Window) and got.reason == "session override"
    past = session_window(cal, holiday, until=holiday - timedelta(seconds=1))
    assert isinstance(past, Closed)


def test_parse_instant() -> None:
    assert parse_instant("2026-11-26T15:30") == kst(date(2026, 11, 26), 15, 30)
    assert parse_instant("2026-11-26T06:30:00+00:00") == kst(date(2026, 11, 26), 15, 30)
    assert parse_instant("15:30").astimezone(KST).time().hour == 15
    with pytest.raises(ValueError):
        parse_instant("half past three")
