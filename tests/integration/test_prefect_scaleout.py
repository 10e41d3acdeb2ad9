"""Against a real Prefect server with tickguard deployed: automations apply idempotently by
name; two workers on this machine split the pool by work queue (collectors on one, persist
on the other); headless Chromium opens the Prefect UI and shows the tickguard deployments."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from fakes.prefect_server import PrefectApi

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture
async def deployed(prefect_api: PrefectApi, settings_env: Path) -> AsyncIterator[str]:
    """A pool of this test's own with every prefect.yaml deployment in it."""
    from prefect.client.orchestration import get_client

    from tickguard.orchestration import deploy
    from tickguard.settings import load_settings

    pool = f"tg-scale-{uuid.uuid4().hex[:6]}"
    settings = load_settings(work_pool=pool)
    async with get_client() as client:
        await deploy.ensure_pool(client, settings)
    await asyncio.to_thread(deploy.deploy_all, ROOT, settings, prefect_api.url)
    yield pool


async def test_automations_apply_is_idempotent_and_prunes(prefect_api: PrefectApi) -> None:
    from prefect.client.orchestration import get_client
    from prefect.events.schemas.automations import AutomationCore

    from tickguard.orchestration.automations import apply, apply_directory, load_definitions

    directory = ROOT / "deployments" / "automations"
    await apply_directory(directory)
    again = await apply_directory(directory)
    assert {a.action for a in again} == {"unchanged"}
    wanted = load_definitions(directory)
    async with get_client() as client:
        stale = wanted[0].model_copy(update={"name": "tickguard-renamed-away"})
        await client.create_automation(AutomationCore.model_validate(stale.model_dump()))
        changed = wanted[1].model_copy(update={"description": "edited by hand in the UI"})
        await client.update_automation(
            (await client.read_automations_by_name(changed.name))[0].id, changed
        )
        result = {a.name: a.action for a in await apply(client, wanted)}
        assert result["tickguard-renamed-away"] == "deleted"
        assert result[wanted[1].name] == "updated"
        for item in wanted:
            assert len(await client.read_automations_by_name(item.name)) == 1


async def test_two_workers_split_collectors_and_persist(
    deployed: str, prefect_api: PrefectApi, tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments.flow_runs import arun_deployment

    from tickguard.orchestration import processes

    env = {"PREFECT_WORKER_QUERY_SECONDS": "2", "PREFECT_API_URL": prefect_api.url}
    workers = {
        "collectors": processes.start_worker(
            deployed, "host-a", env, tmp_path / "a.log", ROOT, ["collectors"]
        ),
        "persist": processes.start_worker(
            deployed, "host-b", env, tmp_path / "b.log", ROOT, ["persist"]
        ),
    }
    try:
        # A holiday: both flows pass their gate quickly ("market closed") and complete.
        runs = {
            "collectors": await arun_deployment(
                "kis-collector/kis-collector", parameters={"day": "2026-01-01"}, timeout=0,
                as_subflow=False,
            ),
            "persist": await arun_deployment(
                "persist/persist", parameters={"day": "2026-01-01"}, timeout=0, as_subflow=False
            ),
        }  # fmt: skip
        async with get_client() as client:
            final = await _all_final(client, [r.id for r in runs.values()], 240)
    finally:
        for child in workers.values():
            processes.stop_process(child)
    for queue, run in runs.items():
        assert final[run.id].state.is_completed(), final[run.id].state
        assert "market closed" in (final[run.id].state.message or "")
        mine = workers[queue].log_path.read_text()
        other = workers["persist" if queue == "collectors" else "collectors"].log_path.read_text()
        assert str(run.id) in mine and str(run.id) not in other


async def _all_final(client: Any, ids: list[Any], within: float) -> dict[Any, Any]:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        runs = {i: await client.read_flow_run(i) for i in ids}
        if all(r.state is not None and r.state.is_final() for r in runs.values()):
            return runs
        await asyncio.sleep(1)
    raise AssertionError("runs did not finish in time")


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


async def test_prefect_ui_shows_the_tickguard_deployments(
    deployed: str, prefect_api: PrefectApi, tmp_path: Path
) -> None:
    browser = _chromium()
    assert browser, "Debian chromium is required: apt-get install -y chromium (.ci/run does)"
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "prefect-ui-deployments.png"
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1400,1000",
        "--virtual-time-budget=20000",
    ]  # fmt: skip
    url = f"{prefect_api.ui_url}/deployments"
    dom = await asyncio.to_thread(
        subprocess.run, [browser, *flags, "--dump-dom", url],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    for name in ("kis-collector", "kiwoom-collector", "persist"):
        assert name in dom.stdout, dom.stderr[-2000:]
    done = await asyncio.to_thread(
        subprocess.run, [browser, *flags, f"--screenshot={shot}", url],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert shot.exists() and shot.stat().st_size > 10_000, done.stderr[-2000:]
    print(f"\nPrefect UI screenshot: {shot}")
    assert os.access(shot, os.R_OK)
