"""The ``backfill`` flow on a real Prefect server and ``tickguard backfill`` as a process,
both against the KIS simulator: market-closed path, a real run with its artifact and Slack
digest, JSON output, usage errors."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from datetime import datetime
from datetime import time as dtime
from pathlib import Path

import httpx
import pytest

from fakes.prefect_server import PrefectApi
from fakes.slack import FakeSlack
from tickguard.models import KST
from tickguard.sim.kis import KisSimConfig, KisSimulator
from tickguard.sim.market import MarketConfig
from tickguard.sim.universe import default_universe

UNTIL_T = 9 * 3600 + 3 * 60
APPS = '[{"name": "bf", "app_key": "bf-key", "app_secret": "bf-secret"}]'


async def _sim_at_until(tmp_path: Path) -> KisSimulator:
    market = MarketConfig(day=datetime.now(KST).date(), symbols=default_universe(2), seed=9)
    sim = KisSimulator(KisSimConfig(market=market, truth_dir=tmp_path / "truth", speed=30.0,
                                    start_at=dtime(9, 0)))  # fmt: skip
    await sim.start()
    deadline = time.monotonic() + 60
    while sim.clock.session_t() < UNTIL_T + 2:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    return sim


async def test_flow_on_a_holiday_ends_market_closed(
    prefect_api: PrefectApi, settings_env: Path
) -> None:
    from tickguard.backfill.flow import backfill

    result = await backfill(day="2026-06-03", symbols=["005930"], broker="kis")
    assert result["status"] == "closed"
    assert "not an XKRX trading day" in str(result["reason"])


async def test_flow_fills_posts_a_digest_and_leaves_an_artifact(
    prefect_api: PrefectApi, settings_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tickguard.backfill.flow import backfill
    from tickguard.settings import get_settings

    sim = await _sim_at_until(tmp_path)
    try:
        with FakeSlack() as slack:
            monkeypatch.setenv("TICKGUARD_SLACK__WEBHOOK_URL", slack.webhook_url)
            monkeypatch.setenv("TICKGUARD_KIS__REST_URL", sim.rest_url)
            monkeypatch.setenv("TICKGUARD_KIS__APPS", APPS)
            get_settings.cache_clear()
            result = await backfill(symbols=sim.market.symbols, broker="kis", until="09:03")
            (post,) = slack.wait_for(1, 10)
    finally:
        await sim.stop()
    assert result["status"] == "done"
    assert result["silent_losses"] == 2  # nothing was stored: every minute was a silent loss
    assert result["expected_volume"] == result["stored_volume"] > 0
    assert "Backfill kis" in post["payload"]["text"]
    async with httpx.AsyncClient(timeout=10) as client:
        reply = await client.post(
            f"{prefect_api.url}/artifacts/filter",
            json={"artifacts": {"key": {"any_": ["backfill-kis"]}}},
        )
    reply.raise_for_status()
    (artifact,) = [a for a in reply.json() if ": done" in a["data"]]
    assert artifact["type"] == "markdown"
    assert all(symbol in artifact["data"] for symbol in sim.market.symbols)


async def _cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "tickguard"), "backfill", *args,
        env={**os.environ, **env}, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_cli_json_run_closed_day_and_usage_errors(settings_env: Path, tmp_path: Path) -> None:
    code, out, _ = await _cli("--day", "2026-06-03", "--json", env={})
    assert code == 0 and json.loads(out)["status"] == "closed"
    code, _, err = await _cli("--symbols", "not-a-code", env={})
    assert code == 2 and "not-a-code" in err
    code, _, err = await _cli("--until", "25:99", env={})
    assert code == 2 and "--until" in err
    sim = await _sim_at_until(tmp_path)
    try:
        env = {"TICKGUARD_KIS__REST_URL": sim.rest_url, "TICKGUARD_KIS__APPS": APPS}
        symbols = ",".join(sim.market.symbols)
        code, out, err = await _cli("--symbols", symbols, "--until", "09:03", "--json", env=env)
    finally:
        await sim.stop()
    assert code == 0, err
    report = json.loads(out)
    assert report["status"] == "done" and report["minutes_unrecoverable"] == 0
    assert [row["symbol"] for row in report["per_symbol"]] == sim.market.symbols
