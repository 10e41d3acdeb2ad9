"""What is stored, per (symbol, minute), asked of PostgreSQL.

Each question is one statement that probes the (symbol, ts) indexes once per
(symbol, minute) of the grid, so its cost follows the grid's size, not the day's volume: a
50M-row trades table answers as fast as an empty one. Trades count whichever broker stored
them (both brokers' feeds of a symbol merge on one natural key, first writer wins); books
count the broker under check only (each broker's snapshots are its own rows).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from tickguard.models import KST, GapKind

MINUTE = timedelta(minutes=1)

_GRID = """
SELECT s.symbol, m.minute
FROM unnest(%(symbols)s::text[]) AS s(symbol)
CROSS JOIN generate_series(%(start)s::timestamptz, %(last)s::timestamptz, '1 minute') AS m(minute)
CROSS JOIN LATERAL ({probe} LIMIT 1) AS hit
"""
_PROBE = {
    GapKind.TRADES: "SELECT 1 FROM trades t WHERE t.trading_day = ANY(%(days)s::date[])"
    ' AND t.symbol = s.symbol COLLATE "C"'
    " AND t.ts >= m.minute AND t.ts < m.minute + interval '1 minute'",
    GapKind.BOOK: "SELECT 1 FROM book_snapshots b WHERE b.trading_day = ANY(%(days)s::date[])"
    ' AND b.symbol = s.symbol COLLATE "C" AND b.broker = %(broker)s'
    " AND b.ts >= m.minute AND b.ts < m.minute + interval '1 minute'",
}
"""One index probe per (symbol, minute): the LATERAL … LIMIT 1 keeps the planner from
trading the probes for a scan of the whole table (it did, on 50M rows: 70 s instead of ms);
``trading_day`` prunes the partitions."""

_FIRST_AFTER = {  # strictly after: a disconnect gap starts AT the last frame received
    GapKind.TRADES: "SELECT min(ts) FROM trades WHERE trading_day = ANY(%(days)s::date[])"
    " AND symbol = %(symbol)s AND ts > %(start)s AND ts < %(end)s",
    GapKind.BOOK: "SELECT min(ts) FROM book_snapshots WHERE trading_day = ANY(%(days)s::date[])"
    " AND symbol = %(symbol)s AND broker = %(broker)s AND ts > %(start)s AND ts < %(end)s",
}


def days_of(start: datetime, end: datetime) -> list[date]:
    """Trading days (Seoul dates) that [start, end) touches: prunes the day partitions."""
    first, last = start.astimezone(KST).date(), (end - MINUTE).astimezone(KST).date()
    return [first + timedelta(days=i) for i in range(max(0, (last - first).days) + 1)]


_HALTS = """
SELECT symbol, start, "end" FROM halts
WHERE symbol = ANY(%s::text[]) AND start < %s AND ("end" IS NULL OR "end" > %s)
"""

_GAPS = """
SELECT symbol, kind, start, "end" FROM gaps
WHERE broker = %s AND symbol = ANY(%s::text[]) AND start < %s
  AND ("end" IS NULL OR "end" > %s)
"""


def active_minutes(
    conn: psycopg.Connection[Any],
    kind: GapKind,
    broker: str,
    symbols: Sequence[str],
    start: datetime,
    end: datetime,
) -> dict[str, set[datetime]]:
    """Minutes in [start, end) holding at least one row of ``kind``, per symbol."""
    found: dict[str, set[datetime]] = defaultdict(set)
    if not symbols or end <= start:
        return found
    params = {
        "symbols": list(symbols),
        "start": start,
        "last": end - MINUTE,
        "broker": broker,
        "days": days_of(start, end),
    }
    query = _GRID.format(probe=_PROBE[kind])
    for symbol, minute in conn.execute(query, params):
        found[symbol].add(minute)
    return found


def first_data_at(
    conn: psycopg.Connection[Any],
    kind: GapKind,
    broker: str,
    symbol: str,
    start: datetime,
    end: datetime,
) -> datetime | None:
    """The first stored row of ``kind`` in (start, end) (None: nothing yet)."""
    params = {
        "days": days_of(start, end),
        "symbol": symbol,
        "broker": broker,
        "start": start,
        "end": end,
    }
    row = conn.execute(_FIRST_AFTER[kind], params).fetchone()
    return None if row is None else row[0]


def _covered(
    spans: Sequence[tuple[datetime, datetime | None]], start: datetime, end: datetime
) -> set[datetime]:
    """Minutes of [start, end) that overlap any of ``spans`` (open-ended spans run on)."""
    minutes: set[datetime] = set()
    for span_start, span_end in spans:
        minute = max(start, span_start.replace(second=0, microsecond=0))
        stop = end if span_end is None else min(end, span_end)
        while minute < stop:
            minutes.add(minute)
            minute += MINUTE
    return minutes


def halted_minutes(
    conn: psycopg.Connection[Any], symbols: Sequence[str], start: datetime, end: datetime
) -> dict[str, set[datetime]]:
    """Minutes of [start, end) in which the feed reported each symbol halted (or in VI)."""
    spans: dict[str, list[tuple[datetime, datetime | None]]] = defaultdict(list)
    for symbol, h_start, h_end in conn.execute(_HALTS, (list(symbols), end, start)):
        spans[symbol].append((h_start, h_end))
    return {symbol: _covered(items, start, end) for symbol, items in spans.items()}


def gap_minutes(
    conn: psycopg.Connection[Any],
    broker: str,
    symbols: Sequence[str],
    start: datetime,
    end: datetime,
) -> dict[tuple[str, GapKind], set[datetime]]:
    """Minutes of [start, end) covered by known gaps, per (symbol, kind)."""
    spans: dict[tuple[str, GapKind], list[tuple[datetime, datetime | None]]] = defaultdict(list)
    for symbol, kind, g_start, g_end in conn.execute(_GAPS, (broker, list(symbols), end, start)):
        spans[(symbol, GapKind(kind))].append((g_start, g_end))
    return {key: _covered(items, start, end) for key, items in spans.items()}


_RECENT = """
SELECT symbol FROM trades
WHERE trading_day = ANY(%(days)s::date[]) AND ts >= %(start)s AND ts < %(end)s
UNION SELECT symbol FROM book_snapshots
WHERE trading_day = ANY(%(days)s::date[]) AND ts >= %(start)s AND ts < %(end)s
UNION SELECT symbol FROM gaps WHERE "end" IS NULL AND status = 'open'
ORDER BY 1
"""


def recent_symbols(conn: psycopg.Connection[Any], start: datetime, end: datetime) -> list[str]:
    """Symbols with data in [start, end) or an open gap: the default set to check when a
    run names none (prefect.yaml names the subscribed ones)."""
    params = {"start": start, "end": end, "days": days_of(start, end)}
    return [str(s) for (s,) in conn.execute(_RECENT, params)]
