from datetime import date, datetime, time

import pytest

from tickguard.calendar import Override, Phase, TradingCalendar
from tickguard.models import KST


@pytest.fixture(scope="module")
def cal() -> TradingCalendar:
    return TradingCalendar()


def at(day: str, hhmm: str) -> datetime:
    return datetime.combine(date.fromisoformat(day), time.fromisoformat(hhmm), KST)


def test_regular_day_phases(cal: TradingCalendar) -> None:
    session = cal.session(date(2026, 11, 26))
    assert session is not None
    assert session.open == at("2026-11-26", "09:00")
    assert session.close == at("2026-11-26", "15:30")
    assert not session.late_open
    assert cal.phase_at(at("2026-11-26", "08:29")) is Phase.CLOSED
    assert cal.phase_at(at("2026-11-26", "08:30")) is Phase.OPENING_AUCTION
    assert cal.phase_at(at("2026-11-26", "09:00")) is Phase.CONTINUOUS
    assert cal.phase_at(at("2026-11-26", "15:20")) is Phase.CLOSING_AUCTION
    assert cal.phase_at(at("2026-11-26", "15:30")) is Phase.CLOSED


def test_holidays_and_weekends_are_closed(cal: TradingCalendar) -> None:
    assert not cal.is_trading_day(date(2026, 12, 31))  # KRX year-end closure
    assert not cal.is_trading_day(date(2026, 5, 1))  # Labour day
    assert not cal.is_trading_day(date(2026, 11, 28))  # Saturday
    assert not cal.is_trading_day(date(2026, 6, 3))  # local election (override)
    assert not cal.in_session(at("2026-12-31", "10:00"))


def test_late_opens(cal: TradingCalendar) -> None:
    first = cal.session(date(2026, 1, 2))
    assert first is not None and first.open == at("2026-01-02", "10:00") and first.late_open
    assert first.close == at("2026-01-02", "15:30")
    csat = cal.session(date(2026, 11, 19))
    assert csat is not None and csat.late_open
    assert (csat.open, csat.close) == (at("2026-11-19", "10:00"), at("2026-11-19", "16:30"))
    assert cal.phase_at(at("2026-11-19", "09:15")) is Phase.CLOSED
    assert cal.phase_at(at("2026-11-19", "09:45")) is Phase.OPENING_AUCTION
    assert cal.phase_at(at("2026-11-19", "16:25")) is Phase.CLOSING_AUCTION


def test_minute_grid(cal: TradingCalendar) -> None:
    session = cal.session(date(2026, 11, 26))
    assert session is not None
    continuous = list(session.minutes(continuous_only=True))
    assert continuous[0] == at("2026-11-26", "09:00")
    assert continuous[-1] == at("2026-11-26", "15:19")
    assert len(continuous) == 380
    assert len(list(session.minutes())) == 420


def test_next_and_previous_trading_day(cal: TradingCalendar) -> None:
    assert cal.next_trading_day(date(2026, 11, 27)) == date(2026, 11, 30)
    assert cal.previous_trading_day(date(2027, 1, 4)) == date(2026, 12, 30)


def test_user_override_adds_a_closure() -> None:
    cal = TradingCalendar({date(2026, 11, 26): Override(day=date(2026, 11, 26), closed=True)})
    assert not cal.is_trading_day(date(2026, 11, 26))


def test_naive_timestamp_is_refused(cal: TradingCalendar) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        cal.phase_at(datetime(2026, 11, 26, 10, 0))
