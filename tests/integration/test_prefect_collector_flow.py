"""The collector and persist flows against a real Prefect server, the KIS simulator,
Redis and PostgreSQL: trades stored, Completed at the injected session end, artifact and
liveness events in Prefect; an XKRX holiday ends at once as "market closed"."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from fakes.prefect_server import PrefectApi
from tickguard.models import KST
from tickguard.sim.kis import KisSimConfig, KisSimulator
from tickguard.sim.market import MarketConfig
from tickguard.sim.universe import profiles_for

SYMBOLS = ["005930", "000660", "069500"]


@pytest.fixture
async def kis_sim(tmp_path: Path) -> AsyncIterator[KisSimulator]:
    market = MarketConfig(day=datetime.now(KST).date(), symbols=profiles_for(SYMBOLS), seed=3)
    config = KisSimConfig(market=market, speed=5.0, truth_dir=tmp_path / "truth")
    async with KisSimulator(config) as sim:
        yield sim


def _point_at(sim: KisSimulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKGUARD_KIS__WS_URL", sim.ws_url)
    monkeypatch.setenv("TICKGUARD_KIS__REST_URL", sim.rest_url)
    app = {"name": "t1", "app_key": "test-key-1", "app_secret": "s"}
    monkeypatch.setenv("TICKGUARD_KIS__APPS", json.dumps([app]))
    monkeypatch.setenv("TICKGUARD_ORCHESTRATION__LIVENESS_INTERVAL_S", "1")


def _count(db_url: str, table: str) -> int:
    url = db_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()  # type: ignore[arg-type]
    return int(row[0]) if row else 0


def _events(api: str, name: str, resource: str) -> list[dict[str, Any]]:
    body = {
        "filter": {
            "event": {"name": [name]},
            "resource": {"id": [resource]},
            "occurred": {"since": (datetime.now(UTC) - timedelta(hours=1)).isoformat()},
        },
        "limit": 50,
    }
    reply = httpx.post(f"{api}/events/filter", json=body, timeout=10)
    reply.raise_for_status()
    return list(reply.json()["events"])


def _poll(fn: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


async def test_holiday_ends_quickly_as_market_closed(
    prefect_api: PrefectApi, settings_env: Path
) -> None:
    from tickguard.orchestration.collector_flow import collect_kis

    started = time.monotonic()
    state = await collect_kis(day="2026-01-01", return_state=True)  # 신정: XKRX closed
    assert state.is_completed()
    assert state.message and "market closed" in state.message
    assert "not an XKRX trading day" in state.message
    assert time.monotonic() - started < 20


async def test_persist_flow_ends_at_once_after_the_close(
    prefect_api: PrefectApi, settings_env: Path
) -> None:
    from tickguard.orchestration.persist_flow import persist

    state = await persist(day="2026-11-25", return_state=True)  # a Wednesday, long closed
    assert state.is_completed()
    assert state.message and "session of 2026-11-25 is over" in state.message


async def test_collector_flow_stores_trades_and_completes_at_session_end(
    prefect_api: PrefectApi,
    settings_env: Path,
    kis_sim: KisSimulator,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from prefect.client.orchestration import get_client

    from tickguard.orchestration.collector_flow import collect_kis
    from tickguard.settings import load_settings
    from tickguard.sinks.persist import Persist
    from tickguard.stack import resolve_redis_url

    _point_at(kis_sim, monkeypatch)
    settings = load_settings()
    store = Persist.from_settings(
        settings, redis_url=resolve_redis_url(settings), database_url=db_url, consumer="t"
    )
    mover = threading.Thread(target=store.run, daemon=True)
    mover.start()
    end = datetime.now(UTC) + timedelta(seconds=12)
    try:
        state = await collect_kis(symbols=SYMBOLS, until=end.isoformat(), return_state=True)
        assert state.is_completed(), state
        assert datetime.now(UTC) >= end
        totals = await state.result()
        assert totals["trades"] > 0
        trades = await asyncio.to_thread(
            _poll, lambda: _count(db_url, "trades") >= totals["trades"], 30, "trades stored"
        )
        assert trades
    finally:
        store.stop_event.set()
        await asyncio.to_thread(mover.join, 30)
    assert _count(db_url, "trades") == totals["trades"]
    run_id = state.state_details.flow_run_id
    async with get_client() as client:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

        artifacts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["kis-collector-report"]))
        )
    mine = [a for a in artifacts if a.flow_run_id == run_id]
    assert mine and mine[0].type == "table"
    resource = f"prefect.flow-run.{run_id}"
    live = await asyncio.to_thread(
        _poll,
        lambda: _events(prefect_api.url, "tickguard.collector.liveness", resource),
        30,
        "liveness events",
    )
    payload = live[0]["payload"]
    assert {"frames_per_s", "trades_per_s", "last_trade_at"} <= set(payload)
    assert any(e["payload"]["last_trade_at"] for e in live)
    progress = _events(prefect_api.url, "tickguard.collector.progress", resource)
    assert progress, "a writing collector emits progress"


async def test_collector_fences_itself_when_prefect_ends_its_run(
    prefect_api: PrefectApi,
    settings_env: Path,
    kis_sim: KisSimulator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An automation marked the run Failed (stalled / lost heartbeats): the collector stops
    well before its end time and releases its app key to the replacement."""
    from prefect.client.orchestration import get_client
    from prefect.states import Failed

    from tickguard.orchestration.collector_flow import collect_kis

    _point_at(kis_sim, monkeypatch)
    end = datetime.now(UTC) + timedelta(seconds=120)
    started = datetime.now(UTC) - timedelta(seconds=1)
    task = asyncio.create_task(
        collect_kis(symbols=SYMBOLS[:1], until=end.isoformat(), return_state=True)
    )
    async with get_client() as client:

        async def running() -> Any:
            # The session's server also holds other tests' runs (some left Running on
            # purpose): pick this test's collector run, not whatever runs first.
            runs = await client.read_flow_runs(limit=50)
            live = [
                r
                for r in runs
                if r.state
                and r.state.is_running()
                and r.created is not None
                and r.created >= started
                and r.flow_id == await _flow_id(client, "kis-collector")
            ]
            return live[0] if live else None

        run = None
        deadline = time.monotonic() + 60
        while run is None and time.monotonic() < deadline:
            run = await running()
            await asyncio.sleep(0.2)
        assert run is not None
        await client.set_flow_run_state(run.id, Failed(message="marked by a test"), force=True)
        fenced_at = time.monotonic()
        state = await asyncio.wait_for(task, 60)
    assert time.monotonic() - fenced_at < 30
    assert datetime.now(UTC) < end
    assert state.is_failed() and state.name == "Fenced"
    assert "stopped by the orchestrator" in (state.message or "")


async def _flow_id(client: Any, name: str) -> Any:
    try:
        return (await client.read_flow_by_name(name)).id
    except Exception:  # not registered yet: the run has not started
        return None
