"""``tickguard preflight [--json]``: is this host ready for the open? Exit 0 go, 1 degraded,
2 no-go — so a cron line, a CI job or a human can act on the answer alone."""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from tickguard.cli import app
from tickguard.cli.collect import parse_symbols

PROJECT_ENV = "TICKGUARD_PROJECT_DIR"


def _project_dir(value: Path | None) -> Path:
    """Where prefect.yaml and pyproject.toml are: the option, $TICKGUARD_PROJECT_DIR, or cwd."""
    chosen = value or Path(os.environ.get(PROJECT_ENV) or Path.cwd())
    if not (chosen / "prefect.yaml").is_file():
        raise typer.BadParameter(f"no prefect.yaml in {chosen}", param_hint="--project-dir")
    return chosen.resolve()


@app.command("preflight")
def preflight_cmd(
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    project_dir: Annotated[
        Path | None,
        typer.Option(help="Folder of prefect.yaml (default: $TICKGUARD_PROJECT_DIR or .)"),
    ] = None,
    symbols: Annotated[
        str | None, typer.Option(help="Comma-separated codes (default: those of prefect.yaml).")
    ] = None,
    notify: Annotated[bool, typer.Option(help="Also post the verdict to Slack.")] = False,
) -> None:
    """Check entrypoints, dependencies, settings, calendar, brokers, stores, host and Slack."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # plugin chatter at import
    folder = _project_dir(project_dir)
    codes = parse_symbols(symbols) if symbols else None
    from tickguard.preflight import post_verdict, run_preflight

    report = asyncio.run(run_preflight(folder, symbols=codes))
    if notify:
        from tickguard.settings import load_settings

        post_verdict(load_settings().slack, report)
    if as_json:
        typer.echo(json.dumps(report.as_dict()))
    else:
        _print(report.as_dict())
    raise typer.Exit(report.verdict.exit_code)


def _print(doc: dict[str, object]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"preflight: {doc['verdict']} in {doc['elapsed_s']} s")
    for column in ("check", "status", "value", "hint"):
        table.add_column(column, overflow="fold")
    style = {"pass": "green", "warn": "yellow", "fail": "red"}
    checks = doc["checks"]
    assert isinstance(checks, list)
    for c in checks:
        table.add_row(c["name"], f"[{style[c['status']]}]{c['status']}[/]", c["value"], c["hint"])
    Console().print(table)
