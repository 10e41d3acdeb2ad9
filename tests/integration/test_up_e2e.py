"""End to end on ``tickguard up --speed 20`` against a real Prefect server, PostgreSQL and
Redis: deployments registered with their schedules, persist and both collectors running on
the simulators, a SIGKILLed collector restarted by the automation, Ctrl-C stopping it all
cleanly with the data kept. Then a collector that dies on every start: stopped by the
restart budget with exactly one Slack escalation (local fake Slack via slack-sdk)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest

from fakes.prefect_server import PG_ADMIN_URL, PrefectApi, free_port
from fakes.slack import FakeSlack

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


async def until(fn: Callable[[], Awaitable[T]], within: float, what: str) -> T:
    """Poll ``fn`` until it returns something truthy (deadline)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = await fn()
        if value:
            return value
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out after {within:.0f} s waiting for {what}")


def trades(db_url: str) -> int:
    with psycopg.connect(db_url.replace("+psycopg", "", 1)) as conn:
        row = conn.execute("SELECT count(*) FROM trades").fetchone()
    return int(row[0]) if row else 0


async def runs_of(deployment: str, since: datetime | None = None) -> list[Any]:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.client.schemas.sorting import FlowRunSort

    async with get_client() as client:
        dep = await client.read_deployment_by_name(deployment)
        found = await client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])),
            sort=FlowRunSort.START_TIME_DESC,
            limit=50,
        )
    return [
        r
        for r in found
        if r.state is not None
        and r.state.type.value != "SCHEDULED"
        and (since is None or (r.created is not None and r.created >= since))
    ]


def base_env(tmp_path: Path, pool: str) -> dict[str, str]:
    return {
        "TICKGUARD_WORK_POOL": pool,
        "TICKGUARD_DATA_DIR": str(tmp_path / "data"),
        "PREFECT_WORKER_QUERY_SECONDS": "2",
        "TICKGUARD_ORCHESTRATION__RESTART_DELAY_BASE_S": "1",
        "TICKGUARD_ORCHESTRATION__LIVENESS_INTERVAL_S": "5",
    }


