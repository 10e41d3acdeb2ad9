"""One symbol's backfill: reconcile every minute, refill, re-verify, label.

Steps, for one symbol-day between ``start`` and ``end``:

Gap times are the ledger's (the collector's clock); ``to_exchange`` maps them onto exchange
time — the identity in production, the simulator's clock in a drill of a simulated session.

1. the broker's minute bars (REST) against the stored per-minute volume and the stored
   cumulative-volume continuity → the suspect minutes;
2. REST trades for the suspect minutes; every fetched key that is already stored must agree
   (price, qty, second) — otherwise nothing of the symbol is written (a derived Kiwoom
   cumulative volume that disagrees is wrong, not new);
3. write the missing trades (source ``rest``) and the minute bars through the idempotent
   writer, read back, verify again;
4. label each open trade gap ``filled`` / ``no_trades`` / ``unrecoverable`` with the reason,
   each book gap ``unrecoverable`` (no history API), and report minutes that differed where
   no gap was open as new ("silent loss") gaps.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TypeVar

from tickguard.backfill import verify
from tickguard.backfill.fetch import HistorySource
from tickguard.backfill.ledger import resolution, silent_gap, stored_trades
from tickguard.models import Batch, Broker, Gap, GapKind, GapStatus
from tickguard.store.writer import PostgresWriter

log = logging.getLogger(__name__)
T = TypeVar("T")
BOOKS_REASON = "order books have no history API"


@dataclass(slots=True)
class SymbolResult:
    symbol: str
    expected_volume: int = 0
    """Sum of the broker's minute-bar volumes over the reconciled span."""
    stored_volume_before: int = 0
    stored_volume: int = 0
    trades_filled: int = 0
    minutes_mismatched_before: int = 0
    minutes_unrecoverable: int = 0
    gaps: dict[str, int] = field(default_factory=dict)
    """``trades_filled`` / ``trades_no_trades`` / ``trades_unrecoverable`` / ``books_unrecoverable``
    / ``silent_…`` → count."""
    conflicts: int = 0
    error: str = ""

    def count(self, key: str) -> None:
        self.gaps[key] = self.gaps.get(key, 0) + 1


class Db:
    """The run's one writer connection, used from worker threads one call at a time."""

    def __init__(self, writer: PostgresWriter) -> None:
        self.writer = writer
        self._lock = asyncio.Lock()

    async def run(self, fn: Callable[[], T]) -> T:
        async with self._lock:
            return await asyncio.to_thread(fn)


def _span_volumes(
    stored: dict[int, verify.StoredTrade], start: datetime, end: datetime
) -> dict[datetime, int]:
    return verify.minute_volumes((r.ts, r.qty) for r in stored.values() if start <= r.ts < end)


async def backfill_symbol(
    symbol: str,
    source: HistorySource,
    db: Db,
    gaps: list[Gap],
    span: tuple[datetime, datetime],
    day: date,
    to_exchange: Callable[[datetime], datetime] = lambda ts: ts,
) -> SymbolResult:
    """Reconcile, refill and label one symbol (see the module docstring)."""
    start, end = span
    result = SymbolResult(symbol)
    bars = await source.minute_bars(symbol, start, end)
    rest = verify.bar_volumes(bars)
    stored = await db.run(lambda: stored_trades(db.writer.conn, symbol, day))
    before = _span_volumes(stored, start, end)
    mismatched = verify.mismatched_minutes(rest, before)
    breaks = [b for b in verify.continuity_breaks(stored) if start <= b < end]
    result.expected_volume = sum(rest.values())
    result.stored_volume_before = sum(before.values())
    result.minutes_mismatched_before = len(mismatched)
    suspect = verify.merge_minutes([*mismatched, *map(verify.floor_minute, breaks)])
    if suspect:
        result.trades_filled = await _refill(symbol, source, db, stored, suspect, result)
    if bars:
        await db.run(lambda: db.writer.write_bars(bars))
    after_rows = await db.run(lambda: stored_trades(db.writer.conn, symbol, day))
    after = _span_volumes(after_rows, start, end)
    breaks_after = [b for b in verify.continuity_breaks(after_rows) if start <= b < end]
    result.stored_volume = sum(after.values())
    result.minutes_unrecoverable = len(verify.mismatched_minutes(rest, after))
    volumes = (rest, after)
    reports = _labels(
        source.broker, symbol, gaps, mismatched, span, volumes, breaks_after, result, to_exchange
    )
    if reports:
        await db.run(lambda: db.writer.write(Batch(gaps=reports)))
    return result


async def _refill(
    symbol: str,
    source: HistorySource,
    db: Db,
    stored: dict[int, verify.StoredTrade],
    windows: list[verify.Window],
    result: SymbolResult,
) -> int:
    fetched = await source.trades(symbol, windows)
    result.conflicts = verify.conflicts(fetched, stored)
    if result.conflicts:
        result.error = (
            f"{result.conflicts} REST trade(s) disagree with stored rows: nothing written"
        )
        log.warning("backfill %s: %s", symbol, result.error)
        return 0
    missing = [
        t for t in fetched
        if t.cum_volume not in stored and any(a <= t.ts < b for a, b in windows)
    ]  # fmt: skip
    if not missing:
        return 0
    written = await db.run(lambda: db.writer.write(Batch(trades=missing)))
    return written.trades_inserted


def _labels(
    broker: Broker,
    symbol: str,
    gaps: list[Gap],
    mismatched: list[datetime],
    span: tuple[datetime, datetime],
    volumes: tuple[dict[datetime, int], dict[datetime, int]],
    breaks: list[datetime],
    result: SymbolResult,
    to_exchange: Callable[[datetime], datetime],
) -> list[Gap]:
    """Gap reports: a verdict per open gap, plus new gaps for minutes no gap covered."""
    start, end = span
    rest, after = volumes
    reports: list[Gap] = []
    covered: set[datetime] = set()
    for gap in gaps:
        if gap.kind is GapKind.BOOK:
            reports.append(resolution(gap, GapStatus.UNRECOVERABLE, BOOKS_REASON, 0, end))
            result.count("books_unrecoverable")
            continue
        gap_end = to_exchange(gap.end) if gap.end is not None else end
        window = (max(to_exchange(gap.start), start), min(gap_end, end))
        if window[1] <= window[0]:  # not in the reconciled span: stays open for a later run
            result.count("trades_outside_span")
            continue
        covered.update(verify.minutes_of(window))
        status, reason = verify.label(window, rest, after, breaks)
        reports.append(resolution(gap, status, reason, result.trades_filled, end))
        result.count(f"trades_{status.value}")
    for window in verify.merge_minutes(m for m in mismatched if m not in covered):
        status, reason = verify.label(window, rest, after, breaks)
        reports.append(silent_gap(broker, symbol, window, status, reason, 0))
        result.count(f"silent_{status.value}")
    return reports
