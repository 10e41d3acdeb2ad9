"""Pure checks of a symbol's day: what is missing, what REST may write, what is proven.

The identity of a trade is (symbol, day, cumulative volume after it), so two facts prove a
day whole without trusting any single source: consecutive stored trades satisfy
``cum[n] − cum[n−1] = qty[n]`` (continuity: nothing lost inside a connection either), and
every minute's stored volume equals the broker's own minute bar. Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from tickguard.models import GapStatus, MinuteBar, Trade

MINUTE = timedelta(minutes=1)
Window = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class StoredTrade:
    ts: datetime
    price: int
    qty: int


def floor_minute(ts: datetime) -> datetime:
    return ts.replace(second=0, microsecond=0)


def minute_volumes(trades: Iterable[tuple[datetime, int]]) -> dict[datetime, int]:
    """(ts, qty) pairs → volume per minute start."""
    out: dict[datetime, int] = {}
    for ts, qty in trades:
        minute = floor_minute(ts)
        out[minute] = out.get(minute, 0) + qty
    return out


def bar_volumes(bars: Iterable[MinuteBar]) -> dict[datetime, int]:
    return {b.minute: b.volume for b in bars}


def mismatched_minutes(
    rest: Mapping[datetime, int], stored: Mapping[datetime, int]
) -> list[datetime]:
    """Minutes where the broker's bar volume and the stored volume differ (absent = 0)."""
    return sorted(m for m in set(rest) | set(stored) if rest.get(m, 0) != stored.get(m, 0))


def continuity_breaks(stored: Mapping[int, StoredTrade]) -> list[datetime]:
    """Times of the trades whose predecessor is missing (``cum − prev ≠ qty``)."""
    breaks, prev = [], 0
    for cum in sorted(stored):
        row = stored[cum]
        if cum - prev != row.qty:
            breaks.append(row.ts)
        prev = cum
    return breaks


def conflicts(fetched: Sequence[Trade], stored: Mapping[int, StoredTrade]) -> int:
    """Fetched trades whose key is stored with another price, quantity or second.

    For a derived cumulative volume (Kiwoom ka10079) any conflict means the derivation is
    off (a tick missing from the REST list), so nothing of that symbol may be written.
    """
    bad = 0
    for trade in fetched:
        row = stored.get(trade.cum_volume)
        if row is not None and (row.price, row.qty, row.ts) != (trade.price, trade.qty, trade.ts):
            bad += 1
    return bad


def merge_minutes(minutes: Iterable[datetime]) -> list[Window]:
    """Minute starts → [start, end) windows, consecutive minutes merged."""
    windows: list[Window] = []
    for minute in sorted(set(minutes)):
        if windows and windows[-1][1] == minute:
            windows[-1] = (windows[-1][0], minute + MINUTE)
        else:
            windows.append((minute, minute + MINUTE))
    return windows


def minutes_of(window: Window) -> list[datetime]:
    start, end = floor_minute(window[0]), window[1]
    out = []
    while start < end:
        out.append(start)
        start += MINUTE
    return out


def label(
    window: Window,
    rest: Mapping[datetime, int],
    stored: Mapping[datetime, int],
    breaks: Sequence[datetime],
) -> tuple[GapStatus, str]:
    """The verdict on one trade gap after the refill, with its reason."""
    minutes = minutes_of(window)
    bad = [m for m in minutes if rest.get(m, 0) != stored.get(m, 0)]
    if bad:
        short = sum(rest.get(m, 0) - stored.get(m, 0) for m in bad)
        return GapStatus.UNRECOVERABLE, (
            f"{len(bad)} minute(s) still differ from REST minute bars ({short} shares short)"
        )
    broken = [b for b in breaks if window[0] <= b < window[1]]
    if broken:
        return GapStatus.UNRECOVERABLE, f"{len(broken)} cumulative-volume break(s) remain"
    if sum(rest.get(m, 0) for m in minutes) == 0:
        return GapStatus.NO_TRADES, "REST minute bars show no trading in the window"
    return GapStatus.FILLED, "every minute matches REST minute bars; cumulative volume continuous"