async def test_up_runs_everything_restarts_a_killed_collector_and_stops_cleanly(
    settings_env: Path, db_url: str, tmp_path: Path
) -> None:
    """The default path: no PREFECT_API_URL, so up starts its own Prefect server on a
    database of its own on the same PostgreSQL (a scratch name here)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    port, prefect_db = free_port(), f"tg_prefect_up_{uuid.uuid4().hex[:8]}"
    env = {
        **{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"},
        **base_env(tmp_path, f"tg-e2e-{uuid.uuid4().hex[:6]}"),
        "TICKGUARD_ORCHESTRATION__SERVER_PORT": str(port),
        "TICKGUARD_ORCHESTRATION__PREFECT_DATABASE": prefect_db,
    }
    log_path = tmp_path / "up.log"
    try:
        with temporary_settings(updates={PREFECT_API_URL: f"http://127.0.0.1:{port}/api"}):
            await _up_scenario(env, log_path, db_url)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{prefect_db}" WITH (FORCE)')  # type: ignore[arg-type]
    text = await asyncio.to_thread(log_path.read_text)
    assert "SIMULATOR" in text and "not market data" in text
    assert "data kept" in text


async def _up_scenario(env: dict[str, str], log_path: Path, db_url: str) -> None:
    from prefect.client.orchestration import get_client

    with log_path.open("wb") as out:
        up = subprocess.Popen(  # noqa: ASYNC220 - started once, waited on in a thread
            [str(Path(sys.executable).with_name("tickguard")), "up", "--speed", "20"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    started = time.monotonic()
    try:
        await until(
            lambda: asyncio.to_thread(_log_has, log_path, "Prefect UI:", up),
            300,
            "tickguard up to be ready",
        )
        print(f"\ntickguard up ready in {time.monotonic() - started:.1f} s")
        async with get_client() as client:
            for name in ("kis-collector", "kiwoom-collector", "persist"):
                dep = await client.read_deployment_by_name(f"{name}/{name}")
                assert dep.schedules and dep.schedules[0].slug
                assert dep.schedules[0].schedule.timezone == "Asia/Seoul"
                assert dep.work_pool_name == env["TICKGUARD_WORK_POOL"]
        first = await until(lambda: _running_with_pid("kis-collector/kis-collector"), 180, "kis")
        await until(lambda: asyncio.to_thread(trades, db_url), 120, "trades stored by persist")
        killed_at = time.monotonic()
        os.kill(int(str(first.infrastructure_pid).rsplit(":", 1)[-1]), signal.SIGKILL)

        async def restarted() -> Any:
            runs = await runs_of("kis-collector/kis-collector")
            crashed = any(r.id == first.id and r.state.type.value == "CRASHED" for r in runs)
            fresh = [r for r in runs if r.id != first.id and r.state.type.value == "RUNNING"]
            return crashed and fresh

        await until(restarted, 120, "the killed collector to run again")
        print(f"SIGKILL → Running again: {time.monotonic() - killed_at:.1f} s")
        before = await asyncio.to_thread(trades, db_url)
        await until(
            lambda: _more_trades(db_url, before), 120, "the restarted collector to store trades"
        )
    finally:
        up.send_signal(signal.SIGINT)
        stopped_at = time.monotonic()
        code = await asyncio.to_thread(up.wait, 180)
    print(f"Ctrl-C → tickguard up exited in {time.monotonic() - stopped_at:.1f} s")
    assert code == 0, _tail(log_path)
    assert await asyncio.to_thread(trades, db_url) > 0


def _tail(path: Path) -> str:
    return path.read_text()[-3000:]


def _log_has(path: Path, needle: str, proc: subprocess.Popen[bytes]) -> bool:
    if proc.poll() is not None:
        raise AssertionError(f"tickguard up exited early:\n{path.read_text()[-3000:]}")
    return path.exists() and needle in path.read_text()


async def _running_with_pid(name: str) -> Any:
    runs = await runs_of(name)
    live = [r for r in runs if r.state.type.value == "RUNNING" and r.infrastructure_pid]
    return live[0] if live else None


async def _more_trades(db_url: str, before: int) -> bool:
    return await asyncio.to_thread(trades, db_url) > before


async def test_crash_on_every_start_is_stopped_by_the_budget_with_one_escalation(
    prefect_api: PrefectApi, settings_env: Path, tmp_path: Path
) -> None:
    from prefect.client.orchestration import get_client
    from prefect.deployments.flow_runs import arun_deployment

    from tickguard.orchestration import deploy, processes
    from tickguard.orchestration.automations import apply_directory
    from tickguard.settings import load_settings

    pool = f"tg-crash-{uuid.uuid4().hex[:6]}"
    with FakeSlack() as slack:
        env = {
            **base_env(tmp_path, pool),
            "TICKGUARD_COLLECTOR_FAULT": "kill-on-start",
            "TICKGUARD_ORCHESTRATION__RESTART_MAX": "2",
            "TICKGUARD_ORCHESTRATION__RESTART_WINDOW_MIN": "10",
            "TICKGUARD_ORCHESTRATION__SESSION_END_OVERRIDE": "2099-01-01T00:00:00+00:00",
            "TICKGUARD_SLACK__WEBHOOK_URL": slack.webhook_url,
        }
        os.environ["TICKGUARD_WORK_POOL"] = pool
        try:
            settings = load_settings()
        finally:
            del os.environ["TICKGUARD_WORK_POOL"]
        async with get_client() as client:
            await deploy.ensure_pool(client, settings)
        await asyncio.to_thread(deploy.deploy_all, ROOT, settings, prefect_api.url)
        await apply_directory(ROOT / "deployments" / "automations")
        worker = processes.start_worker(pool, "crash-worker", env, tmp_path / "worker.log", ROOT)
        # kiwoom-collector: the test above crashed kis-collector on purpose, and that crash
        # rightly counts against kis-collector's budget on this shared server.
        name = "kiwoom-collector/kiwoom-collector"
        since = datetime.now(UTC)
        try:
            await arun_deployment(name, timeout=0, as_subflow=False)

            async def gave_up() -> Any:
                runs = await runs_of(name, since)
                return [r for r in runs if r.state.type.value == "CANCELLED"] and runs

            runs = await until(gave_up, 400, "the budget to stop the restarts")
            await asyncio.to_thread(slack.wait_for, 1, 30)
            # Nothing restarts it afterwards: no new run and no second message for a while.
            settle = time.monotonic() + 20
            while time.monotonic() < settle:
                assert len(await runs_of(name, since)) == len(runs)
                await asyncio.sleep(1)
        finally:
            processes.stop_process(worker)
        posts = slack.posts
    crashed = [r for r in runs if r.state.type.value == "CRASHED"]
    cancelled = [r for r in runs if r.state.type.value == "CANCELLED"]
    assert len(crashed) == 3, [r.state.type for r in runs]  # the first start + 2 restarts
    assert len(cancelled) == 1 and "restart budget exhausted" in (cancelled[0].state.message or "")
    assert len(posts) == 1, posts
    blocks = posts[0]["payload"]["blocks"]
    assert "restart budget exhausted" in blocks[0]["text"]["text"]
    assert any(f["text"].startswith("*failures*\n3") for f in blocks[2]["fields"])
