"""A private Prefect control plane for a drill: server, work pool, deployments, automations,
one process worker — the production path of ``tickguard up``, on scratch resources.

The server runs on a free loopback port with its own scratch database on the drill's
PostgreSQL (dropped afterwards); deployments come from the project's ``prefect.yaml`` through
``prefect deploy`` into a pool named for this drill, the automations from
``deployments/automations``. The worker's environment points the flows at the simulator,
the drill's scratch database and stream prefix, and the simulated session's end. Nothing
here is a stand-in: the collectors and persist run as flow runs in processes the worker
starts, and Prefect's automations restart them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import psycopg
from psycopg import sql

from tickguard.errors import StackError
from tickguard.orchestration import automations, deploy, processes
from tickguard.settings import Settings
from tickguard.store.migrate import libpq_url

log = logging.getLogger(__name__)

ACTIVE = ("RUNNING", "PENDING", "CANCELLING")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def project_dir() -> Path:
    """The project holding ``prefect.yaml``: the working directory, else this package's."""
    try:
        return deploy.find_project()
    except StackError:
        return deploy.find_project(Path(__file__).parent)


@dataclass
class PrefectRig:
    api: str
    pool: str
    project: Path
    worker: processes.Child
    server_healthy_s: float

    def flow_processes(self) -> list[psutil.Process]:
        """The worker's descendants (flow-run processes and their children)."""
        with contextlib.suppress(psutil.Error):
            return list(psutil.Process(self.worker.pid).children(recursive=True))
        return []


@contextlib.asynccontextmanager
async def prefect_rig(
    settings: Settings,
    admin_url: str,
    work_dir: Path,
    worker_env: Callable[[], Mapping[str, str]],
    api_url: str | None = None,
) -> AsyncIterator[PrefectRig]:
    """Server, pool, deployments, automations and a worker; all stopped/dropped on exit.

    ``worker_env`` is called just before the worker starts (the session's clock starts
    then). ``api_url``: use that server instead (tests share one; its deployments are
    re-pointed at this drill's pool). Inside, this process talks to that server (Prefect's
    settings context).
    """
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    tag = uuid.uuid4().hex[:10]
    db_name = f"tg_prefect_drill_{tag}"
    pool = f"tg-drill-{tag}"
    project = project_dir()
    children: list[processes.Child] = []
    try:
        if api_url is None:
            prefect_db = await asyncio.to_thread(
                processes.ensure_prefect_database, admin_url, db_name
            )
            loop = asyncio.get_running_loop()
            started = loop.time()
            server, api = await asyncio.to_thread(
                processes.start_server, prefect_db, work_dir / "prefect-home", free_port(),
                work_dir / "logs" / "prefect-server.log",
            )  # fmt: skip
            children.append(server)
            healthy_s = loop.time() - started
            log.info("drill Prefect server healthy after %.1f s", healthy_s)
        else:
            api, healthy_s = api_url, 0.0
        pool_settings = settings.model_copy(update={"work_pool": pool})
        with temporary_settings(updates={PREFECT_API_URL: api}):
            async with get_client() as client:
                await deploy.ensure_pool(client, pool_settings)
            await asyncio.to_thread(deploy.deploy_all, project, pool_settings, api)
            await automations.apply_directory(
                project / "deployments" / "automations", settings.orchestration.heartbeat_s
            )
            env = {
                "PREFECT_API_URL": api,
                "PREFECT_UI_URL": api.removesuffix("/api"),
                "TICKGUARD_WORK_POOL": pool,
                **worker_env(),
            }
            worker = await asyncio.to_thread(
                processes.start_worker, pool, f"drill-{tag}", env,
                work_dir / "logs" / "worker.log", project,
            )  # fmt: skip
            children.append(worker)
            yield PrefectRig(api, pool, project, worker, healthy_s)
    finally:
        for child in reversed(children):
            await asyncio.to_thread(processes.stop_process, child)
        if api_url is None:
            await asyncio.to_thread(_drop_database, admin_url, db_name)


def _drop_database(admin_url: str, name: str) -> None:
    try:
        with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
    except psycopg.Error as exc:
        log.warning("could not drop the drill's Prefect database %s: %s", name, exc)


async def runs_of(client: Any, deployment: str) -> list[Any]:
    """Flow runs of ``deployment`` that left Scheduled, newest first."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.client.schemas.sorting import FlowRunSort

    dep = await client.read_deployment_by_name(deployment)
    found = await client.read_flow_runs(
        deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[dep.id])),
        sort=FlowRunSort.EXPECTED_START_TIME_DESC,
        limit=50,
    )
    return [r for r in found if r.state is not None and r.state.type.value != "SCHEDULED"]


def pid_of(run: Any) -> int | None:
    """``infrastructure_pid`` is ``pid`` or ``host:pid`` depending on the worker."""
    value = run.infrastructure_pid
    if not value:
        return None
    tail = str(value).rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


async def cancel_live_runs(client: Any, deployments: list[str], timeout_s: float = 45.0) -> int:
    """Cancel the non-final runs of ``deployments`` (ending Cancelled: nothing reruns them)
    and wait until they are final; how many did not finish in time."""
    from tickguard.orchestration.up import cancel_and_wait

    live = [
        r.id for name in deployments for r in await runs_of(client, name)
        if r.state.type.value in ACTIVE
    ]  # fmt: skip
    return await cancel_and_wait(client, live, "drill over", timeout_s)
