"""The ``completeness`` flow on a real Prefect server: market-closed path, a manual rerun
window that opens a gap, posts one Slack incident with the run's link, leaves an artifact."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from quality_rows import Tape, minutes, store

from fakes.prefect_server import PrefectApi
from fakes.slack import FakeSlack


async def test_holiday_run_is_market_closed_without_gx(
    prefect_api: PrefectApi, settings_env: Path
) -> None:
    from tickguard.quality.flow import completeness

    started = time.monotonic()
    state = await completeness(trading_day="2026-06-03", return_state=True)  # election day
    assert state.is_completed()
    assert state.message and "not an XKRX trading day" in state.message
    assert time.monotonic() - started < 20


async def test_a_following_run_on_a_holiday_ends_at_once(
    prefect_api: PrefectApi, settings_env: Path
) -> None:
    from tickguard.quality.flow import completeness

    state = await completeness(
        start="2026-06-03T08:29", end="2026-06-03T08:30", follow=True, return_state=True
    )
    assert state.is_completed() and state.message and "not an XKRX trading day" in state.message


async def test_manual_window_opens_a_gap_posts_once_and_leaves_an_artifact(
    prefect_api: PrefectApi, settings_env: Path, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tickguard.quality.flow import completeness
    from tickguard.settings import get_settings

    tape = Tape("005930")
    store(db_url, trades=tape.trades(minutes("09:00", "09:59")))
    with FakeSlack() as slack:
        monkeypatch.setenv("TICKGUARD_SLACK__WEBHOOK_URL", slack.webhook_url)
        monkeypatch.setenv("TICKGUARD_QUALITY__PREFECT_UI_URL", prefect_api.ui_url)
        get_settings.cache_clear()
        result = await completeness(
            start="2026-11-25T10:04", end="2026-11-25T10:05", symbols=["005930"], broker="kis"
        )
        (post,) = slack.wait_for(1, 10)
    (check,) = result["checks"]
    assert [g["symbol"] for g in check["gaps_opened"]] == ["005930"]
    assert check["gx"]["success"] is True and result["slack_messages"] == 1
    assert "Data gap: kis completeness" in post["payload"]["text"]
    assert "/runs/flow-run/" in str(post["payload"]["blocks"][-1])
    async with httpx.AsyncClient(timeout=10) as client:
        reply = await client.post(
            f"{prefect_api.url}/artifacts/filter",
            json={"artifacts": {"key": {"any_": ["completeness"]}}},
        )
    reply.raise_for_status()
    (artifact,) = reply.json()
    assert artifact["type"] == "table" and "Data Docs" in artifact["description"]
    assert "005930" in str(artifact["data"])
