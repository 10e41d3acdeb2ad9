"""Completeness checks on a real PostgreSQL: the grid, the gap ledger, continuity, halts."""

from __future__ import annotations

from datetime import date, timedelta

import psycopg
import pytest
from quality_rows import DAY, Tape, book, gaps, halt, kst, minutes, store

from tickguard.calendar import TradingCalendar
from tickguard.models import KST
from tickguard.quality.check import run_check
from tickguard.quality.window import CheckWindow
from tickguard.settings import QualitySettings
from tickguard.store.migrate import libpq_url

CAL = TradingCalendar()
SETTINGS = QualitySettings()


def window(hhmm: str, day: date = DAY) -> CheckWindow:
    start = kst(hhmm, day, second=0)
    return CheckWindow.of(start, start + timedelta(minutes=1))


def check(db_url: str, hhmm: str, symbols: list[str], day: date = DAY):  # type: ignore[no-untyped-def]
    return run_check(db_url, window(hhmm, day), "kis", symbols, calendar=CAL, settings=SETTINGS)


@pytest.fixture
def morning(db_url: str) -> dict[str, Tape]:
    """A: liquid until 09:59; B: one trade every 10 minutes; C: liquid, halted 09:40–10:10
    (and silent after it: only a run after 10:10 counts)."""
    tapes = {s: Tape(s) for s in ("005930", "000660", "035420")}
    a, b, c = tapes.values()
    store(
        db_url,
        trades=a.trades(minutes("09:00", "09:59"))
        + b.trades(minutes("09:00", "09:50", step=10))
        + c.trades(minutes("09:00", "09:39")),
        books=[book("005930", ts) for ts in minutes("08:31", "09:59")],
    )
    halt(db_url, "035420", kst("09:40", second=0), kst("10:10", second=0), "VI")
    return tapes


def test_liquid_symbol_gap_opens_after_five_empty_minutes_only(
    db_url: str, morning: dict[str, Tape]
) -> None:
    symbols = list(morning)
    assert check(db_url, "10:03", symbols).changes.opened == []  # 4 empty minutes: not yet
    report = check(db_url, "10:04", symbols)
    opened = {(g["symbol"], g["kind"]) for g in report.changes.opened}
    assert opened == {("005930", "trades"), ("005930", "book")}  # not the quiet B, not halted C
    rows = gaps(db_url)
    assert {r["start"] for r in rows} == {kst("10:00", second=0)}
    assert all(r["end"] is None and r["status"] == "open" for r in rows)
    assert all(str(r["cause"]).startswith("completeness: 5 expected minutes empty") for r in rows)
    again = check(db_url, "10:05", symbols)  # the same run grows: no second gap
    assert again.changes.opened == [] and len(gaps(db_url)) == 2
    status = {(s.symbol, s.kind.value): s for s in again.status}
    assert status[("000660", "trades")].threshold is None  # not expected minute by minute
    assert status[("005930", "trades")].empty_run == 6


def test_data_arriving_ends_the_gap_and_a_late_first_minute_is_filled(
    db_url: str, morning: dict[str, Tape]
) -> None:
    symbols = ["005930"]
    check(db_url, "10:04", symbols)
    store(db_url, trades=morning["005930"].trades(minutes("10:06", "10:07")))
    report = check(db_url, "10:07", symbols)
    ended = {g["kind"]: g for g in report.changes.ended}
    assert set(ended) == {"trades"}  # books did not come back
    assert ended["trades"]["end"] == kst("10:06") and ended["trades"]["status"] == "open"
    # books of the gap's first minute arrive late (persist lag): not a loss after all
    store(db_url, books=[book("005930", kst("10:00", second=30))])
    report = check(db_url, "10:08", symbols)
    assert [g["status"] for g in report.changes.ended] == ["filled"]
    assert {r["kind"]: r["status"] for r in gaps(db_url)} == {"trades": "open", "book": "filled"}


def test_continuity_break_opens_a_gap_at_once_with_its_end(db_url: str) -> None:
    tape = Tape("005930")
    store(db_url, trades=tape.trades(minutes("09:00", "09:20")))
    lost = tape.trades(minutes("09:21", "09:21"), skip=25)
    store(db_url, trades=lost + tape.trades(minutes("09:22", "09:25")))
    report = check(db_url, "09:21", ["005930"])
    assert report.breaks == 1
    (gap,) = gaps(db_url)
    assert (gap["start"], gap["end"]) == (kst("09:20"), kst("09:21"))
    assert "25 shares missing" in str(gap["cause"])
    assert check(db_url, "09:22", ["005930"]).breaks == 0


def test_collector_disconnect_gap_is_not_doubled_and_is_ended_by_data(
    db_url: str, morning: dict[str, Tape]
) -> None:
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        conn.execute(
            "INSERT INTO gaps (broker, symbol, kind, start, cause) VALUES"
            " ('kis', '005930', 'trades', %s, 'disconnect: no close frame')",
            (kst("09:59"),),
        )
    report = check(db_url, "10:04", ["005930"])
    assert {g["kind"] for g in report.changes.opened} == {"book"}
    store(db_url, trades=morning["005930"].trades(minutes("10:05", "10:05")))
    ended = check(db_url, "10:05", ["005930"]).changes.ended
    assert [(g["kind"], g["end"]) for g in ended] == [("trades", kst("10:05"))]


def test_holiday_and_outside_session_check_nothing(db_url: str) -> None:
    holiday = check(db_url, "10:00", ["005930"], day=date(2026, 6, 3))  # local election day
    assert "not an XKRX trading day" in holiday.market_closed
    evening = check(db_url, "18:00", ["005930"])
    assert "outside the session" in evening.market_closed
    assert gaps(db_url) == []


def test_whole_session_rerun_finds_what_minute_runs_found(
    db_url: str, morning: dict[str, Tape]
) -> None:
    start = kst("09:00", second=0)
    report = run_check(
        db_url,
        CheckWindow.of(start, start + timedelta(minutes=90)),
        "kis",
        list(morning),
        calendar=CAL,
        settings=SETTINGS,
    )
    starts = {(g["symbol"], g["kind"], g["start"].astimezone(KST)) for g in report.changes.opened}
    assert starts == {
        ("005930", "trades", kst("10:00", second=0)),
        ("005930", "book", kst("10:00", second=0)),
        ("035420", "trades", kst("10:10", second=0)),  # silent once its halt ended
    }
