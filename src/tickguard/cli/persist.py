"""``tickguard persist``: move the events stream into PostgreSQL until Ctrl-C or SIGTERM.

URLs come from ``TICKGUARD_DATABASE_URL`` / ``TICKGUARD_REDIS_URL``; when unset, the
embedded stack provides its own servers (``tickguard.stack``). URLs hold passwords and are
never printed. The schema must be current (``tickguard db upgrade``): persist refuses to
start on an old schema rather than quarantine every row it cannot insert.
"""

from __future__ import annotations

import importlib
import logging
import socket
from collections.abc import Callable
from typing import Annotated, cast

import typer

from tickguard.cli import app
from tickguard.errors import TickguardError
from tickguard.settings import Settings


def service_urls(settings: Settings) -> tuple[str, str]:
    """(database URL, redis URL): configured ones, else the embedded stack's."""
    db = settings.database_url.get_secret_value() if settings.database_url else None
    rd = settings.redis_url.get_secret_value() if settings.redis_url else None
    if db is not None and rd is not None:
        return db, rd
    try:
        stack = importlib.import_module("tickguard.stack")
    except ImportError:
        stack = None
    resolve_db = getattr(stack, "resolve_database_url", None)
    resolve_rd = getattr(stack, "resolve_redis_url", None)
    if resolve_db is None or resolve_rd is None:
        raise TickguardError(
            "no embedded stack in this build: set TICKGUARD_DATABASE_URL and TICKGUARD_REDIS_URL"
        )
    db = db or cast(Callable[[Settings], str], resolve_db)(settings)
    rd = rd or cast(Callable[[Settings], str], resolve_rd)(settings)
    return db, rd


@app.command("persist")
def persist_cmd(
    consumer: Annotated[
        str | None,
        typer.Option(
            "--consumer",
            help="Consumer name in the group (default: host name). Give each process its own.",
        ),
    ] = None,
) -> None:
    """Read the events stream as a consumer group and store it in PostgreSQL (XACK after commit)."""
    logging.getLogger("alembic").setLevel(logging.WARNING)  # plugin chatter at import
    from tickguard.settings import get_settings
    from tickguard.sinks.persist import Persist, stop_on_signals
    from tickguard.store import migrate

    try:
        settings = get_settings()
        db_url, redis_url = service_urls(settings)
        if not migrate.is_current(db_url):
            raise TickguardError("database schema is not current: run `tickguard db upgrade`")
        persist = Persist.from_settings(
            settings,
            redis_url=redis_url,
            database_url=db_url,
            consumer=consumer or socket.gethostname(),
        )
    except (TickguardError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2 if isinstance(exc, ValueError) else 1) from None
    stop_on_signals(persist)
    persist.run()
