"""The completeness run: check a window for each broker, then tell Slack what changed.

This is the one function the Prefect flow, ``tickguard check`` and the drill call. It reads
no clock: "now" for escalation and session rules is the end of the checked window, so a
late run (a worker back from an outage runs its backlog in a burst) behaves as if it had run
on time, and a manual rerun of a past window posts no stale escalations.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg

from tickguard.alerting.incidents import IncidentDesk, Moment, SyncResult
from tickguard.alerting.slack import SlackPoster
from tickguard.calendar import TradingCalendar
from tickguard.quality.check import CheckReport, run_check
from tickguard.quality.presence import recent_symbols
from tickguard.quality.suites import load_specs
from tickguard.quality.window import MINUTE, CheckWindow
from tickguard.settings import Settings
from tickguard.store.migrate import libpq_url

log = logging.getLogger(__name__)


@dataclass(slots=True)
class CompletenessResult:
    window: CheckWindow
    reports: list[CheckReport] = field(default_factory=list)
    incidents: dict[str, SyncResult] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.reports)

    def as_json(self) -> dict[str, Any]:
        return {
            "window": {"start": self.window.start.isoformat(), "end": self.window.end.isoformat()},
            "ok": self.ok,
            "checks": [r.as_json() for r in self.reports],
            "slack_messages": sum(s.messages for s in self.incidents.values()),
        }

    def table(self) -> list[dict[str, Any]]:
        """One row per (broker, symbol, kind): the artifact's table."""
        rows = []
        for report in self.reports:
            opened = {(g["symbol"], g["kind"]) for g in report.changes.opened}
            for status in report.status:
                row = {"broker": report.broker, **status.as_row()}
                row["gap_opened"] = (status.symbol, status.kind.value) in opened
                rows.append(row)
        return rows


def moment_of(calendar: TradingCalendar, window: CheckWindow, run_url: str) -> Moment:
    """Session facts at the end of the window (the run's reference instant)."""
    last = window.end - MINUTE
    session = calendar.session(window.trading_day)
    after_close = session is not None and window.end >= session.close
    start = session.opening_auction_start if session is not None else None
    in_session = calendar.in_session(last)
    return Moment(window.end, window.trading_day, in_session, after_close, run_url, start)


def _default_symbols(database_url: str, window: CheckWindow, lookback_min: int) -> list[str]:
    start = window.start - timedelta(minutes=lookback_min)
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        return recent_symbols(conn, start, window.end)


def run_completeness(
    settings: Settings,
    database_url: str,
    window: CheckWindow,
    brokers: Sequence[str],
    symbols: Sequence[str],
    *,
    calendar: TradingCalendar | None = None,
    poster: SlackPoster | None = None,
    run_url: str = "",
    validate: bool = True,
    notify: bool = True,
) -> CompletenessResult:
    """Check ``window`` for every broker, update the ledger, sync Slack incidents."""
    calendar = calendar or TradingCalendar()
    result = CompletenessResult(window)
    specs = load_specs() if validate else None
    docs_dir = settings.data_dir / "data_docs"
    if not symbols:
        symbols = _default_symbols(database_url, window, settings.quality.lookback_min)
    for index, broker in enumerate(brokers):
        report = run_check(
            database_url,
            window,
            broker,
            symbols,
            calendar=calendar,
            settings=settings.quality,
            specs=specs,
            docs_dir=docs_dir,
            trades=index == 0,  # trades merge across brokers: judged once
        )
        result.reports.append(report)
    if not notify or all(
        r.market_closed and "not an XKRX" in r.market_closed for r in result.reports
    ):
        return result
    poster = poster or SlackPoster(settings.slack)
    moment = moment_of(calendar, window, run_url)
    escalate = timedelta(minutes=settings.quality.escalate_after_min)
    with psycopg.connect(libpq_url(database_url), autocommit=True) as conn:
        for broker in brokers:
            result.incidents[broker] = IncidentDesk(conn, poster, broker, escalate).sync(moment)
    return result
