"""``tickguard up``: the whole main job in one command, and a clean Ctrl-C.

Order: PostgreSQL and Redis (embedded unless configured) → migrations → the Prefect API
(configured ``PREFECT_API_URL``, else a local server on PostgreSQL database ``prefect``) →
simulators when a broker has no credentials → work pool + ``prefect deploy --all`` →
automations → a worker → persist and the collectors started now when the market (or the
simulator) is open; otherwise their schedules start them. Ctrl-C cancels the runs this
command started (so they finish Cancelled, not Crashed: nothing reruns them), stops the
worker (two signals), the server and the simulators, and the embedded services it
started — data stays on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from tickguard.calendar import TradingCalendar
from tickguard.orchestration import automations, deploy, processes, sims
from tickguard.settings import Settings

log = logging.getLogger(__name__)

COLLECTORS = {"kis": "kis-collector/kis-collector", "kiwoom": "kiwoom-collector/kiwoom-collector"}
PERSIST = "persist/persist"


@dataclass
class UpOptions:
    project: Path
    speed: float = 1.0
    start_runs: bool = True
    announce: Any = print
    """Where the UI address and the plain status lines go (the CLI's echo)."""


@dataclass
class Started:
    """What this command started and must stop."""

    children: list[processes.Child] = field(default_factory=list)
    run_ids: list[Any] = field(default_factory=list)
    embedded: bool = False


def deployment_symbols(project: Path) -> list[str]:
    """The collectors' default symbols in ``prefect.yaml`` (the simulators serve these)."""
    data = yaml.safe_load((project / deploy.PREFECT_FILE).read_text("utf-8"))
    for item in data["deployments"]:
        symbols = (item.get("parameters") or {}).get("symbols")
        if symbols:
            return [str(s) for s in symbols]
    raise ValueError("prefect.yaml: no collector deployment lists symbols")


async def services(settings: Settings, started: Started) -> tuple[str, str]:
    """Database and Redis URLs (embedded started when unset), schema migrated."""
    from tickguard.stack import resolve_database_url, resolve_redis_url, stack_status, stack_up
    from tickguard.store.migrate import upgrade

    before = await asyncio.to_thread(stack_status, settings)
    await asyncio.to_thread(stack_up, settings)
    started.embedded = any(s.kind == "embedded" and not s.running for s in before.services)
    db_url = await asyncio.to_thread(resolve_database_url, settings)
    redis_url = await asyncio.to_thread(resolve_redis_url, settings)
    await asyncio.to_thread(upgrade, db_url)
    return db_url, redis_url


async def prefect_api(settings: Settings, db_url: str, started: Started) -> str:
    """The configured Prefect API, else a local server of our own (PostgreSQL back end)."""
    configured = os.environ.get("PREFECT_API_URL")
    if configured:
        await asyncio.to_thread(processes.wait_healthy, configured, 60.0)
        log.info("using the configured Prefect API")
        return configured
    prefect_db = await asyncio.to_thread(
        processes.ensure_prefect_database, db_url, settings.orchestration.prefect_database
    )
    home = settings.data_dir / "prefect"
    child, api = await asyncio.to_thread(
        processes.start_server, prefect_db, home, settings.orchestration.server_port,
        settings.data_dir / "logs" / "prefect-server.log",
    )  # fmt: skip
    started.children.append(child)
    return api


async def register(settings: Settings, project: Path, api: str) -> None:
    """Work pool, deployments and automations (idempotent)."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        await deploy.ensure_pool(client, settings)
    await asyncio.to_thread(deploy.deploy_all, project, settings, api)
    await automations.apply_directory(
        project / "deployments" / "automations", settings.orchestration.heartbeat_s
    )


async def start_runs(settings: Settings, simulated: bool, started: Started) -> list[str]:
    """Start persist and the collectors now when there is something to collect."""
    from prefect.deployments.flow_runs import arun_deployment

    open_now = simulated or TradingCalendar().in_session(datetime.now(UTC))
    if not open_now:
        log.info("market closed now: persist and collectors will start on their schedules")
        return []
    names = [PERSIST, *COLLECTORS.values()]
    for name in names:
        run = await arun_deployment(name, timeout=0, as_subflow=False)
        started.run_ids.append(run.id)
    return names


async def run_up(settings: Settings, opts: UpOptions, stop: asyncio.Event) -> None:
    """Bring everything up, wait for ``stop``, then bring down what we started."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if opts.speed != 1.0 and not sims.brokers_without_credentials(settings):
        log.warning("--speed only applies to the simulated market; real brokers run in real time")
    started = Started()
    async with contextlib.AsyncExitStack() as stack:
        try:
            db_url, redis_url = await services(settings, started)
            api = await prefect_api(settings, db_url, started)
            with temporary_settings(updates={PREFECT_API_URL: api}):
                await _bring_up(settings, opts, stack, started, api, db_url, redis_url)
                await _wait(stop, started)
                await _cancel_runs(started)
        finally:
            for child in reversed(started.children):
                await asyncio.to_thread(processes.stop_process, child)
    if started.embedded:
        from tickguard.stack import stack_down

        await asyncio.to_thread(stack_down, settings)
    opts.announce("tickguard stopped; data kept.")


async def _bring_up(
    settings: Settings, opts: UpOptions, stack: contextlib.AsyncExitStack, started: Started,
    api: str, db_url: str, redis_url: str,
) -> None:  # fmt: skip
    missing = sims.brokers_without_credentials(settings)
    worker_env = {
        "PREFECT_API_URL": api,
        "PREFECT_UI_URL": api.removesuffix("/api"),
        "TICKGUARD_DATABASE_URL": db_url,
        "TICKGUARD_REDIS_URL": redis_url,
        "TICKGUARD_DATA_DIR": str(settings.data_dir),
    }
    if missing:
        symbols = deployment_symbols(opts.project)
        worker_env |= await sims.start_simulators(
            stack, missing, symbols, opts.speed, settings.data_dir
        )
        end = sims.session_end(opts.speed)
        worker_env["TICKGUARD_ORCHESTRATION__SESSION_END_OVERRIDE"] = end.isoformat()
        opts.announce(f"simulated market (x{opts.speed:g}) until {end:%H:%M:%S} UTC")
    await register(settings, opts.project, api)
    worker = await asyncio.to_thread(
        processes.start_worker, settings.work_pool, f"tickguard-up-{os.getpid()}", worker_env,
        settings.data_dir / "logs" / "worker.log", opts.project,
    )  # fmt: skip
    started.children.append(worker)
    if opts.start_runs:
        names = await start_runs(settings, bool(missing), started)
        if names:
            opts.announce("started: " + ", ".join(n.split("/")[0] for n in names))
    opts.announce(f"Prefect UI: {api.removesuffix('/api')}")
    opts.announce("Ctrl-C stops everything tickguard up started (data is kept).")


async def _wait(stop: asyncio.Event, started: Started) -> None:
    """Until ``stop``; a child that dies is reported (not silently ignored)."""
    reported: set[int] = set()
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 2.0)
        for child in started.children:
            if not child.alive() and child.pid not in reported:
                reported.add(child.pid)
                log.error("%s exited (code %s); see %s", child.name, child.process.returncode,
                          child.log_path)  # fmt: skip


