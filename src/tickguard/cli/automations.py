"""``tickguard automations apply|check``: the files in deployments/automations, by name."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

automations_app = typer.Typer(help="Prefect automations (restart, heartbeat, stalled).",
                              no_args_is_help=True)  # fmt: skip

DirOption = Annotated[Path, typer.Option("--dir", help="Directory of automation YAML/JSON files.")]


@automations_app.command("apply")
def apply(directory: DirOption = Path("deployments/automations")) -> None:
    """Create or update every automation by name against PREFECT_API_URL (idempotent)."""
    import os

    from tickguard.errors import TickguardError
    from tickguard.orchestration.automations import apply_directory

    if not directory.is_dir():
        raise typer.BadParameter(f"{directory} is not a directory", param_hint="--dir")
    if not os.environ.get("PREFECT_API_URL"):
        typer.echo("error: set PREFECT_API_URL to the Prefect API", err=True)
        raise typer.Exit(2)
    try:
        from tickguard.settings import get_settings

        results = asyncio.run(apply_directory(directory, get_settings().orchestration.heartbeat_s))
    except TickguardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    for item in results:
        typer.echo(f"{item.action:9} {item.name}")


@automations_app.command("check")
def check(directory: DirOption = Path("deployments/automations")) -> None:
    """Validate the definitions without contacting Prefect."""
    from tickguard.errors import TickguardError
    from tickguard.orchestration.automations import check_heartbeat_window, load_definitions
    from tickguard.settings import get_settings

    if not directory.is_dir():
        raise typer.BadParameter(f"{directory} is not a directory", param_hint="--dir")
    try:
        found = load_definitions(directory)
        check_heartbeat_window(found, get_settings().orchestration.heartbeat_s)
    except TickguardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"{len(found)} automations valid: " + ", ".join(a.name for a in found))


def _register() -> None:
    from tickguard.cli import app

    app.add_typer(automations_app, name="automations")


_register()
