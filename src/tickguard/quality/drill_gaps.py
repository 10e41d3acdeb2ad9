"""The gaps drill's judge: run the completeness check minute by minute and score it.

``replay`` walks a session minute by minute, letting the caller's ``feed`` store what had
arrived by the end of each minute (a live drill: the collector and persist; a test: rows it
writes) and then running exactly the scheduled flow's function on that minute. ``score``
compares the incidents that produced with what was injected:

- ``gaps_injected``: injections that must alarm (drops, silences, ticks lost in a live
  connection); ``gaps_detected``: those an incident covered (same symbols, overlapping);
- ``false_alarms``: incidents that cover no alarming injection (a halt, a quiet symbol or a
  holiday must stay silent);
- ``detect_latency_s_max``: market-time seconds from an injection's start to the end of the
  minute whose check first raised its incident;
- ``slack_messages``: what the fake Slack received (announcements, resolutions, escalations).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import psycopg

from tickguard.alerting.slack import SlackPoster
from tickguard.calendar import TradingCalendar
from tickguard.quality.completeness import run_completeness
from tickguard.quality.window import MINUTE, CheckWindow
from tickguard.settings import Settings
from tickguard.store.migrate import libpq_url

SLACK_OVERLAP = timedelta(minutes=1)
"""Slack between an injection's span and an incident's start (timestamps of the last frame)."""


@dataclass(frozen=True, slots=True)
class Injected:
    label: str
    symbols: tuple[str, ...]
    start: datetime
    end: datetime
    alarm: bool
    """True: an incident must follow; False: it must stay silent (halt, quiet, holiday)."""


@dataclass(frozen=True, slots=True)
class Raised:
    incident_id: int
    symbols: tuple[str, ...]
    start: datetime
    raised_at: datetime
    """End of the minute whose check created it (market time)."""


def _incidents(database_url: str, broker: str) -> list[tuple[int, tuple[str, ...], datetime]]:
    with psycopg.connect(libpq_url(database_url)) as conn:
        rows = conn.execute(
            "SELECT id, symbols, start FROM incidents WHERE broker = %s ORDER BY id", (broker,)
        ).fetchall()
    return [(int(i), tuple(s), start) for i, s, start in rows]


def replay(
    settings: Settings,
    database_url: str,
    broker: str,
    symbols: Sequence[str],
    window: CheckWindow,
    *,
    feed: Callable[[datetime], None],
    poster: SlackPoster,
    calendar: TradingCalendar | None = None,
) -> list[Raised]:
    """Check every minute of ``window`` in order; the incidents these checks raised."""
    calendar = calendar or TradingCalendar()
    before = {inc_id for inc_id, _, _ in _incidents(database_url, broker)}
    seen: dict[int, Raised] = {}
    for minute in window.minutes():
        one = CheckWindow(minute, minute + MINUTE)
        feed(one.end)
        run_completeness(
            settings, database_url, one, [broker], symbols,
            calendar=calendar, poster=poster, validate=False,
        )  # fmt: skip
        for inc_id, inc_symbols, start in _incidents(database_url, broker):
            if inc_id not in before:
                seen.setdefault(inc_id, Raised(inc_id, inc_symbols, start, one.end))
    return list(seen.values())


def _covers(raised: Raised, injected: Injected) -> bool:
    return bool(set(raised.symbols) & set(injected.symbols)) and (
        injected.start - SLACK_OVERLAP <= raised.start <= injected.end + SLACK_OVERLAP
    )


def score(
    injected: Sequence[Injected], raised: Sequence[Raised], slack_messages: int
) -> dict[str, Any]:
    """The drill report's completeness keys."""
    alarming = [i for i in injected if i.alarm]
    latencies: list[float] = []
    for item in alarming:
        hits = [r for r in raised if _covers(r, item)]
        if hits:
            first = min(r.raised_at for r in hits)
            latencies.append(max(0.0, (first - item.start).total_seconds()))
    false_alarms = [r for r in raised if not any(_covers(r, i) for i in alarming)]
    return {
        "gaps_injected": len(alarming),
        "gaps_detected": len(latencies),
        "false_alarms": len(false_alarms),
        "detect_latency_s_max": round(max(latencies, default=0.0), 1),
        "slack_messages": slack_messages,
    }
