"""``tickguard report [--day D] [--json]``: the daily report, read-only, from the shell.

Counts the same numbers as the ``daily-report`` flow
(:func:`tickguard.reporting.daily.daily_report`) but posts nothing: markdown to stdout,
or one JSON object with ``--json``. Exit code 1 when the database cannot be read,
2 on bad arguments.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from tickguard.cli import app
from tickguard.cli.params import trading_day


@app.command("report")
def report(
    day: Annotated[
        str | None, typer.Option(help="Trading day YYYY-MM-DD (default: today, KST).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Print the day's stored trades/books per symbol, gaps, incidents and quarantine."""
    the_day = trading_day(day)
    import psycopg

    from tickguard.reporting.daily import daily_report, markdown
    from tickguard.settings import get_settings
    from tickguard.stack import resolve_database_url
    from tickguard.store.migrate import libpq_url

    try:
        url = libpq_url(resolve_database_url(get_settings()))
        with psycopg.connect(url) as conn:
            result = daily_report(conn, the_day)
    except psycopg.Error as exc:
        typer.echo(f"report failed: {type(exc).__name__}: {str(exc).splitlines()[0]}", err=True)
        raise typer.Exit(1) from None
    typer.echo(json.dumps(result.as_json()) if as_json else markdown(result))
