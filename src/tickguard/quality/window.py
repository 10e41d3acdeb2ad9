"""The window a completeness check covers.

A scheduled run checks the last *closed* minute before its scheduled start, never the minute
of ``now()``: a worker that comes back after an outage runs its late runs in a burst, and
each must still check its own minute. Manual reruns give the window explicitly.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from tickguard.models import KST

MINUTE = timedelta(minutes=1)


def floor_minute(ts: datetime) -> datetime:
    """The start of the minute holding ``ts`` (tz-aware in, UTC out)."""
    if ts.tzinfo is None:
        raise ValueError("a check window needs timezone-aware timestamps")
    return ts.astimezone(UTC).replace(second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class CheckWindow:
    """[start, end) in UTC, whole minutes."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        for name in ("start", "end"):
            value = getattr(self, name)
            if value.tzinfo is None:
                raise ValueError(f"window {name} must be timezone-aware")
            if floor_minute(value) != value:
                raise ValueError(f"window {name} must be a whole minute: {value.isoformat()}")
        if self.end <= self.start:
            raise ValueError("window must end after it starts")

    @classmethod
    def of(cls, start: datetime, end: datetime) -> CheckWindow:
        """From any aware instants: start floored, end rounded up to whole minutes."""
        end_floor = floor_minute(end)
        return cls(floor_minute(start), end_floor if end_floor == end else end_floor + MINUTE)

    @classmethod
    def last_closed_minute(cls, scheduled: datetime) -> CheckWindow:
        """The minute that closed at or before ``scheduled`` (the run's scheduled start)."""
        end = floor_minute(scheduled)
        return cls(end - MINUTE, end)

    @property
    def trading_day(self) -> date:
        return self.start.astimezone(KST).date()

    def minutes(self) -> Iterator[datetime]:
        minute = self.start
        while minute < self.end:
            yield minute
            minute += MINUTE

    def label(self) -> str:
        """Short KST label for messages and artifacts, e.g. ``2026-11-26 10:05-10:06 KST``."""
        start, end = self.start.astimezone(KST), self.end.astimezone(KST)
        return f"{start:%Y-%m-%d %H:%M}-{end:%H:%M} KST"
