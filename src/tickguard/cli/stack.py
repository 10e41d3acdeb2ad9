"""``tickguard stack up|down|status``: the embedded PostgreSQL and Valkey.

``up`` is idempotent (running servers are reused), ``down`` stops only the embedded
servers tickguard started and keeps their data, ``status`` starts nothing. URLs are
printed without passwords. Errors (a taken port, a failed start, a bad setting) end with
exit code 1 and one line on stderr; the server logs named in the message hold the detail.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import typer

from tickguard.cli import app

if TYPE_CHECKING:
    from tickguard.stack import StackStatus

stack_app = typer.Typer(
    name="stack",
    help="Run the embedded PostgreSQL and Valkey under the data directory.",
    no_args_is_help=True,
)
app.add_typer(stack_app)


def _run(action: str) -> StackStatus:
    """Load settings and run one stack action, turning tickguard errors into exit 1."""
    from tickguard import stack
    from tickguard.errors import TickguardError
    from tickguard.settings import load_settings

    try:
        settings = load_settings()
        result: StackStatus = getattr(stack, f"stack_{action}")(settings)
        return result
    except TickguardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None


def _render(status: StackStatus, title: str) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("service", "kind", "running", "pid"):
        table.add_column(column, no_wrap=True)
    table.add_column("url", overflow="fold")
    table.add_column("data", overflow="fold")
    for svc in status.services:
        running = "[green]yes[/green]" if svc.running else "[red]no[/red]"
        pid = str(svc.pid) if svc.pid is not None else "-"
        data = str(svc.data_path) if svc.data_path else "-"
        table.add_row(svc.name, svc.kind, running, pid, svc.url, data)
    Console().print(table)


@stack_app.command("up")
def up() -> None:
    """Start (or reuse) the embedded servers that no TICKGUARD_*_URL replaces."""
    _render(_run("up"), "tickguard stack up")


@stack_app.command("down")
def down() -> None:
    """Stop the embedded servers tickguard started; their data stays."""
    _render(_run("down"), "tickguard stack down")


@stack_app.command("status")
def status(
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Show each service: embedded or external, running, pid, URL (no password), data."""
    result = _run("status")
    if as_json:
        typer.echo(json.dumps(result.as_dict(), sort_keys=True))
    else:
        _render(result, "tickguard stack status")
