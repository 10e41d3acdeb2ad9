"""Run the schema migrations shipped inside the package, from code.

No ``alembic.ini`` is read: the Alembic Config is built here and points at
``tickguard/store/migrations``, so the same calls work from a source tree, an installed
wheel or a test fixture. URLs are SQLAlchemy URLs (``postgresql+psycopg://…``); a plain
``postgresql://`` or ``postgres://`` is rewritten to use psycopg 3. URLs carry passwords:
they are never logged.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError
from sqlalchemy.pool import NullPool

from tickguard.errors import StorageError
from tickguard.store.schema import PARTITIONED_TABLES

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
MIGRATION_LOCK_KEY = 0x7469636B67756172  # "tickguar": one advisory lock for all upgrades
_PARTITION_RE = re.compile(rf"^({'|'.join(PARTITIONED_TABLES)})_(p\d{{8}}|default)$")
_ALEMBIC = threading.Lock()
"""Alembic's ``context`` is process-global: one migration command at a time per process."""


def sqlalchemy_url(url: str) -> str:
    """Rewrite ``postgresql://`` / ``postgres://`` to the psycopg 3 driver SQLAlchemy needs."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if not url.startswith("postgresql+psycopg://"):
        raise StorageError("expected a postgresql:// or postgresql+psycopg:// database URL")
    return url


def libpq_url(url: str) -> str:
    """The same URL as psycopg.connect() takes it (no SQLAlchemy driver suffix)."""
    return "postgresql://" + sqlalchemy_url(url)[len("postgresql+psycopg://") :]


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    """Hide day/default partitions (and their indexes) from autogenerate and drift checks."""
    return not (type_ in ("table", "index") and name is not None and _PARTITION_RE.search(name))


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


@contextmanager
def _connect(url: str) -> Iterator[Connection]:
    engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
    try:
        try:
            conn = engine.connect()
        except OperationalError as exc:
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else "unreachable"
            raise StorageError(f"cannot connect to PostgreSQL: {reason}") from exc
        with conn:
            yield conn
    finally:
        engine.dispose()


def head_revision() -> str:
    """The newest revision shipped with this version of tickguard."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found under {MIGRATIONS_DIR}")
    return head


def known_revisions() -> set[str]:
    """Every revision shipped with this version of tickguard."""
    return {script.revision for script in ScriptDirectory.from_config(_config()).walk_revisions()}


def current_revision(url: str) -> str | None:
    """The revision the database is at; None for a database never migrated."""
    with _connect(url) as conn:
        return MigrationContext.configure(conn).get_current_revision()


def is_current(url: str) -> bool:
    """True when the database is at the head revision (start-up check of every service)."""
    return current_revision(url) == head_revision()


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database to ``revision``; a no-op when it is already there."""
    config = _config()
    with _ALEMBIC, _connect(url) as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, revision)
        conn.commit()
    log.info("database schema upgraded to %s", revision)


def downgrade(url: str, revision: str) -> None:
    """Migrate the database down to ``revision`` (``base`` drops every tickguard table)."""
    config = _config()
    with _ALEMBIC, _connect(url) as conn:
        config.attributes["connection"] = conn
        command.downgrade(config, revision)
        conn.commit()
    log.info("database schema downgraded to %s", revision)
