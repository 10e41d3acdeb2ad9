"""``drill --all`` on a small set, end to end: every run a whole (tiny) session, then the
backfill, then the verdict; on a trading day that is not the wall clock's date (what a drill
crossing midnight KST meets), with the environment hook and the schema drift on both
brokers. The full-size figures come from ``tickguard drill --all``."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from fakes import drill_env
from tickguard.calendar import TradingCalendar
from tickguard.cli.drill import run_set, table
from tickguard.drill.scenarios import SCENARIOS, Scenario
from tickguard.models import KST

pytestmark = pytest.mark.slow

HOOKED = Scenario(
    "hooked",
    "flaps, with servers from a (pass-through) environment",
    ("flap:1.5-2.5",),
    environment="fakes.drill_env:passthrough",
    brokers=("kis",),
    proves=("gaps_injected",),
)


def test_a_set_runs_each_scenario_on_one_day_backfilled_and_judged(settings_env: Path) -> None:
    cal = TradingCalendar()
    day = cal.next_trading_day(datetime.now(KST).date())  # never the wall clock's date
    drill_env.LAST.clear()
    rows = run_set(
        ["schema-drift", "hooked"], day, symbols=2, minutes=1.0, speed=10.0,
        scenarios={**SCENARIOS, "hooked": HOOKED},
    )  # fmt: skip
    assert [(r["scenario"], r["broker"]) for r in rows] == [
        ("schema-drift", "kis"), ("schema-drift", "kiwoom"), ("hooked", "kis"),
    ]  # fmt: skip
    assert all(r["pass"] for r in rows), table(rows)
    for row in rows:
        report = row["report"]
        assert report["trading_day"] == day.isoformat()
        assert report["trades_stored"] == report["trades_sent"] > 0
        assert report["trades_expected"] > 0 and report["backfill_errors"] == 0
    for drift in rows[:2]:  # the grown records decoded: none quarantined, none lost
        assert drift["report"]["grown_frames"] > 0
        assert drift["report"]["frames_quarantined"] == 0
    hooked = rows[2]["report"]
    assert hooked["drops"] > 0 and hooked["gaps_detected"] == hooked["gaps_injected"]
    # the ledger's wall-clock gaps were found for a day that is not the wall's date
    assert hooked["trade_gaps_filled"] + hooked.get("trade_gaps_no_trades", 0) > 0
    assert "trade_gaps_open" not in hooked and hooked["book_gaps_not_unrecoverable"] == 0
    (env,) = drill_env.LAST
    assert env.entered and env.exited and env.cancelled
    assert hooked["env_during_calls"] == 1 and hooked["env_cancelled_at_end"] is True
    start, stop = hooked["env_session_start"], hooked["env_stop_at"]
    assert stop - start == pytest.approx(60.0 / 10.0, abs=0.01)
