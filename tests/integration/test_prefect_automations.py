"""The proactive automation definitions really fire on a real Prefect server.

Copies of ``tickguard-collector-stalled`` and ``tickguard-supervised-heartbeat`` with
``within`` cut to Prefect's minimum (10 s) are applied; events are posted the way the
collector and the engine send them. A run that says "alive" but never "progress" is
marked Failed; one that keeps sending progress is left alone; a run whose heartbeats stop
is marked Crashed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from fakes.prefect_server import PrefectApi

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
TAG = {"prefect.resource.id": "prefect.tag.tickguard-supervised", "prefect.resource.role": "tag"}


@pytest.fixture
async def fast_automations(prefect_api: PrefectApi) -> AsyncIterator[dict[str, str]]:
    from prefect.client.orchestration import get_client

    from tickguard.orchestration.automations import load_definitions

    suffix = uuid.uuid4().hex[:6]
    created: list[Any] = []
    names: dict[str, str] = {}
    async with get_client() as client:
        for item in load_definitions(ROOT / "deployments" / "automations"):
            if item.trigger.posture != "Proactive":
                continue
            trigger = item.trigger.model_copy(update={"within": timedelta(seconds=10)})
            fast = item.model_copy(update={"name": f"{item.name}-{suffix}", "trigger": trigger})
            created.append(await client.create_automation(fast))
            names[item.name] = fast.name
        try:
            yield names
        finally:
            for automation_id in created:
                await client.delete_automation(automation_id)


async def _running_run(client: Any, name: str) -> Any:
    from prefect import flow
    from prefect.states import Running

    @flow(name=f"tg-automation-probe-{name}")
    def probe() -> None:
        return None

    return await client.create_flow_run(probe, state=Running(), tags=["tickguard-supervised"])


def _post(api: str, run_id: Any, event: str) -> None:
    body = [
        {
            "id": str(uuid.uuid4()),
            "occurred": datetime.now(UTC).isoformat(),
            "event": event,
            "resource": {"prefect.resource.id": f"prefect.flow-run.{run_id}"},
            "related": [TAG],
            "payload": {"frames_per_s": 0.0, "trades_per_s": 0.0, "last_trade_at": None},
        }
    ]
    httpx.post(f"{api}/events", json=body, timeout=10).raise_for_status()


async def _state(client: Any, run_id: Any) -> Any:
    return (await client.read_flow_run(run_id)).state


async def test_stalled_collector_failed_writing_collector_left_alone_silent_one_crashed(
    prefect_api: PrefectApi, fast_automations: dict[str, str]
) -> None:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        stalled = await _running_run(client, "stalled")
        writing = await _running_run(client, "writing")
        silent = await _running_run(client, "silent")
        api = prefect_api.url
        started = time.monotonic()
        deadline = started + 120
        outcome: dict[str, Any] = {}
        while time.monotonic() < deadline and len(outcome) < 2:
            # The silent run's heartbeats stop after 4 s; the stalled run keeps saying it is
            # alive and never writes (repeats also cover the triggers service loading the new
            # automations a moment after they were created).
            if time.monotonic() - started < 4:
                await asyncio.to_thread(
                    _post, prefect_api.url, silent.id, "prefect.flow-run.heartbeat"
                )
            await asyncio.to_thread(
                _post, prefect_api.url, stalled.id, "tickguard.collector.liveness"
            )
            for event in ("tickguard.collector.liveness", "tickguard.collector.progress"):
                await asyncio.to_thread(_post, api, writing.id, event)
            for key, run in (("stalled", stalled), ("silent", silent)):
                state = await _state(client, run.id)
                if state.is_final():
                    outcome[key] = state
            await asyncio.sleep(1)
        assert outcome.get("stalled") is not None, "stalled collector was not caught"
        assert outcome["stalled"].type.value == "FAILED"
        assert "wrote no trades" in (outcome["stalled"].message or "")
        assert outcome.get("silent") is not None, "missing heartbeats were not caught"
        assert outcome["silent"].type.value == "CRASHED"
        assert (await _state(client, writing.id)).type.value == "RUNNING"
