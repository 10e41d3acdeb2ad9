"""What the database says about one symbol-day: open gaps, stored trades; and the labels.

Reads are plain SQL on a psycopg connection; writes go through the idempotent
:class:`~tickguard.store.writer.PostgresWriter` (trades with source ``rest``, minute bars,
and gap reports, whose upsert never moves a resolved gap back or sideways — which is what
makes a rerun of the backfill change nothing).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from tickguard.backfill.verify import StoredTrade
from tickguard.models import KST, Broker, Gap, GapKind, GapStatus

DAY = timedelta(days=1)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """[00:00, 24:00) of ``day`` in Asia/Seoul."""
    start = datetime(day.year, day.month, day.day, tzinfo=KST)
    return start, start + DAY


def open_gaps(
    conn: psycopg.Connection[Any],
    broker: Broker,
    day: date,
    symbols: Sequence[str],
    bounds: tuple[datetime, datetime] | None = None,
) -> list[Gap]:
    """Open gaps of the day for ``symbols`` (trades and books), oldest first. ``bounds``:
    the span of gap starts instead of the day's midnights (a drill's wall-clock ledger)."""
    start, end = bounds or day_bounds(day)
    rows = conn.execute(
        'SELECT id, symbol, kind, start, "end", cause, detail FROM gaps '
        "WHERE broker = %s AND status = 'open' AND start >= %s AND start < %s "
        "AND symbol = ANY(%s) ORDER BY start, symbol, kind",
        (broker.value, start, end, list(symbols)),
    ).fetchall()
    return [
        Gap(broker, sym, GapKind(kind), s, e, cause, id=gid, detail=dict(detail or {}))
        for gid, sym, kind, s, e, cause, detail in rows
    ]


def stored_trades(conn: psycopg.Connection[Any], symbol: str, day: date) -> dict[int, StoredTrade]:
    """The symbol's stored trades of the day by cumulative volume (any broker: one key)."""
    rows = conn.execute(
        "SELECT cum_volume, ts, price, qty FROM trades WHERE symbol = %s AND trading_day = %s",
        (symbol, day),
    )
    return {int(c): StoredTrade(ts, int(p), int(q)) for c, ts, p, q in rows}


def resolution(gap: Gap, status: GapStatus, reason: str, filled: int, end: datetime) -> Gap:
    """The report that closes ``gap`` (same natural key: the upsert merges it)."""
    detail: dict[str, object] = {"backfill": reason}
    return Gap(gap.broker, gap.symbol, gap.kind, gap.start, gap.end or end, "", status,
               rows_filled=filled, detail=detail)  # fmt: skip


def silent_gap(
    broker: Broker, symbol: str, window: tuple[datetime, datetime], status: GapStatus,
    reason: str, filled: int,
) -> Gap:  # fmt: skip
    """A gap no connection reported: found by reconciling minutes against REST bars."""
    detail: dict[str, object] = {"backfill": reason, "found_by": "minute reconciliation"}
    return Gap(broker, symbol, GapKind.TRADES, window[0], window[1],
               "silent loss: stored minute volume differed from REST minute bars", status,
               rows_filled=filled, detail=detail)  # fmt: skip
