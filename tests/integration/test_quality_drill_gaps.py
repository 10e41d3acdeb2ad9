"""The gaps drill: a drop, a silent socket and ticks lost in a live connection are each
detected within 2 minutes with one Slack message plus its resolution; a halted symbol, a
quiet symbol and a holiday raise nothing. Also: the judge counts misses and false alarms."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from quality_rows import kst
from typer.testing import CliRunner

from tickguard.cli import app
from tickguard.quality.drill_gaps import Injected, Raised, score


def test_tickguard_drill_scenario_gaps_scores_clean(settings_env: Path) -> None:
    result = CliRunner().invoke(app, ["drill", "--scenario", "gaps", "--symbols", "6", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["scenario"] == "gaps" and report["symbols"] == 6
    assert report["gaps_injected"] == report["gaps_detected"] == 3
    assert report["false_alarms"] == 0
    assert 60 <= report["detect_latency_s_max"] <= 120  # lost ticks: knowable at the next trade
    assert report["slack_messages"] == 6  # three incidents, each announced and resolved


def test_score_counts_a_false_alarm_and_a_miss() -> None:
    t0 = kst("10:00", second=0)
    injected = [
        Injected("flap", ("005930",), t0, t0 + timedelta(minutes=2), alarm=True),
        Injected("halt", ("000660",), t0, t0 + timedelta(minutes=30), alarm=False),
    ]
    raised = [Raised(1, ("000660",), t0 + timedelta(minutes=5), t0 + timedelta(minutes=6))]
    assert score(injected, raised, 1) == {
        "gaps_injected": 1,
        "gaps_detected": 0,
        "false_alarms": 1,
        "detect_latency_s_max": 0.0,
        "slack_messages": 1,
    }
    hit = Raised(2, ("005930",), t0, t0 + timedelta(seconds=70))
    assert score(injected, [hit], 2)["detect_latency_s_max"] == 70.0
