"""The start gate of a long-running flow: may it run now, and until when?

Scheduled collectors start before the opening auction on every weekday; on an XKRX holiday
or after the close they must end at once as "market closed" instead of collecting nothing
all day. Late opens (first trading day of the year, CSAT day) move the window with the
calendar's session. ``session_end_override`` (simulated markets, demos) replaces the
calendar with one explicit end instant.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from tickguard.calendar import TradingCalendar
from tickguard.models import KST


@dataclass(frozen=True, slots=True)
class Window:
    """Run from now until ``end`` (UTC); ``day`` is the trading day being collected."""

    day: date
    end: datetime
    reason: str


@dataclass(frozen=True, slots=True)
class Closed:
    """Nothing to do: ``reason`` says why (holiday, session over)."""

    day: date
    reason: str


def parse_instant(value: str) -> datetime:
    """``HH:MM`` (KST, today) or an ISO datetime (naive = KST) → aware UTC datetime."""
    text = value.strip()
    if len(text) == 5 and text[2] == ":":
        today = datetime.now(KST).date()
        hour, minute = int(text[:2]), int(text[3:])
        return datetime(today.year, today.month, today.day, hour, minute, tzinfo=KST).astimezone(
            UTC
        )
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=KST)
    return parsed.astimezone(UTC)


def session_window(
    calendar: TradingCalendar,
    now: datetime,
    *,
    day: date | None = None,
    until: datetime | None = None,
    override: datetime | None = None,
    extra: timedelta = timedelta(0),
) -> Window | Closed:
    """Decide the run window at ``now``.

    ``until`` (a manual run's explicit end) and ``override`` (a simulated market) skip the
    calendar; otherwise the session of ``day`` (default: today in Seoul) ends the run at its
    close plus ``extra`` (persist keeps draining a while after the close).
    """
    today = day or now.astimezone(KST).date()
    explicit = until or override
    if explicit is not None:
        if explicit <= now:
            return Closed(today, f"end time {explicit.isoformat()} has passed")
        source = "explicit end" if until is not None else "session override"
        return Window(today, explicit.astimezone(UTC), source)
    session = calendar.session(today)
    if session is None:
        return Closed(today, f"market closed: {today.isoformat()} is not an XKRX trading day")
    end = (session.close + extra).astimezone(UTC)
    if end <= now:
        return Closed(today, f"market closed: the session of {today.isoformat()} is over")
    note = f" ({session.note})" if session.note else ""
    return Window(today, end, f"XKRX session {session.open:%H:%M}-{session.close:%H:%M} KST{note}")
