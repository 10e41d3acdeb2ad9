"""``tickguard check --from T --to T [--json]``: the completeness flow's function, by hand.

Same code path as the scheduled ``completeness`` flow (``run_completeness``): the expected
grid, the gap ledger, the GX suites, Slack incidents. Times are ISO (naive = Asia/Seoul) or
``HH:MM`` for today in Seoul. Exit 0 when the window is whole, 1 when a gap was opened or an
expectation failed, 2 on bad arguments.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated

import typer

from tickguard.cli import app
from tickguard.models import Broker


def _instant(value: str, name: str) -> datetime:
    from tickguard.orchestration.gate import parse_instant

    try:
        return parse_instant(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not HH:MM or an ISO date-time", param_hint=name
        ) from None


@app.command("check")
def check(
    start: Annotated[str, typer.Option("--from", help="Window start (ISO or HH:MM, KST).")],
    end: Annotated[str, typer.Option("--to", help="Window end (ISO or HH:MM, KST).")],
    broker: Annotated[
        list[Broker] | None, typer.Option("--broker", help="Broker(s) to check (default: all).")
    ] = None,
    symbol: Annotated[
        list[str] | None, typer.Option("--symbol", help="Symbol(s) (default: recently seen).")
    ] = None,
    gx: Annotated[bool, typer.Option("--gx/--no-gx", help="Run the GX suites too.")] = True,
    notify: Annotated[
        bool, typer.Option("--slack/--no-slack", help="Sync Slack incidents.")
    ] = True,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Check a window for completeness: gaps opened/ended, suites, Slack incidents."""
    from tickguard.errors import TickguardError
    from tickguard.quality.completeness import run_completeness
    from tickguard.quality.window import CheckWindow
    from tickguard.settings import get_settings
    from tickguard.stack import resolve_database_url

    begin, finish = _instant(start, "--from"), _instant(end, "--to")
    if finish <= begin:
        raise typer.BadParameter("--to must be after --from", param_hint="--to")
    from tickguard.store.migrate import is_current

    try:
        settings = get_settings()
        url = resolve_database_url(settings)
        if not is_current(url):
            raise TickguardError("database schema is not current: run `tickguard db upgrade`")
        result = run_completeness(
            settings,
            url,
            CheckWindow.of(begin, finish),
            [b.value for b in (broker or list(Broker))],
            symbol or [],
            validate=gx,
            notify=notify,
        )
    except (TickguardError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    if as_json:
        typer.echo(json.dumps(result.as_json()))
    else:
        _print(result.as_json())
    raise typer.Exit(code=0 if result.ok else 1)


def _print(data: dict[str, object]) -> None:
    checks = data["checks"]
    assert isinstance(checks, list)
    for item in checks:
        head = f"{item['broker']}: "
        if item["market_closed"]:
            typer.echo(head + str(item["market_closed"]))
            continue
        gx = item["gx"]
        gx_text = "" if gx is None else f", GX {'ok' if gx['success'] else 'FAILED'}"
        typer.echo(
            head + f"{len(item['gaps_opened'])} gap(s) opened, {len(item['gaps_ended'])} ended,"
            f" {item['continuity_breaks']} continuity break(s){gx_text}"
        )
        for gap in item["gaps_opened"]:
            typer.echo(f"  gap {gap['symbol']} {gap['kind']} from {gap['start']}: {gap['cause']}")
        for failed in [] if gx is None else gx["failed"]:
            typer.echo(
                f"  failed {failed['suite']}.{failed['check']}: {failed['unexpected']} row(s)"
            )
        if gx and gx["data_docs"]:
            typer.echo(f"  Data Docs: {gx['data_docs']}")
    typer.echo(f"Slack messages: {data['slack_messages']}")
