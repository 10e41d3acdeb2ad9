"""The expected grid: which (symbol, minute) should hold data, and when silence is a gap.

Three sources decide it:

- the calendar: trades are expected only in continuous trading (an auction prints once),
  book updates in every session minute, nothing on a holiday;
- each symbol's recent activity: the share ``p`` of its recent eligible minutes that held
  data. A liquid symbol (p ≈ 1) has a gap after ``empty_minutes`` empty minutes (5, from
  the incident analysis). A quiet one needs a longer run: the run length ``k`` at which
  ``(1 - p) ** k`` falls below ``false_alarm_rate``, i.e. silence that unlikely by chance.
  A symbol whose ``k`` exceeds ``max_empty_minutes`` is not expected minute by minute;
- halts and VIs the feed reported: those minutes are not expected at all.

The rate is measured on the minutes *before* the current empty run (and outside known gaps),
so an outage does not lower the bar it is judged by. Everything here is pure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from tickguard.calendar import Phase, Session
from tickguard.models import GapKind

MIN_HISTORY = 15
"""Eligible minutes of history needed before today's own rate is trusted."""


@dataclass(frozen=True, slots=True)
class GridParams:
    empty_minutes: int = 5
    false_alarm_rate: float = 0.001
    max_empty_minutes: int = 60
    lookback_min: int = 60


@dataclass(frozen=True, slots=True)
class EmptyRun:
    """A trailing run of expected-but-empty minutes of one (symbol, kind)."""

    symbol: str
    kind: GapKind
    start: datetime
    minutes: int
    threshold: int | None
    """Run length that makes it a gap; None: the symbol is not expected minute by minute."""
    rate: float | None

    @property
    def is_gap(self) -> bool:
        return self.threshold is not None and self.minutes >= self.threshold


def eligible(session: Session, kind: GapKind, minute: datetime) -> bool:
    """Does the calendar expect ``kind`` data in ``minute`` at all?"""
    phase = session.phase_at(minute)
    if kind is GapKind.TRADES:
        return phase is Phase.CONTINUOUS
    return phase is not Phase.CLOSED


def eligible_minutes(
    session: Session, kind: GapKind, minutes: Iterable[datetime], halted: set[datetime]
) -> list[datetime]:
    return [m for m in minutes if m not in halted and eligible(session, kind, m)]


def run_threshold(rate: float | None, params: GridParams) -> int | None:
    """Empty minutes in a row that make a gap at activity ``rate`` (None: never)."""
    if rate is None or rate <= 0:
        return None
    if rate >= 1:
        return params.empty_minutes
    needed = math.ceil(math.log(params.false_alarm_rate) / math.log(1 - rate))
    threshold = max(params.empty_minutes, needed)
    return threshold if threshold <= params.max_empty_minutes else None


def activity_rate(history: Sequence[datetime], active: set[datetime]) -> float | None:
    """Share of ``history`` minutes with data; None when there is too little history."""
    if len(history) < MIN_HISTORY:
        return None
    return sum(1 for m in history if m in active) / len(history)


def trailing_run(
    symbol: str,
    kind: GapKind,
    minutes: Sequence[datetime],
    active: set[datetime],
    *,
    excluded: set[datetime],
    prior_rate: float | None,
    params: GridParams,
) -> EmptyRun | None:
    """The empty run at the end of ``minutes`` (eligible, ordered), judged by the history
    before it (minus ``excluded`` minutes of known gaps); None when the last minute has data."""
    split = len(minutes)
    while split > 0 and minutes[split - 1] not in active:
        split -= 1
    if split == len(minutes):
        return None
    history = [m for m in minutes[:split] if m not in excluded]
    rate = activity_rate(history, active)
    if rate is None:
        rate = prior_rate
    return EmptyRun(
        symbol=symbol,
        kind=kind,
        start=minutes[split],
        minutes=len(minutes) - split,
        threshold=run_threshold(rate, params),
        rate=rate,
    )
