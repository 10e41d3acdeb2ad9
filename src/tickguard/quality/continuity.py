"""Cumulative-volume continuity: ``cum_vol[n] − cum_vol[n−1] = qty[n]``, checked in SQL.

Both brokers send the day's cumulative volume with every trade, so a jump larger than the
trade's own quantity proves ticks were lost inside a connection that looked healthy (no
disconnect, no silence). Each trade of the window is compared with its predecessor of the
same symbol and day, found through the primary key (symbol, trading_day, cum_volume) — the
predecessor may lie before the window. A day's first trade is compared with zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import psycopg

BREAKS_SQL = """
SELECT b.symbol, prev.ts, b.ts, COALESCE(prev.cum_volume, 0), b.cum_volume, b.qty
FROM trades b
LEFT JOIN LATERAL (
    SELECT p.ts, p.cum_volume FROM trades p
    WHERE p.symbol = b.symbol AND p.trading_day = b.trading_day
      AND p.cum_volume < b.cum_volume
    ORDER BY p.cum_volume DESC LIMIT 1
) prev ON true
WHERE b.trading_day = %(day)s AND b.symbol = ANY(%(symbols)s::text[])
  AND b.ts >= %(start)s AND b.ts < %(end)s
  AND b.cum_volume - COALESCE(prev.cum_volume, 0) <> b.qty
ORDER BY b.symbol, b.cum_volume
"""


@dataclass(frozen=True, slots=True)
class ContinuityBreak:
    symbol: str
    previous_ts: datetime | None
    """Time of the last trade before the hole (None: the day's first trade)."""
    ts: datetime
    previous_cum_volume: int
    cum_volume: int
    qty: int

    @property
    def missing_volume(self) -> int:
        """Shares traded in ticks we never received."""
        return self.cum_volume - self.previous_cum_volume - self.qty


def find_breaks(
    conn: psycopg.Connection[Any],
    day: date,
    symbols: Sequence[str],
    start: datetime,
    end: datetime,
) -> list[ContinuityBreak]:
    """Breaks of the window's trades (symbols of ``day``, ts in [start, end))."""
    params = {"day": day, "symbols": list(symbols), "start": start, "end": end}
    return [
        ContinuityBreak(str(sym), prev_ts, ts, int(prev_cum), int(cum), int(qty))
        for sym, prev_ts, ts, prev_cum, cum, qty in conn.execute(BREAKS_SQL, params)
    ]
