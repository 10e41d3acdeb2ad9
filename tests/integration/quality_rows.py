"""Rows for the completeness tests: trades with continuous cumulative volume, books, halts.

Written through the real PostgresWriter, so the tests read what persist would have stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

import psycopg

from tickguard.models import KST, Batch, BookSnapshot, Broker, Side, Trade
from tickguard.quality.halts import end_halt, report_halt
from tickguard.store.migrate import libpq_url
from tickguard.store.writer import PostgresWriter

DAY = date(2026, 11, 25)
"""A Wednesday, an XKRX trading day; its previous trading day is 2026-11-24."""


def kst(hhmm: str, day: date = DAY, second: int = 10) -> datetime:
    hour, minute = map(int, hhmm.split(":"))
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=KST)


def minutes(first: str, last: str, day: date = DAY, step: int = 1) -> list[datetime]:
    """Second 10 of every ``step``-th minute from ``first`` to ``last`` inclusive (KST)."""
    out, ts = [], kst(first, day)
    while ts <= kst(last, day):
        out.append(ts)
        ts += timedelta(minutes=step)
    return out


class Tape:
    """One symbol's trades of one day with a running cumulative volume."""

    def __init__(self, symbol: str, day: date = DAY, price: int = 70_000) -> None:
        self.symbol, self.day, self.price, self.cum = symbol, day, price, 0

    def trades(self, times: Iterable[datetime], qty: int = 10, skip: int = 0) -> list[Trade]:
        """A trade at each time; ``skip`` shares vanish before the first (a lost tick)."""
        out = []
        self.cum += skip
        for ts in times:
            self.cum += qty
            out.append(
                Trade(
                    Broker.KIS, self.symbol, self.day, ts, self.price, qty, Side.BUY, self.cum, ts
                )
            )
        return out


def book(
    symbol: str, ts: datetime, *, crossed: bool = False, broker: Broker = Broker.KIS
) -> BookSnapshot:
    ask0 = 69_900 if crossed else 70_100
    asks = tuple((ask0 + 100 * i, 5) for i in range(10))
    bids = tuple((70_000 - 100 * i, 5) for i in range(10))
    return BookSnapshot(broker, symbol, ts.astimezone(KST).date(), ts, asks, bids, 50, 50, ts)


def store(db_url: str, *, trades: Iterable[Trade] = (), books: Iterable[BookSnapshot] = ()) -> None:
    writer = PostgresWriter.connect(db_url)
    try:
        writer.write(Batch(trades=list(trades), books=list(books)))
    finally:
        writer.close()


def halt(
    db_url: str, symbol: str, start: datetime, end: datetime | None, reason: str = "halt"
) -> None:
    """Report a halt through the feed-side seam (open, then ended when ``end`` is given)."""
    with psycopg.connect(libpq_url(db_url), autocommit=True) as conn:
        report_halt(conn, "kis", symbol, start, None, reason)
        report_halt(conn, "kis", symbol, start, None, reason)  # a repeated report: no change
        if end is not None:
            assert end_halt(conn, "kis", symbol, end) == 1


def gaps(db_url: str) -> list[dict[str, object]]:
    with psycopg.connect(libpq_url(db_url)) as conn:
        cur = conn.execute(
            'SELECT id, broker, symbol, kind, start, "end", cause, status FROM gaps ORDER BY id'
        )
        names = [c.name for c in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
