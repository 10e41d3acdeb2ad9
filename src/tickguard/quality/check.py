"""One completeness check, as a plain function: the flow, the CLI and the drill all call it.

``run_check`` scans the window against the expected grid, finds continuity breaks, updates
the gap ledger (open, end), and — when asked — runs the GX suites on the window. It takes
every input explicitly (window, broker, symbols, calendar, settings); nothing here reads
the clock, so a late or manual run checks exactly the window it was given.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from tickguard.calendar import Phase, TradingCalendar
from tickguard.models import GapKind
from tickguard.quality import ledger
from tickguard.quality.continuity import find_breaks
from tickguard.quality.grid import GridParams
from tickguard.quality.gx_runner import GxReport
from tickguard.quality.scan import SymbolStatus, scan
from tickguard.quality.suites import SuiteSpec
from tickguard.quality.window import MINUTE, CheckWindow
from tickguard.settings import QualitySettings
from tickguard.store.migrate import libpq_url

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CheckReport:
    broker: str
    window: CheckWindow
    symbols: list[str]
    market_closed: str = ""
    """Why nothing was checked (holiday, outside the session); empty when checked."""
    status: list[SymbolStatus] = field(default_factory=list)
    changes: ledger.LedgerChanges = field(default_factory=ledger.LedgerChanges)
    breaks: int = 0
    sql_seconds: float = 0.0
    gx: GxReport | None = None

    @property
    def ok(self) -> bool:
        gx_ok = self.gx is None or self.gx.success
        return gx_ok and not self.changes.opened and self.breaks == 0

    def as_json(self) -> dict[str, Any]:
        gx = self.gx
        return {
            "broker": self.broker,
            "window": {"start": self.window.start.isoformat(), "end": self.window.end.isoformat()},
            "symbols": self.symbols,
            "market_closed": self.market_closed or None,
            "ok": self.ok,
            "gaps_opened": [_jsonable(g) for g in self.changes.opened],
            "gaps_ended": [_jsonable(g) for g in self.changes.ended],
            "continuity_breaks": self.breaks,
            "status": [s.as_row() for s in self.status],
            "sql_seconds": round(self.sql_seconds, 4),
            "gx": None
            if gx is None
            else {
                "success": gx.success,
                "seconds": round(gx.seconds, 4),
                "import_seconds": round(gx.import_seconds, 4),
                "data_docs": str(gx.docs_index) if gx.docs_index else None,
                "failed": [
                    {
                        "suite": o.suite,
                        "check": o.check,
                        "unexpected": o.unexpected,
                        "sample": o.sample,
                    }
                    for o in gx.outcomes
                    if not o.success
                ],
                "expectations": len(gx.outcomes),
            },
        }


def _jsonable(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in item.items()}


def grid_params(settings: QualitySettings) -> GridParams:
    return GridParams(
        empty_minutes=settings.empty_minutes,
        false_alarm_rate=settings.false_alarm_rate,
        max_empty_minutes=settings.max_empty_minutes,
        lookback_min=settings.lookback_min,
    )


def check_phase(calendar: TradingCalendar, window: CheckWindow) -> Phase:
    """The phase of the window's last minute (decides which expectations apply)."""
    return calendar.phase_at(window.end - MINUTE)


def run_check(
    database_url: str,
    window: CheckWindow,
    broker: str,
    symbols: Sequence[str],
    *,
    calendar: TradingCalendar,
    settings: QualitySettings,
    specs: Sequence[SuiteSpec] | None = None,
    docs_dir: Path | None = None,
    trades: bool = True,
) -> CheckReport:
    """Check the window; with ``specs`` also run those GX suites on it.

    ``trades=False`` judges books only: trades merge across brokers on one natural key, so
    their presence and continuity are judged once (for the first broker checked), not once
    per broker — else one loss would raise one incident per broker."""
    report = CheckReport(broker=broker, window=window, symbols=list(symbols))
    session = calendar.session(window.trading_day)
    if session is None:
        report.market_closed = f"{window.trading_day.isoformat()} is not an XKRX trading day"
        return report
    if window.end <= session.opening_auction_start or window.start >= session.close:
        report.market_closed = f"{window.label()} is outside the session"
        return report
    started = time.perf_counter()
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        kinds = (GapKind.TRADES, GapKind.BOOK) if trades else (GapKind.BOOK,)
        params = grid_params(settings)
        found = scan(conn, calendar, session, window, broker, symbols, params, kinds)
        report.status = found.status
        breaks = (
            find_breaks(conn, window.trading_day, symbols, window.start, window.end)
            if trades
            else []
        )
        report.breaks = len(breaks)
        ledger.record_runs(conn, broker, found.gaps, window.end, report.changes)
        ledger.record_breaks(conn, broker, breaks, session.open, report.changes)
        ledger.end_gaps(conn, broker, symbols, window.end, report.changes)
    report.sql_seconds = time.perf_counter() - started
    specs = [s for s in specs or () if trades or s.table != "trades"]
    if specs:
        from tickguard.quality.gx_runner import validate_window

        phase = check_phase(calendar, window)
        report.gx = validate_window(database_url, window, broker, symbols, phase, specs, docs_dir)
    log.info(
        "checked %s %s: %d gap(s) opened, %d ended",
        broker,
        window.label(),
        len(report.changes.opened),
        len(report.changes.ended),
    )
    return report
