"""Pure reconciliation: continuity, minute volumes, conflicts, windows, verdicts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from tickguard.backfill.verify import (
    StoredTrade,
    conflicts,
    continuity_breaks,
    label,
    merge_minutes,
    minute_volumes,
    mismatched_minutes,
)
from tickguard.models import KST, Broker, GapStatus, Source, Trade

T0 = datetime(2026, 1, 19, 9, 0, tzinfo=KST)
M = timedelta(minutes=1)


def _stored(*rows: tuple[int, int, int]) -> dict[int, StoredTrade]:
    """(cum, qty, seconds after 09:00)."""
    return {cum: StoredTrade(T0 + timedelta(seconds=s), 100, qty) for cum, qty, s in rows}


def test_continuity_finds_the_trade_after_a_hole() -> None:
    assert continuity_breaks(_stored((5, 5, 0), (8, 3, 1), (10, 2, 2))) == []
    breaks = continuity_breaks(_stored((5, 5, 0), (12, 2, 70)))
    assert breaks == [T0 + timedelta(seconds=70)]
    assert continuity_breaks(_stored((9, 4, 3))) == [T0 + timedelta(seconds=3)]  # first is missing


def test_minute_volumes_agree_across_time_zones() -> None:
    kst = minute_volumes([(T0 + timedelta(seconds=59), 3), (T0, 2)])
    utc = {T0.astimezone(UTC): 5}
    assert mismatched_minutes(kst, utc) == []
    assert mismatched_minutes({T0: 5, T0 + M: 1}, {T0: 5}) == [T0 + M]


def test_conflicts_compare_price_qty_and_second() -> None:
    stored = _stored((5, 5, 0))
    same = Trade(Broker.KIS, "005930", date(2026, 1, 19), T0, 100, 5, None, 5, T0, Source.REST)
    other = Trade(Broker.KIS, "005930", date(2026, 1, 19), T0, 101, 5, None, 5, T0, Source.REST)
    assert conflicts([same], stored) == 0
    assert conflicts([other], stored) == 1


def test_merge_minutes_and_labels() -> None:
    assert merge_minutes([T0 + 2 * M, T0, T0 + M, T0 + 5 * M]) == [
        (T0, T0 + 3 * M), (T0 + 5 * M, T0 + 6 * M)]  # fmt: skip
    window = (T0 + timedelta(seconds=30), T0 + M + timedelta(seconds=10))  # touches 2 minutes
    rest = {T0: 10, T0 + M: 4}
    assert label(window, rest, {T0: 10, T0 + M: 4}, [])[0] is GapStatus.FILLED
    assert label(window, rest, {T0: 10, T0 + M: 1}, [])[0] is GapStatus.UNRECOVERABLE
    assert label(window, rest, rest, [T0 + M])[0] is GapStatus.UNRECOVERABLE
    assert label(window, {}, {}, [])[0] is GapStatus.NO_TRADES
