"""Alembic environment: runs online only, on a connection handed over by ``migrate``.

No ``alembic.ini``: ``tickguard.store.migrate`` builds the Config in code and passes an open
SQLAlchemy connection in ``config.attributes["connection"]``, so the migrations run the same
from a source tree and from an installed wheel. A transaction-scoped advisory lock makes
concurrent upgrades (several persist processes starting at once) run one after the other.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from tickguard.store.migrate import MIGRATION_LOCK_KEY, include_name
from tickguard.store.schema import metadata


def run_online(connection: Connection) -> None:
    """Run pending revisions in one transaction, serialised by an advisory lock."""
    context.configure(
        connection=connection,
        target_metadata=metadata,
        include_name=include_name,
        transaction_per_migration=False,
        compare_type=True,
    )
    with context.begin_transaction():
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("tickguard migrations run online only: partitions depend on the database")
_connection = context.config.attributes.get("connection")
if not isinstance(_connection, Connection):
    raise SystemExit("run migrations through tickguard.store.migrate (no connection was given)")
run_online(_connection)
