"""Follow a session: one long-lived completeness run that checks every minute as it closes.

Why (``docs/adr/0007-completeness-per-minute-shape.md``): a fresh process per minute pays
the imports every minute — Prefect ~1.6 s, exchange-calendars/pandas ~3 s, Great
Expectations ~3.6 s — about 9 CPU-seconds a minute, a sixth of a core all session long on
a 2-core host shared with the collectors. Kept alive, a minute's check costs ~0.2 s (SQL +
GX) plus ~0.5 s for the Data Docs.

The windows still come from the schedule, never from the clock: minute k of the run is
``[first + k, first + k + 1)``. The clock only says when a minute is ready (its end plus
``SETTLE`` for persist's lag); a run that fell behind checks the backlog back to back. It
stops after the minute that ends at the close (+1 for the digest) or on SIGTERM.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from tickguard.calendar import TradingCalendar
from tickguard.orchestration import runtime
from tickguard.quality.completeness import CompletenessResult, run_completeness
from tickguard.quality.window import MINUTE, CheckWindow
from tickguard.settings import Settings

log = logging.getLogger(__name__)

SETTLE = timedelta(seconds=10)
"""How long after a minute's end its rows are expected stored (persist lag, batching)."""


@dataclass(slots=True)
class FollowSummary:
    minutes: int = 0
    gaps_opened: int = 0
    slack_messages: int = 0
    last: CompletenessResult | None = None
    opened: list[dict[str, object]] = field(default_factory=list)


def _last_minute(calendar: TradingCalendar, first: CheckWindow) -> datetime:
    """Start of the last minute to check: the one ending one minute after the close."""
    session = calendar.session(first.trading_day)
    if session is None:
        return first.start
    return session.close.astimezone(UTC)


async def follow_session(
    settings: Settings,
    database_url: str,
    first: CheckWindow,
    brokers: Sequence[str],
    symbols: Sequence[str],
    *,
    calendar: TradingCalendar,
    run_url: str = "",
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    settle: timedelta = SETTLE,
) -> FollowSummary:
    """Check ``first`` and every following minute up to the close, each once it is ready."""
    summary = FollowSummary()
    stop = asyncio.Event()
    last_start = _last_minute(calendar, first)
    window = first
    with runtime.stop_on_sigterm(stop.set):
        while window.start <= last_start and not stop.is_set():
            wait = (window.end + settle - clock()).total_seconds()
            if wait > 0:
                try:
                    await asyncio.wait_for(stop.wait(), timeout=wait)
                    break  # stopped while waiting
                except TimeoutError:
                    pass
            result = await asyncio.to_thread(
                run_completeness, settings, database_url, window, brokers, symbols,
                calendar=calendar, run_url=run_url,
            )  # fmt: skip
            summary.minutes += 1
            summary.last = result
            for report in result.reports:
                summary.opened += report.changes.opened
            summary.gaps_opened = len(summary.opened)
            summary.slack_messages += sum(s.messages for s in result.incidents.values())
            window = CheckWindow(window.end, window.end + MINUTE)
    log.info(
        "completeness followed %d minute(s): %d gap(s) opened", summary.minutes, summary.gaps_opened
    )
    return summary