async def _cancel_runs(started: Started, timeout_s: float = 45.0) -> None:
    """Cancel the runs our worker is executing (also reruns that automations started) and
    those this command started, then wait (deadline) until they are final: Cancelled, not
    Crashed, so no automation reruns them after we are gone."""
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        runs = [r.id for r in await _our_live_runs(client, started)]
        left = await cancel_and_wait(client, runs, "tickguard up stopping", timeout_s)
        if left:
            log.warning("%d runs did not finish cancelling in %.0f s", left, timeout_s)


async def cancel_and_wait(client: Any, run_ids: list[Any], message: str, timeout_s: float) -> int:
    """Move ``run_ids`` to Cancelling (they end Cancelled, not Crashed: no automation reruns
    them) and wait until they are final; how many were not final by the deadline."""
    from prefect.states import Cancelling

    live = list(run_ids)
    for run_id in live:
        await client.set_flow_run_state(run_id, Cancelling(message=message))
    deadline = asyncio.get_running_loop().time() + timeout_s
    while live and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.5)
        states = [await client.read_flow_run(r) for r in live]
        live = [r.id for r in states if r.state is None or not r.state.is_final()]
    return len(live)


async def _our_live_runs(client: Any, started: Started) -> list[Any]:
    """Non-final runs that this command started or that run in our worker's processes."""
    import psutil
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType

    pids: set[int] = set()
    for child in started.children:
        with contextlib.suppress(psutil.Error):
            pids |= {p.pid for p in psutil.Process(child.pid).children(recursive=True)}
    active = [StateType.RUNNING, StateType.PENDING, StateType.CANCELLING]
    runs = await client.read_flow_runs(
        flow_run_filter=FlowRunFilter(
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=active))
        ),
        limit=200,
    )
    ours = set(started.run_ids)
    return [r for r in runs if r.id in ours or _pid_of(r.infrastructure_pid) in pids]


def _pid_of(value: str | None) -> int | None:
    """``infrastructure_pid`` is ``pid`` or ``host:pid`` depending on the worker."""
    if not value:
        return None
    tail = str(value).rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None
