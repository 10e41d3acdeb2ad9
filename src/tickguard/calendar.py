"""The KRX (XKRX) trading calendar: trading days, session phases and the minute grid.

exchange-calendars knows the holidays and the open/close of each session; a small local
override table (``calendar_overrides.json`` beside this module, plus an optional file of the
user's) corrects what it does not know yet: CSAT (수능) days after 2020, when every session
time moves one hour later, and ad-hoc closures such as election days. Phases follow KRX:

    08:30-09:00  opening auction (orders collected, one print at the open)
    09:00-15:20  continuous trading
    15:20-15:30  closing auction (one print at the close)

shifted as a whole on late-open days (first trading day of the year opens at 10:00; CSAT days
run 10:00-16:30). exchange-calendars pulls in pandas (~3 s to import), so it is imported on
first use only and never by a collector's hot path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from tickguard.models import KST

OPENING_AUCTION = timedelta(minutes=30)
CLOSING_AUCTION = timedelta(minutes=10)
REGULAR_OPEN = time(9, 0)
REGULAR_CLOSE = time(15, 30)


class Phase(StrEnum):
    CLOSED = "closed"
    OPENING_AUCTION = "opening_auction"
    CONTINUOUS = "continuous"
    CLOSING_AUCTION = "closing_auction"


@dataclass(frozen=True, slots=True)
class Session:
    """One trading day's timetable, all times tz-aware in Asia/Seoul."""

    day: date
    open: datetime
    close: datetime
    note: str = ""

    @property
    def opening_auction_start(self) -> datetime:
        return self.open - OPENING_AUCTION

    @property
    def closing_auction_start(self) -> datetime:
        return self.close - CLOSING_AUCTION

    @property
    def late_open(self) -> bool:
        return self.open.timetz().replace(tzinfo=None) != REGULAR_OPEN

    def phase_at(self, ts: datetime) -> Phase:
        if ts < self.opening_auction_start or ts >= self.close:
            return Phase.CLOSED
        if ts < self.open:
            return Phase.OPENING_AUCTION
        if ts < self.closing_auction_start:
            return Phase.CONTINUOUS
        return Phase.CLOSING_AUCTION

    def minutes(self, *, continuous_only: bool = False) -> Iterator[datetime]:
        """Start of every minute from the open (or the opening auction) to the close."""
        start = self.open if continuous_only else self.opening_auction_start
        end = self.closing_auction_start if continuous_only else self.close
        minute = start
        while minute < end:
            yield minute
            minute += timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Override:
    """A correction to exchange-calendars: a closure, or a session with other times."""

    day: date
    closed: bool = False
    open: time | None = None
    close: time | None = None
    note: str = ""

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> Override:
        return cls(
            day=date.fromisoformat(item["day"]),
            closed=bool(item.get("closed", False)),
            open=time.fromisoformat(item["open"]) if item.get("open") else None,
            close=time.fromisoformat(item["close"]) if item.get("close") else None,
            note=str(item.get("note", "")),
        )


def load_overrides(extra: Path | None = None) -> dict[date, Override]:
    """The shipped override table, then the user's file (later entries win)."""
    shipped = resources.files("tickguard").joinpath("calendar_overrides.json").read_text("utf-8")
    items = list(json.loads(shipped)["overrides"])
    if extra is not None:
        items += json.loads(extra.read_text("utf-8"))["overrides"]
    return {ov.day: ov for ov in map(Override.from_json, items)}


@lru_cache(maxsize=1)
def _xkrx() -> Any:
    import exchange_calendars

    return exchange_calendars.get_calendar("XKRX", start="2020-01-01")


class TradingCalendar:
    """XKRX sessions with local overrides. Cheap to build; exchange-calendars loads lazily."""

    def __init__(self, overrides: dict[date, Override] | None = None) -> None:
        self._overrides = load_overrides() if overrides is None else overrides

    def session(self, day: date) -> Session | None:
        """The session of ``day``, or None when the market is closed that day."""
        override = self._overrides.get(day)
        if override is not None and override.closed:
            return None
        base = self._xkrx_session(day)
        if override is None:
            return base
        if base is None and (override.open is None or override.close is None):
            return None
        open_t = override.open or (
            base.open.timetz().replace(tzinfo=None) if base else REGULAR_OPEN
        )
        close_t = override.close or (
            base.close.timetz().replace(tzinfo=None) if base else REGULAR_CLOSE
        )
        return Session(
            day=day,
            open=datetime.combine(day, open_t, KST),
            close=datetime.combine(day, close_t, KST),
            note=override.note,
        )

    def is_trading_day(self, day: date) -> bool:
        return self.session(day) is not None

    def phase_at(self, ts: datetime) -> Phase:
        if ts.tzinfo is None:
            raise ValueError("phase_at needs a timezone-aware timestamp")
        session = self.session(ts.astimezone(KST).date())
        return Phase.CLOSED if session is None else session.phase_at(ts)

    def in_session(self, ts: datetime) -> bool:
        """True from the opening auction to the close of a trading day."""
        return self.phase_at(ts) is not Phase.CLOSED

    def next_trading_day(self, day: date) -> date:
        return self._step(day, 1)

    def previous_trading_day(self, day: date) -> date:
        return self._step(day, -1)

    def _step(self, day: date, direction: int) -> date:
        for offset in range(1, 30):
            candidate = day + timedelta(days=offset * direction)
            if self.is_trading_day(candidate):
                return candidate
        raise ValueError(f"no trading day within 30 days of {day.isoformat()}")

    @staticmethod
    def _xkrx_session(day: date) -> Session | None:
        import pandas as pd

        cal = _xkrx()
        label = pd.Timestamp(day)
        if label < cal.first_session or label > cal.last_session or not cal.is_session(label):
            return None
        return Session(
            day=day,
            open=cal.session_open(label).to_pydatetime().astimezone(KST),
            close=cal.session_close(label).to_pydatetime().astimezone(KST),
            note="first trading day of the year" if _is_first_of_year(cal, label) else "",
        )


def _is_first_of_year(cal: Any, label: Any) -> bool:
    previous = cal.previous_session(label) if label > cal.first_session else None
    return previous is None or bool(previous.year != label.year)
