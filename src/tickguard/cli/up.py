"""``tickguard up`` (everything, until Ctrl-C) and ``tickguard deploy`` (register only).

``up`` is the README's run command; ``deploy`` is what a scaled-out installation runs once
against its shared Prefect API before starting workers on other hosts.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from tickguard.cli import app


def _project(value: Path | None) -> Path:
    from tickguard.errors import StackError
    from tickguard.orchestration.deploy import find_project

    try:
        return find_project(value)
    except StackError as exc:
        raise typer.BadParameter(str(exc), param_hint="--project") from None


@app.command("up")
def up(
    speed: Annotated[
        float, typer.Option(min=0.01, help="Simulated market speed (only without credentials).")
    ] = 1.0,
    project: Annotated[
        Path | None, typer.Option(help="Directory holding prefect.yaml (default: search upwards).")
    ] = None,
    start_runs: Annotated[
        bool, typer.Option(help="Start persist and collectors now when the market is open.")
    ] = True,
) -> None:
    """Run tickguard: services, Prefect server + UI, deployments, automations, a worker."""
    from tickguard.errors import TickguardError
    from tickguard.orchestration.up import UpOptions
    from tickguard.settings import get_settings

    for noisy in ("httpx", "alembic", "websockets"):
        logging.getLogger(noisy).setLevel(logging.WARNING)  # lifecycle events only
    opts = UpOptions(project=_project(project), speed=speed, start_runs=start_runs,
                     announce=typer.echo)  # fmt: skip
    try:
        asyncio.run(_main(get_settings(), opts))
    except TickguardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


async def _main(settings: object, opts: object) -> None:
    from tickguard.orchestration.up import UpOptions, run_up
    from tickguard.settings import Settings

    assert isinstance(settings, Settings) and isinstance(opts, UpOptions)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_up(settings, opts, stop)


@app.command("deploy")
def deploy_cmd(
    project: Annotated[Path | None, typer.Option(help="Directory holding prefect.yaml.")] = None,
) -> None:
    """Register the work pool, every prefect.yaml deployment and the automations."""
    import os

    from tickguard.errors import TickguardError
    from tickguard.orchestration.up import register
    from tickguard.settings import get_settings

    api = os.environ.get("PREFECT_API_URL")
    if not api:
        typer.echo("error: set PREFECT_API_URL to the Prefect API to deploy to", err=True)
        raise typer.Exit(2)
    try:
        asyncio.run(register(get_settings(), _project(project), api))
    except TickguardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"deployed to pool {get_settings().work_pool}")
