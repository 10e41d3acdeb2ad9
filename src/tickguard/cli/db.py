"""``tickguard db``: migrate the database and show where its schema stands.

The URL comes from ``TICKGUARD_DATABASE_URL``; when that is unset, the embedded stack
(``tickguard.stack.resolve_database_url``) provides the URL of its own PostgreSQL. The URL
holds a password, so it is never printed.
"""

from __future__ import annotations

import logging
from datetime import date

import typer

from tickguard.cli import app
from tickguard.errors import TickguardError

db_app = typer.Typer(help="Database schema: migrations and partitions.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.callback()
def _quiet_alembic() -> None:
    """Alembic logs every plugin it loads at INFO; keep the command's output to the point."""
    logging.getLogger("alembic").setLevel(logging.WARNING)


def database_url() -> str:
    """TICKGUARD_DATABASE_URL, else the embedded PostgreSQL's URL (started if need be)."""
    from tickguard.settings import get_settings
    from tickguard.stack import resolve_database_url

    return resolve_database_url(get_settings())


def _fail(exc: Exception) -> typer.Exit:
    typer.echo(f"error: {exc}", err=True)
    return typer.Exit(code=1)


@db_app.command("upgrade")
def upgrade_cmd(
    revision: str = typer.Option("head", "--revision", "-r", help="Target revision."),
) -> None:
    """Migrate the database to the newest schema (safe to run again, and concurrently)."""
    from tickguard.store import migrate

    try:
        url = database_url()
        before = migrate.current_revision(url)
        migrate.upgrade(url, revision)
        after = migrate.current_revision(url)
    except TickguardError as exc:
        raise _fail(exc) from None
    typer.echo(f"schema: {before or 'empty'} -> {after}")


@db_app.command("current")
def current_cmd() -> None:
    """Print the database's schema revision and the newest one; exit 1 when behind."""
    from tickguard.store import migrate

    try:
        current = migrate.current_revision(database_url())
    except TickguardError as exc:
        raise _fail(exc) from None
    head = migrate.head_revision()
    if current == head:
        state = "up to date"
    elif current is not None and current not in migrate.known_revisions():
        state = "written by a newer tickguard: upgrade tickguard"
    else:
        state = "behind: run `tickguard db upgrade`"
    typer.echo(f"current: {current or 'empty'}  head: {head}  ({state})")
    if current != head:
        raise typer.Exit(code=1)


@db_app.command("partitions")
def partitions_cmd(
    ahead: int = typer.Option(7, "--ahead", min=0, help="Days after today to prepare."),
    behind: int = typer.Option(3, "--behind", min=0, help="Days before today to prepare."),
    today: str = typer.Option("", "--today", help="Anchor day YYYY-MM-DD (default: today KST)."),
) -> None:
    """Create the daily partitions of trades and book_snapshots around today."""
    import psycopg

    from tickguard.store.migrate import libpq_url
    from tickguard.store.partitions import ensure_window

    try:
        anchor = date.fromisoformat(today) if today else None
    except ValueError:
        raise typer.BadParameter("expected YYYY-MM-DD", param_hint="--today") from None
    try:
        with psycopg.connect(libpq_url(database_url()), autocommit=True) as conn:
            created = ensure_window(conn, anchor, behind=behind, ahead=ahead)
    except (TickguardError, psycopg.Error) as exc:
        raise _fail(exc) from None
    typer.echo(
        f"created {len(created)} partitions" + (f": {', '.join(created)}" if created else "")
    )
