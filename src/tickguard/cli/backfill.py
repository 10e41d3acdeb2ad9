"""``tickguard backfill --day D [--symbols …] [--broker kis] [--until T] [--json]``.

Runs the same plain function as the Prefect flow (:func:`tickguard.backfill.run.run_backfill`)
with a rich progress bar (one step per symbol), then prints the per-symbol table, or one
JSON object with ``--json``. Posts the Slack digest only with ``--slack``. Exit code 0 when
the run finished (its labels are the verdict), 1 when it could not run, 2 on bad arguments.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated

import typer

from tickguard.cli import app
from tickguard.cli.collect import parse_broker, parse_symbols
from tickguard.cli.params import trading_day


@app.command("backfill")
def backfill(
    day: Annotated[
        str | None, typer.Option(help="Trading day YYYY-MM-DD (default: today, KST).")
    ] = None,
    symbols: Annotated[
        str, typer.Option(help="Comma-separated codes, e.g. 005930,000660.")
    ] = "005930",
    broker: Annotated[str, typer.Option(help="kis or kiwoom.")] = "kis",
    until: Annotated[
        str | None, typer.Option(help="Reconcile up to HH:MM (KST) or an ISO time, not the close.")
    ] = None,
    slack: Annotated[bool, typer.Option("--slack", help="Post the Slack digest.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Refill trade gaps from REST, reconcile every minute against REST bars, label every gap."""
    the_day, codes, chosen = trading_day(day), parse_symbols(symbols), parse_broker(broker)
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from tickguard.alerting.slack import SlackPoster
    from tickguard.backfill.report import COLUMNS, post_digest, rows
    from tickguard.backfill.run import run_backfill
    from tickguard.errors import TickguardError
    from tickguard.orchestration.gate import parse_instant
    from tickguard.settings import get_settings
    from tickguard.stack import resolve_database_url, resolve_redis_url

    try:
        end = parse_instant(until) if until else None
    except ValueError:
        raise typer.BadParameter(f"{until!r} is not HH:MM or ISO", param_hint="--until") from None
    console = Console(stderr=True)
    try:
        settings = get_settings()
        with Progress(console=console, disable=as_json) as progress:
            task = progress.add_task(f"backfill {chosen.value} {the_day}", total=len(codes))
            report = asyncio.run(run_backfill(
                settings, day=the_day, symbols=codes, broker=chosen,
                database_url=resolve_database_url(settings), redis_url=resolve_redis_url(settings),
                until=end, on_symbol=lambda _r: progress.advance(task),
            ))  # fmt: skip
    except TickguardError as exc:
        typer.echo(f"backfill failed: {exc}", err=True)
        raise typer.Exit(1) from None
    if slack:
        post_digest(report, SlackPoster(settings.slack))
    if as_json:
        per_symbol = [dict(zip(COLUMNS, r, strict=True)) for r in rows(report)]
        typer.echo(json.dumps({**report.totals(), "per_symbol": per_symbol}))
        return
    table = Table(*COLUMNS, title=f"backfill {chosen.value} {the_day}: {report.status}")
    for row in rows(report):
        table.add_row(*row)
    Console().print(table if report.status == "done" else report.reason)
    totals = report.totals()
    typer.echo(", ".join(f"{k} {totals[k]}" for k in ("backfill_requests", "rate_limit_errors",
                                                       "budget_used")))  # fmt: skip
