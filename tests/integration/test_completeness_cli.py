"""``tickguard check``: the same function as the flow, from the command line."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from quality_rows import Tape, minutes, store
from typer.testing import CliRunner

from tickguard.cli import app

ADMIN_URL = os.environ.get(
    "TICKGUARD_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def test_check_json_reports_the_gap_and_exits_1(settings_env: Path, db_url: str) -> None:
    store(db_url, trades=Tape("005930").trades(minutes("09:00", "09:59")))
    args = ["check", "--from", "2026-11-25T10:04", "--to", "2026-11-25T10:05", "--json"]
    result = CliRunner().invoke(app, [*args, "--broker", "kis", "--no-gx", "--no-slack"])
    assert result.exit_code == 1, result.output
    data = json.loads(result.output)
    (check,) = data["checks"]
    assert [(g["symbol"], g["kind"]) for g in check["gaps_opened"]] == [("005930", "trades")]
    assert check["gx"] is None and data["slack_messages"] == 0
    again = CliRunner().invoke(app, [*args, "--broker", "kis", "--no-gx", "--no-slack"])
    assert again.exit_code == 0 and json.loads(again.output)["checks"][0]["gaps_opened"] == []


def test_trades_are_judged_once_across_brokers(settings_env: Path, db_url: str) -> None:
    store(db_url, trades=Tape("005930").trades(minutes("09:00", "09:59")))
    args = ["check", "--from", "2026-11-25T10:04", "--to", "2026-11-25T10:05", "--json"]
    result = CliRunner().invoke(app, [*args, "--symbol", "005930", "--no-gx", "--no-slack"])
    assert result.exit_code == 1, result.output
    checks = {c["broker"]: c for c in json.loads(result.output)["checks"]}
    assert set(checks) == {"kis", "kiwoom"}
    assert [g["kind"] for g in checks["kis"]["gaps_opened"]] == ["trades"]
    assert checks["kiwoom"]["gaps_opened"] == []  # the same loss is not a second incident
    assert {s["kind"] for s in checks["kiwoom"]["status"]} == {"book"}


def test_check_defaults_to_recent_symbols_and_prints_text(settings_env: Path, db_url: str) -> None:
    store(db_url, trades=Tape("000660").trades(minutes("09:00", "09:30")))
    args = ["check", "--from", "2026-11-25T09:30", "--to", "2026-11-25T09:31", "--no-slack"]
    result = CliRunner().invoke(app, [*args, "--broker", "kis"])
    assert result.exit_code == 0, result.output
    assert "kis: 0 gap(s) opened, 0 ended, 0 continuity break(s), GX ok" in result.output
    assert "Data Docs:" in result.output and str(settings_env) in result.output


def test_bad_arguments_are_usage_errors(settings_env: Path) -> None:
    runner = CliRunner()
    bad_time = runner.invoke(app, ["check", "--from", "yesterday", "--to", "10:00"])
    assert bad_time.exit_code == 2 and "--from" in bad_time.output
    backwards = runner.invoke(app, ["check", "--from", "10:05", "--to", "10:00"])
    assert backwards.exit_code == 2 and "--to must be after --from" in backwards.output
    missing = runner.invoke(app, ["check", "--from", "10:00"])
    assert missing.exit_code == 2 and "--to" in missing.output


def test_an_unmigrated_database_is_a_clear_error(
    settings_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tickguard.settings import get_settings

    monkeypatch.setenv("TICKGUARD_DATABASE_URL", ADMIN_URL)  # reachable, never migrated
    get_settings.cache_clear()
    result = CliRunner().invoke(app, ["check", "--from", "10:00", "--to", "10:01"])
    assert result.exit_code == 1
    assert "schema is not current: run `tickguard db upgrade`" in result.output
