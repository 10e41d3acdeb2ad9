"""``run_backfill``: the one plain function behind the flow and ``tickguard backfill``.

Decides the span from the XKRX calendar (a day that is not a trading day, or whose session
has not closed yet, ends at once as "closed" — unless an explicit ``until`` is given, as
the drill does), reads the open gaps, then backfills symbols concurrently (``workers``), all
paced by one shared limiter per app key. A symbol that fails (its token cannot be had, the
broker answers outside its protocol) is reported with its error and its gaps stay open for
the next run; the others carry on. Returns a :class:`BackfillReport`; posting the
Slack digest and the Prefect artifact is the caller's choice (see ``report``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

import httpx
import psycopg
import redis.asyncio as aioredis

from tickguard.backfill.fetch import FetchStats
from tickguard.backfill.ledger import open_gaps
from tickguard.backfill.sources import build_sources
from tickguard.backfill.symbol import Db, SymbolResult, backfill_symbol
from tickguard.calendar import TradingCalendar
from tickguard.errors import TickguardError
from tickguard.models import KST, Broker
from tickguard.settings import Settings
from tickguard.store.writer import PostgresWriter

log = logging.getLogger(__name__)

HTTP_TIMEOUT_S = 15.0


@dataclass(slots=True)
class BackfillReport:
    day: date
    broker: Broker
    status: str
    """``done``, or ``closed`` (nothing to do: ``reason`` says why)."""
    reason: str = ""
    symbols: list[SymbolResult] = field(default_factory=list)
    stats: FetchStats = field(default_factory=FetchStats)

    def total(self, key: str) -> int:
        return sum(r.gaps.get(key, 0) for r in self.symbols)

    def totals(self) -> dict[str, object]:
        s = self.stats
        return {
            "day": self.day.isoformat(), "broker": self.broker.value, "status": self.status,
            "reason": self.reason, "symbols": len(self.symbols),
            "trades_filled": sum(r.trades_filled for r in self.symbols),
            "expected_volume": sum(r.expected_volume for r in self.symbols),
            "stored_volume": sum(r.stored_volume for r in self.symbols),
            "gaps_filled": self.total("trades_filled") + self.total("silent_filled"),
            "gaps_no_trades": self.total("trades_no_trades") + self.total("silent_no_trades"),
            "gaps_unrecoverable": self.total("trades_unrecoverable")
            + self.total("silent_unrecoverable"),
            "silent_losses": sum(v for r in self.symbols for k, v in r.gaps.items()
                                 if k.startswith("silent_")),
            "books_unrecoverable": self.total("books_unrecoverable"),
            "gaps_outside_span": self.total("trades_outside_span"),
            "minutes_unrecoverable": sum(r.minutes_unrecoverable for r in self.symbols),
            "errors": sum(1 for r in self.symbols if r.error),
            "backfill_requests": s.requests, "rate_limit_errors": s.rate_limit_errors,
            "rate_limit_errors_max_per_min": s.rate_limit_errors_max_per_min,
            "budget_rate_per_s": s.rate_per_s, "busy_s": round(s.busy_s, 2),
            "budget_used": round(s.budget_used, 3),
        }  # fmt: skip


def _same(ts: datetime) -> datetime:
    return ts


def span_of(
    calendar: TradingCalendar, day: date, until: datetime | None, now: datetime
) -> tuple[datetime, datetime] | str:
    """[start, end) to reconcile, or the reason there is nothing to do."""
    session = calendar.session(day)
    if until is not None:
        start = session.opening_auction_start if session else datetime.combine(day, time(8), KST)
        return start, until
    if session is None:
        return f"market closed: {day.isoformat()} is not an XKRX trading day"
    end = session.close + timedelta(minutes=1)  # the closing auction prints at the close
    if now < end:
        return (
            f"the session of {day.isoformat()} has not closed yet (close {session.close:%H:%M} KST)"
        )
    return session.opening_auction_start, end


async def run_backfill(
    settings: Settings,
    *,
    day: date,
    symbols: Sequence[str],
    broker: Broker,
    database_url: str,
    redis_url: str,
    until: datetime | None = None,
    workers: int = 4,
    calendar: TradingCalendar | None = None,
    on_symbol: Callable[[SymbolResult], None] | None = None,
    to_exchange: Callable[[datetime], datetime] | None = None,
    ledger_bounds: tuple[datetime, datetime] | None = None,
) -> BackfillReport:
    """Backfill ``symbols`` of ``day`` from ``broker``'s REST API (see the module docstring).

    ``ledger_bounds``: the span of the ledger's gap starts to read instead of the day's
    midnights in Asia/Seoul (a drill, whose collector stamps the wall clock while the
    simulated market plays its own trading day)."""
    span = span_of(calendar or TradingCalendar(), day, until, datetime.now(UTC))
    if isinstance(span, str):
        log.info("backfill %s %s: %s", broker.value, day, span)
        return BackfillReport(day, broker, "closed", span)
    report = BackfillReport(day, broker, "done")
    writer = PostgresWriter.connect(database_url)
    client = aioredis.Redis.from_url(redis_url)
    try:
        gaps = open_gaps(writer.conn, broker, day, symbols, ledger_bounds)
        log.info(
            "backfill %s %s: %d symbols, %d open gaps", broker.value, day, len(symbols), len(gaps)
        )
        async with httpx.AsyncClient(timeout=HTTP_TIMEOUT_S) as http:
            prefix = settings.sink.stream_prefix
            sources = build_sources(
                settings, broker, symbols, day, http, client, report.stats, prefix
            )
            db, gate = Db(writer), asyncio.Semaphore(max(1, workers))

            async def one(symbol: str) -> SymbolResult:
                mine = [g for g in gaps if g.symbol == symbol]
                try:
                    async with gate:
                        result = await backfill_symbol(
                            symbol, sources[symbol], db, mine, span, day, to_exchange or _same
                        )
                except (TickguardError, psycopg.Error) as exc:  # one symbol, not the run
                    log.error("backfill %s %s failed: %s", broker.value, symbol, exc)
                    result = SymbolResult(symbol, error=f"{type(exc).__name__}: {exc}")
                if on_symbol is not None:
                    on_symbol(result)
                return result

            report.symbols = list(await asyncio.gather(*(one(s) for s in symbols)))
    finally:
        await client.aclose()
        writer.close()
    log.info("backfill %s %s done: %s", broker.value, day, report.totals())
    return report
