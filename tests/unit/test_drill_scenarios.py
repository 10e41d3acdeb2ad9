"""The drill set as data: the trading day picked once, the must-hold verdict, scenarios
named by module:function, the --all table and its --only option (no servers needed)."""

from __future__ import annotations

from datetime import date

import pytest
from typer.testing import CliRunner

from tickguard.calendar import TradingCalendar
from tickguard.cli import app
from tickguard.cli.drill import runner_of, table
from tickguard.drill.env_api import NamedObjectError, resolve
from tickguard.drill.runner import DrillOptions, current_or_next_trading_day, pin_trading_day
from tickguard.drill.scenarios import REPORT_KEYS, SCENARIOS, verdict

CAL = TradingCalendar()


@pytest.mark.parametrize(
    ("today", "expected"),
    [
        (date(2026, 11, 27), date(2026, 11, 27)),  # a Friday: itself
        (date(2026, 11, 28), date(2026, 11, 30)),  # Saturday → Monday
        (date(2026, 6, 3), date(2026, 6, 4)),  # the local election: closed
        (date(2026, 12, 31), date(2027, 1, 4)),  # year-end closure, then the late open
    ],
)
def test_the_drill_day_is_today_or_the_next_trading_day(today: date, expected: date) -> None:
    assert current_or_next_trading_day(today, CAL) == expected


def test_a_pinned_day_is_kept_and_an_unpinned_one_is_fixed_once() -> None:
    pinned = DrillOptions(SCENARIOS["calm"], trading_day=date(2026, 11, 30))
    assert pin_trading_day(pinned) == (pinned, date(2026, 11, 30))
    fixed, day = pin_trading_day(DrillOptions(SCENARIOS["calm"]))
    assert fixed.trading_day == day and CAL.is_trading_day(day)


def _clean() -> dict[str, object]:
    return {k: 0 for k in REPORT_KEYS} | {"peak_rss_mb": 120.0, "rss_start_mb": 110.0}


def test_the_verdict_is_issue_9s_must_hold() -> None:
    assert verdict(SCENARIOS["calm"], _clean()) == []
    flap = SCENARIOS["flap"]
    assert verdict(flap, _clean()) == ["gaps_injected=0 (must be > 0)"], "the fault must happen"
    missed = _clean() | {"gaps_injected": 4, "gaps_detected": 3, "trades_missing_final": 2}
    assert verdict(flap, missed) == ["trades_missing_final=2", "gaps detected 3 of 4"]
    assert verdict(flap, {"error": "boom"}) == ["error: boom"]
    assert verdict(flap, _clean() | {"gaps_injected": 1, "gaps_detected": 1}) == []
    grew = _clean() | {"peak_rss_mb": 500.0}
    assert verdict(SCENARIOS["slow-sink"], grew) == ["RSS grew 390 MB > 200 MB"]
    assert "false_alarms=None" in verdict(SCENARIOS["calm"], {"trades_missing_final": 0})


def test_mid_session_faults_are_placed_at_half_the_wall_time() -> None:
    specs = SCENARIOS["schema-drift"].fault_specs(390.0, 60.0)
    assert specs == ("grow:H0STCNT0@195.0", "grow:H0STASP0@195.0", "grow:0B@195.0", "grow:0D@195.0")


def test_every_runner_and_environment_is_named_module_function() -> None:
    assert runner_of(SCENARIOS["calm"], False) == "tickguard.drill.runner:run_drill"
    assert runner_of(SCENARIOS["calm"], True) == "tickguard.drill.dual:run_dual_drill"
    for sc in SCENARIOS.values():
        for ref in (runner_of(sc, False), sc.environment):
            if ref is not None:
                module, _, function = ref.partition(":")
                assert module.startswith("tickguard.") and function.isidentifier()
    assert callable(resolve("tickguard.backfill.drill:run_incident_drill"))
    with pytest.raises(NamedObjectError, match="expected 'module:function'"):
        resolve("tickguard.drill.runner")
    with pytest.raises(NamedObjectError, match="has no 'nope'"):
        resolve("tickguard.drill.runner:nope")


def test_the_table_has_a_row_per_run_and_reasons_under_a_fail() -> None:
    ok = {"scenario": "calm", "broker": "kis", "pass": True, "fails": [], "report": _clean()}
    bad = {"scenario": "flap", "broker": "kiwoom", "pass": False, "fails": ["x=1"],
           "report": {"error": "boom", "wall_s": 1.0}}  # fmt: skip
    text = table([ok, bad]).splitlines()
    assert text[0].split()[:2] == ["scenario", "broker"]
    assert text[1].split()[-1] == "PASS" and text[2].split()[-1] == "FAIL"
    assert text[3].strip() == "! x=1" and text[-1] == "1/2 passed"


def test_an_unknown_scenario_in_only_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["drill", "--all", "--only", "calm,nope"])
    assert result.exit_code == 2 and "nope" in result.output
