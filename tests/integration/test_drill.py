"""Short drills end to end (simulator → collector → Redis → persist → PostgreSQL), judged
against the simulator's ground truth. The full-length figures come from ``tickguard drill``;
these runs are minutes of simulated time at high speed, asserting the zeros that must hold."""

from __future__ import annotations

import logging
import re
from typing import Any

import psycopg
import pytest

from tickguard.drill.runner import DrillOptions, run_drill
from tickguard.drill.scenarios import SCENARIOS, scenario
from tickguard.models import Broker
from tickguard.settings import Settings

pytestmark = pytest.mark.slow

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _databases() -> set[str]:
    with psycopg.connect(ADMIN_URL) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'tg_drill_%'")
        return {r[0] for r in rows}


async def _drill(name: str, redis_url: str, **kw: Any) -> dict[str, Any]:
    opts = DrillOptions(scenario(name), **kw)
    return await run_drill(Settings(), opts, admin_url=ADMIN_URL, redis_url=redis_url)


def _assert_whole(report: dict[str, Any]) -> None:
    assert report["persist_caught_up"] is True
    assert report["trades_sent"] > 0 and report["books_sent"] > 0
    assert report["trades_lost_after_receipt"] == 0
    assert report["trades_duplicated"] == 0
    assert report["trades_unexpected"] == 0
    assert report["session_conflicts"] == 0
    assert report["drops_without_gap"] == 0
    assert report["books_stored"] > 0
    # then the backfill: the store equals the market, every drop has its gaps, none invented
    assert report["trades_missing_final"] == 0 and report["trades_mismatched_final"] == 0
    assert report["gaps_detected"] == report["gaps_injected"] == report["drops"]
    assert report["false_alarms"] == 0
    # open only: gaps after the last whole minute judged (the backfill leaves those open)
    assert report.get("trade_gaps_open", 0) == report["gaps_outside_span"]


async def test_flap_drill_loses_nothing_received_and_opens_a_gap_per_drop(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="tickguard.drill.scratch")
    report = await _drill("flap", redis_url, symbols=10, minutes=1.5, speed=6.0)
    _assert_whole(report)
    assert report["drops"] >= 2
    assert report["reconnects"] >= report["drops"] - 1
    assert report["gaps_opened"] >= 20 * report["reconnects"]  # 10 symbols × 2 kinds per drop
    assert report["first_reconnect_s"] is not None and report["first_reconnect_s"] < 1.0
    assert report["trades_stored"] == report["trades_sent"]
    assert report["peak_rss_mb"] >= report["rss_start_mb"] > 0
    (ours,) = re.findall(r"scratch database (tg_drill_\w+)", caplog.text)
    assert ours not in _databases()  # dropped (other drills may run in parallel)


async def test_silent_drill_detects_silence_and_reconnects_within_10s(redis_url: str) -> None:
    report = await _drill("silent", redis_url, symbols=6, minutes=2.0, speed=5.0)
    _assert_whole(report)
    assert report["stale_reconnects"] >= 1
    assert report["silent_detect_reconnect_s_max"] is not None
    assert report["silent_detect_reconnect_s_max"] < 10.0
    assert report["gaps_open_at_end"] == 0


async def test_malformed_frames_are_quarantined_and_take_no_trade_with_them(
    redis_url: str,
) -> None:
    report = await _drill("malformed", redis_url, symbols=6, minutes=1.0, speed=4.0)
    _assert_whole(report)
    assert report["frames_quarantined"] > 0 and report["quarantine_rows"] > 0
    assert report["trades_stored"] == report["trades_sent"]


async def test_kiwoom_flap_drill_runs_the_same_pipeline(redis_url: str) -> None:
    report = await _drill(
        "flap", redis_url, broker=Broker.KIWOOM, symbols=6, minutes=1.0, speed=4.0
    )
    assert report["broker"] == "kiwoom"
    _assert_whole(report)
    assert report["drops"] >= 1 and report["trades_stored"] == report["trades_sent"]
    assert set(SCENARIOS) >= {"calm", "flap", "silent", "malformed"}
