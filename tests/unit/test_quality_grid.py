"""The expected grid and check windows, as pure functions."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickguard.calendar import TradingCalendar
from tickguard.models import KST, GapKind
from tickguard.quality.grid import GridParams, eligible, run_threshold, trailing_run
from tickguard.quality.window import CheckWindow

P = GridParams()
DAY = date(2026, 11, 25)


def m(hhmm: str, day: date = DAY) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=KST)


def span(first: str, count: int) -> list[datetime]:
    return [m(first) + timedelta(minutes=i) for i in range(count)]


def test_thresholds_follow_activity() -> None:
    assert run_threshold(1.0, P) == 5
    assert run_threshold(0.9, P) == 5  # 0.1**3 < 0.001 already: the floor of 5 holds
    assert run_threshold(0.3, P) == 20  # 0.7**20 ≈ 0.0008
    assert run_threshold(0.1, P) is None  # would need 66 minutes: not expected per minute
    assert run_threshold(0.0, P) is None and run_threshold(None, P) is None


@given(st.floats(min_value=0.01, max_value=0.999))
def test_a_gap_run_is_rarer_than_the_false_alarm_rate(rate: float) -> None:
    threshold = run_threshold(rate, P)
    if threshold is not None:
        assert (1 - rate) ** threshold <= P.false_alarm_rate
        assert P.empty_minutes <= threshold <= P.max_empty_minutes


def test_trailing_run_is_judged_by_history_before_it() -> None:
    minutes = span("09:00", 65)
    active = set(minutes[:60])  # liquid for an hour, then five empty minutes
    run = trailing_run(
        "A", GapKind.TRADES, minutes, active, excluded=set(), prior_rate=None, params=P
    )
    assert run is not None and run.is_gap
    assert (run.start, run.minutes, run.rate) == (m("10:00"), 5, 1.0)
    assert (
        trailing_run(
            "A", GapKind.TRADES, minutes[:60], active, excluded=set(), prior_rate=None, params=P
        )
        is None
    )


def test_short_history_falls_back_to_the_prior_rate() -> None:
    minutes = span("09:00", 8)
    active = set(minutes[:2])
    args = {"excluded": set(), "params": P}
    quiet = trailing_run("A", GapKind.TRADES, minutes, active, prior_rate=0.05, **args)  # type: ignore[arg-type]
    assert quiet is not None and not quiet.is_gap
    busy = trailing_run("A", GapKind.TRADES, minutes, active, prior_rate=1.0, **args)  # type: ignore[arg-type]
    assert busy is not None and busy.is_gap and busy.minutes == 6


def test_known_gap_minutes_do_not_lower_the_rate() -> None:
    minutes = span("09:00", 65)
    outage = set(minutes[10:40])
    active = set(minutes[:60]) - outage
    run = trailing_run(
        "A", GapKind.TRADES, minutes, active, excluded=outage, prior_rate=None, params=P
    )
    assert run is not None and run.rate == 1.0 and run.is_gap


def test_calendar_phases_decide_what_is_eligible() -> None:
    session = TradingCalendar().session(DAY)
    assert session is not None
    assert not eligible(session, GapKind.TRADES, m("08:45"))  # opening auction: no trades
    assert eligible(session, GapKind.BOOK, m("08:45"))
    assert eligible(session, GapKind.TRADES, m("09:00"))
    assert not eligible(session, GapKind.TRADES, m("15:25"))  # closing auction
    assert eligible(session, GapKind.BOOK, m("15:29")) and not eligible(
        session, GapKind.BOOK, m("15:30")
    )


def test_window_of_a_scheduled_run_is_the_minute_before_it() -> None:
    scheduled = datetime(2026, 11, 25, 1, 5, 0, 300_000, tzinfo=UTC)  # 10:05:00.3 KST
    window = CheckWindow.last_closed_minute(scheduled)
    assert (window.start, window.end) == (m("10:04"), m("10:05"))
    assert window.trading_day == DAY and window.label() == "2026-11-25 10:04-10:05 KST"
    with pytest.raises(ValueError, match="timezone-aware"):
        CheckWindow.last_closed_minute(datetime(2026, 11, 25, 10, 5))
    with pytest.raises(ValueError, match="whole minute"):
        CheckWindow(m("10:04") + timedelta(seconds=1), m("10:05"))


def test_flow_window_resolution() -> None:
    from tickguard.quality.flow import resolve_window

    cal = TradingCalendar()
    manual = resolve_window(cal, None, start="2026-11-25T10:00:30", end="2026-11-25T10:02:10")
    assert isinstance(manual, CheckWindow) and (manual.start, manual.end) == (
        m("10:00"),
        m("10:03"),
    )
    day = resolve_window(cal, None, trading_day="2026-11-25")
    assert isinstance(day, CheckWindow) and (day.start, day.end) == (m("08:30"), m("15:30"))
    assert "not an XKRX trading day" in str(resolve_window(cal, None, trading_day="2026-06-03"))
    with pytest.raises(ValueError, match="both start and end"):
        resolve_window(cal, None, start="10:00")
