"""Scan a window against the expected grid: every empty run that became a gap, per minute.

A scheduled run covers one minute; a manual rerun may cover a whole session. Either way the
grid is evaluated as it stood at the end of every minute of the window (with the lookback
before it), so a rerun over a day finds the same gaps the minute-by-minute runs found.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from tickguard.calendar import Session, TradingCalendar
from tickguard.models import GapKind
from tickguard.quality import presence
from tickguard.quality.grid import (
    EmptyRun,
    GridParams,
    activity_rate,
    eligible_minutes,
    trailing_run,
)
from tickguard.quality.window import MINUTE, CheckWindow


@dataclass(frozen=True, slots=True)
class SymbolStatus:
    """One (symbol, kind) at the end of the window, for the report and the artifact."""

    symbol: str
    kind: GapKind
    expected_minutes: int
    minutes_with_data: int
    rate: float | None
    empty_run: int
    threshold: int | None

    def as_row(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "kind": self.kind.value,
            "expected_minutes": self.expected_minutes,
            "minutes_with_data": self.minutes_with_data,
            "activity": None if self.rate is None else round(self.rate, 3),
            "empty_run": self.empty_run,
            "gap_after": self.threshold,
        }


@dataclass(slots=True)
class ScanResult:
    gaps: list[EmptyRun]
    status: list[SymbolStatus]


def _session_minutes(session: Session, start: datetime, end: datetime) -> list[datetime]:
    first = max(start, session.opening_auction_start)
    last = min(end, session.close)
    out: list[datetime] = []
    while first < last:
        out.append(first)
        first += MINUTE
    return out


def _prior_rate(
    conn: psycopg.Connection[Any],
    calendar: TradingCalendar,
    session: Session,
    kind: GapKind,
    broker: str,
    symbols: Sequence[str],
    params: GridParams,
) -> dict[str, float | None]:
    """Each symbol's activity over the previous session's last ``lookback_min`` minutes."""
    prev = calendar.session(calendar.previous_trading_day(session.day))
    if prev is None:
        return {}
    end = prev.closing_auction_start if kind is GapKind.TRADES else prev.close
    start = end - timedelta(minutes=params.lookback_min)
    minutes = eligible_minutes(prev, kind, _session_minutes(prev, start, end), set())
    active = presence.active_minutes(conn, kind, broker, symbols, start, end)
    return {s: activity_rate(minutes, active.get(s, set())) for s in symbols}


def scan(
    conn: psycopg.Connection[Any],
    calendar: TradingCalendar,
    session: Session,
    window: CheckWindow,
    broker: str,
    symbols: Sequence[str],
    params: GridParams,
    kinds: Sequence[GapKind] = (GapKind.TRADES, GapKind.BOOK),
) -> ScanResult:
    """Gaps (runs that reached their threshold) in the window, and each symbol's status."""
    start = window.start - timedelta(minutes=params.lookback_min)
    halted = presence.halted_minutes(conn, symbols, start, window.end)
    result = ScanResult([], [])
    for kind in kinds:
        active = presence.active_minutes(conn, kind, broker, symbols, start, window.end)
        known = presence.gap_minutes(conn, broker, symbols, start, window.end)
        prior: dict[str, float | None] | None = None
        for symbol in symbols:
            minutes = eligible_minutes(
                session,
                kind,
                _session_minutes(session, start, window.end),
                halted.get(symbol, set()),
            )
            mine = active.get(symbol, set())
            excluded = known.get((symbol, kind), set())
            if (
                prior is None
                and len([m for m in minutes if m < window.start]) < params.lookback_min
            ):
                prior = _prior_rate(conn, calendar, session, kind, broker, symbols, params)
            prior_rate = (prior or {}).get(symbol)
            last: EmptyRun | None = None
            seen: set[datetime] = set()
            for end in window.minutes():
                upto = [m for m in minutes if m <= end]  # ineligible end: judge the last
                if not upto:  # eligible minute (a gap before the closing auction still counts)
                    continue
                last = trailing_run(
                    symbol,
                    kind,
                    upto,
                    mine,
                    excluded=excluded,
                    prior_rate=prior_rate,
                    params=params,
                )
                if last is not None and last.is_gap and last.start not in seen:
                    seen.add(last.start)
                    result.gaps.append(last)
            in_window = [m for m in minutes if m >= window.start]
            history = [m for m in minutes if m not in excluded]
            rate = activity_rate(history, mine) if last is None else last.rate
            result.status.append(
                SymbolStatus(
                    symbol=symbol,
                    kind=kind,
                    expected_minutes=len(in_window),
                    minutes_with_data=sum(1 for m in in_window if m in mine),
                    rate=rate if rate is not None else prior_rate,
                    empty_run=0 if last is None else last.minutes,
                    threshold=None if last is None else last.threshold,
                )
            )
    return result
