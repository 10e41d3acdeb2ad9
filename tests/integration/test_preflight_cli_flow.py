"""``tickguard preflight`` as a process (JSON shape, exit codes 0/2, usage errors) and the
``preflight`` flow on a real Prefect server (Slack message, table artifact), both against
the KIS simulator and the shared PostgreSQL/Redis."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis as redis_sync

from fakes.prefect_server import PrefectApi
from fakes.slack import FakeSlack
from tickguard.drill.rigs import RIGS, sim_config
from tickguard.models import KST, Broker
from tickguard.sinks import stream_admin
from tickguard.sinks.redis_stream import stream_key

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def kis_sim() -> AsyncIterator[Any]:
    from datetime import datetime

    rig = RIGS[Broker.KIS]
    with tempfile.TemporaryDirectory() as tmp:
        config = sim_config(
            rig, day=datetime.now(KST).date(), symbols=2, seed=3, speed=1.0, faults=(),
            truth_dir=Path(tmp), overrides={}, slot_hold_s=0.0,
        )  # fmt: skip
        async with rig.simulator(config) as sim:
            yield sim


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


@pytest.fixture
def env(
    kis_sim: Any, settings_env: Path, redis_url: str, stream_prefix: str,
    monkeypatch: pytest.MonkeyPatch, slack: FakeSlack,
) -> dict[str, str]:  # fmt: skip
    """A healthy stack's environment: one KIS key on the simulator, group created."""
    values = {
        "TICKGUARD_SLACK__WEBHOOK_URL": slack.webhook_url,
        "TICKGUARD_KIS__REST_URL": kis_sim.rest_url,
        "TICKGUARD_KIS__WS_URL": kis_sim.ws_url,
        "TICKGUARD_KIS__APPS": json.dumps([{"name": "k1", "app_key": "ak", "app_secret": "as"}]),
        "TICKGUARD_PREFLIGHT__CPU_LOAD_WARN": "1000",
        "TICKGUARD_PREFLIGHT__TIMEOUT_S": "30",
        "TICKGUARD_PREFLIGHT__IMPORT_TIMEOUT_S": "90",
        "TICKGUARD_PREFLIGHT__CLOCK_SKEW_WARN_S": "6",
        "TICKGUARD_PREFLIGHT__TOKEN_REISSUE_MIN_S": "0",
        "TICKGUARD_PROJECT_DIR": str(ROOT),
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    client = redis_sync.Redis.from_url(redis_url)
    stream_admin.ensure_group(client, stream_key(stream_prefix), "persist")
    client.close()
    return dict(os.environ)


async def cli(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).parent / "tickguard"), "preflight", *args, env=env, cwd=ROOT,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 240)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_json_report_and_exit_code_zero_on_a_healthy_stack(env: dict[str, str]) -> None:
    code, out, _ = await cli(env, "--json")
    doc = json.loads(out)
    assert code == 0, [c for c in doc["checks"] if c["status"] != "pass"]
    assert doc["verdict"] == "go" and isinstance(doc["elapsed_s"], float)
    assert set(doc["checks"][0]) == {"name", "status", "value", "hint"}
    names = {c["name"] for c in doc["checks"]}
    assert {"settings", "kis key k1", "kis plan", "postgres", "redis", "disk"} <= names
    assert "as" not in {c["value"] for c in doc["checks"]}
    assert "ak" not in out.replace('"', " ").split()  # the app key never printed


async def test_degraded_exits_one_no_go_two_and_usage_errors_say_so(
    env: dict[str, str],
) -> None:
    quiet = {k: v for k, v in env.items() if k != "TICKGUARD_SLACK__WEBHOOK_URL"}
    code, out, _ = await cli(quiet, "--json")
    doc = json.loads(out)
    assert code == 1 and doc["verdict"] == "degraded"
    assert [c["name"] for c in doc["checks"] if c["status"] != "pass"] == ["slack"]
    tight = {**env, "TICKGUARD_PREFLIGHT__DISK_MIN_FREE_BYTES": str(2**62)}
    code, out, _ = await cli(tight, "--json")
    assert code == 2 and json.loads(out)["verdict"] == "no-go"
    code, _, err = await cli(env, "--symbols", "00 59 30!")
    assert code == 2 and "Usage" in err and "symbol codes" in err
    code, _, err = await cli(env, "--project-dir", "/nonexistent")
    assert code == 2 and "no prefect.yaml" in err


async def test_flow_posts_the_verdict_and_leaves_an_artifact(
    prefect_api: PrefectApi, env: dict[str, str], slack: FakeSlack
) -> None:
    from tickguard.preflight.flow import preflight

    state = await preflight(symbols=["005930"], force=True, return_state=True)
    posts = slack.wait_for(1, 10)
    assert state.is_completed(), state.message
    assert state.message and state.message.startswith("go")
    verdict = [p for p in posts if "tickguard preflight" in str(p["payload"].get("text", ""))]
    assert verdict and "GO" in verdict[-1]["payload"]["text"]
    async with httpx.AsyncClient(timeout=10) as client:
        reply = await client.post(
            f"{prefect_api.url}/artifacts/filter",
            json={"artifacts": {"key": {"any_": ["preflight"]}}},
        )
    reply.raise_for_status()
    artifact = reply.json()[-1]
    assert artifact["type"] == "table" and "preflight: go" in artifact["description"]
    assert "kis key k1" in str(artifact["data"])


async def test_flow_on_a_holiday_ends_market_closed_without_checks_or_slack(
    prefect_api: PrefectApi, env: dict[str, str], slack: FakeSlack
) -> None:
    from tickguard.preflight.flow import preflight

    state = await preflight(day="2026-12-31", return_state=True)  # KRX year-end closure
    assert state.is_completed()
    assert state.message == "market closed: 2026-12-31 is not a trading day"
    assert slack.posts == []
