"""The incident drill, short: after the backfill the store equals the ground truth exactly,
every book gap is unrecoverable, every trade gap is filled, and the backfill kept to its
request budget. The full-length figures come from ``tickguard drill --scenario
incident-2026-01-19``.

The drill's trading day is pinned to the next trading day, never the wall clock's date:
what a run crossing midnight KST meets (it once failed then, reading now(KST) at several
moments), made to happen on every run."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from tickguard.backfill.drill import run_incident_drill, segments
from tickguard.calendar import TradingCalendar
from tickguard.drill.runner import DrillOptions
from tickguard.drill.scenarios import SCENARIOS
from tickguard.models import KST, Broker
from tickguard.settings import Settings

pytestmark = pytest.mark.slow
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def test_segments_leave_the_open_and_the_outage_uncollected() -> None:
    extra = SCENARIOS["incident-2026-01-19"].extra
    assert segments(extra, 20) == [
        (9 * 3600 + 120, 9 * 3600 + 360),
        (9 * 3600 + 960, 9 * 3600 + 1200),
    ]
    assert segments(extra, 5) == [(9 * 3600 + 120, 9 * 3600 + 300)]


@pytest.mark.parametrize("broker", [Broker.KIS, Broker.KIWOOM])
async def test_incident_drill_ends_whole(redis_url: str, broker: Broker) -> None:
    short = {"runner": "incident", "crash_loop_min": 1, "outage_at_min": 3, "outage_min": 2}
    scenario = replace(SCENARIOS["incident-2026-01-19"], extra=short)
    day = TradingCalendar().next_trading_day(datetime.now(KST).date())
    opts = DrillOptions(
        scenario, broker, symbols=3, minutes=6.0, speed=10.0, seed=2, trading_day=day
    )
    report = await run_incident_drill(Settings(), opts, admin_url=ADMIN_URL, redis_url=redis_url)
    assert report["trading_day"] == day.isoformat()
    assert report["persist_caught_up"] is True
    assert report["collector_runs"] == 2 and report["drops"] > 0
    assert report["trades_filled"] > 0
    assert report["trades_missing_final"] == 0
    assert report["trades_duplicated"] == 0
    assert report["trades_mismatched_final"] == 0
    assert report["trades_unexpected_final"] == 0
    assert report["books_unrecoverable"] > 0 and report["book_gaps_not_unrecoverable"] == 0
    assert report.get("trade_gaps_open", 0) == 0 and report["gaps_unrecoverable"] == 0
    assert report["silent_losses"] >= 2  # the crash-looping open and the outage
    assert report["rate_limit_errors_max_per_min"] <= 1
    assert report["gaps_detected"] == report["gaps_injected"] == report["drops"]
    assert report["false_alarms"] == 0 and report["session_conflicts"] == 0
