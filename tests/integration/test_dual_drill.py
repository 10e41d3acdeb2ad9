"""The dual feed end to end: one market through KIS and Kiwoom, faults on one of them.

Both simulators → both collectors → one Redis stream → one persist → one PostgreSQL, judged
against both ground truths. What must hold: each trade stored once, nothing received lost,
no session conflicts, and every closed gap of the faulted feed resolved from the other feed
(``filled``, naming it) or proven empty (``no_trades``) — none left open.
"""

from __future__ import annotations

from typing import Any

import pytest

from tickguard.drill.dual import run_dual_drill
from tickguard.drill.runner import DrillOptions
from tickguard.drill.scenarios import scenario
from tickguard.models import Broker
from tickguard.settings import Settings

pytestmark = pytest.mark.slow

ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


async def _dual(redis_url: str, faulty: Broker, **kw: Any) -> dict[str, Any]:
    opts = DrillOptions(scenario("flap"), faulty, **kw)  # faults on ``faulty`` only
    return await run_dual_drill(Settings(), opts, admin_url=ADMIN_URL, redis_url=redis_url)


def _assert_merged(report: dict[str, Any], faulty: str, healthy: str) -> None:
    assert report["persist_caught_up"] is True
    assert report["tapes_identical"] is True and report["tape_trades_compared"] > 0
    assert report["trades_duplicated"] == 0
    assert report["trades_lost_after_receipt"] == 0
    assert report["trades_missing"] == 0, "the healthy feed covered every drop"
    assert report["trades_stored"] == report["trades_sent"] > 0
    assert report["session_conflicts"] == 0
    for broker in (faulty, healthy):
        part = report[broker]
        assert part["trades_lost_after_receipt"] == 0 and part["trades_duplicated"] == 0
        assert part["session_conflicts"] == 0 and part["books_stored"] == part["books_sent"]
    assert report[faulty]["drops"] >= 2 and report[faulty]["drops_without_gap"] == 0
    assert report[healthy]["drops"] == 0 and report[healthy]["gaps_opened"] == 0
    # every closed trades gap of the faulted feed ends resolved, none stays open
    assert report["trades_gaps_closed"] >= report[faulty]["reconnects"] > 0
    assert report["gaps_left_open"] == 0
    assert report["gaps_filled"] + report["gaps_no_trades"] == report["trades_gaps_closed"]
    assert report["gaps_filled"] > 0 and report["gaps_covered_by"] == [healthy]
    assert report["gaps_resolved_live"] > 0, "resolved while collecting, not only after"
    # both feeds wrote: the faulted one before/after its drops, the other inside them
    assert set(report["trades_stored_by"]) == {faulty, healthy}
    # then each broker's backfill: what no feed delivered (the open, before subscribing)
    assert report["trades_missing_final"] == 0 and report["backfill_errors"] == 0
    assert report["gaps_detected"] == report["gaps_injected"] > 0
    assert report["false_alarms"] == 0


async def test_kis_flaps_kiwoom_covers_every_gap(redis_url: str) -> None:
    report = await _dual(redis_url, Broker.KIS, symbols=6, minutes=1.0, speed=4.0)
    _assert_merged(report, "kis", "kiwoom")


async def test_kiwoom_flaps_kis_covers_every_gap(redis_url: str) -> None:
    report = await _dual(redis_url, Broker.KIWOOM, symbols=4, minutes=1.25, speed=4.0)
    _assert_merged(report, "kiwoom", "kis")


def test_a_bad_faulty_broker_is_a_usage_error() -> None:
    from typer.testing import CliRunner

    from tickguard.cli import app

    result = CliRunner().invoke(app, ["drill", "--broker", "both", "--faulty", "nyse"])
    assert result.exit_code == 2
    assert "unknown broker 'nyse'" in result.output
