"""Register tickguard's deployments from ``prefect.yaml`` with Prefect's own ``prefect deploy``.

Why the CLI and not our own YAML reader: ``prefect deploy`` is what people run by hand and
in CI; going through it means ``tickguard up`` registers exactly what ``prefect.yaml``
says (schedules with slugs, concurrency limits, tags, parameters), nothing else. The work
pool is created first (type ``process``, name from ``settings.work_pool``) with the
heartbeat frequency and the package logger in its base job template, so every run of
every worker of the pool sends heartbeats and forwards tickguard's logs.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path
from typing import Any

from tickguard.errors import StackError
from tickguard.orchestration.processes import OFFLINE_ENV, prefect_bin
from tickguard.settings import Settings

log = logging.getLogger(__name__)

PREFECT_FILE = "prefect.yaml"


def find_project(start: Path | None = None) -> Path:
    """The nearest directory upwards holding ``prefect.yaml``."""
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / PREFECT_FILE).is_file():
            return candidate
    raise StackError(f"no {PREFECT_FILE} in {here} or above: run from the tickguard project")


def pool_job_env(settings: Settings) -> dict[str, str]:
    return {
        "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(settings.orchestration.heartbeat_s),
        "PREFECT_LOGGING_EXTRA_LOGGERS": "tickguard",
    }


async def ensure_pool(client: Any, settings: Settings) -> None:
    """Create or update the process work pool named ``settings.work_pool``."""
    from prefect.client.schemas.actions import WorkPoolCreate, WorkPoolUpdate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.workers.process import ProcessWorker

    template: dict[str, Any] = ProcessWorker.get_default_base_job_template()
    template["variables"]["properties"]["env"]["default"] = pool_job_env(settings)
    name = settings.work_pool
    try:
        await client.create_work_pool(
            WorkPoolCreate(name=name, type="process", base_job_template=template)
        )
        log.info("work pool %s created", name)
    except ObjectAlreadyExists:
        await client.update_work_pool(name, WorkPoolUpdate(base_job_template=template))
        log.info("work pool %s updated", name)


def deploy_all(project: Path, settings: Settings, api_url: str, *, timeout_s: float = 300) -> None:
    """``prefect deploy --all`` of ``project/prefect.yaml`` into the pool from settings."""
    env = {
        **OFFLINE_ENV,
        "PREFECT_API_URL": api_url,
        "TICKGUARD_WORK_POOL": settings.work_pool,
        "TICKGUARD_PROJECT_DIR": str(project),
    }
    args = [prefect_bin(), "--no-prompt", "deploy", "--all", "--prefect-file", PREFECT_FILE]
    done = subprocess.run(
        args, cwd=project, env={**os.environ, **env}, capture_output=True, text=True,
        timeout=timeout_s, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise StackError(f"prefect deploy failed (exit {done.returncode}):\n{tail}")
    log.info("deployments registered from %s", project / PREFECT_FILE)
