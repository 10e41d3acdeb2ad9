"""Daily partitions of the large tables, created ahead of time.

Without TimescaleDB, ``trades`` and ``book_snapshots`` are native ``RANGE (trading_day)``
partitioned tables with one partition per calendar day plus a DEFAULT partition, so no row
is ever refused for want of a partition. A day partition is normally created days before it
is needed (the migration creates a window around today; persist calls
:func:`ensure_partitions` once a day). If rows of a day landed in the default partition
first, creating that day's partition moves them out of the default, in the same
transaction, under a lock that holds writers off for the moment it takes.

With TimescaleDB the tables are hypertables with 1-day chunks and every function here is a
no-op (:func:`is_partitioned` is false).
"""

from __future__ import annotations

import logging
from datetime import date, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from tickguard.models import KST
from tickguard.store.schema import PARTITIONED_TABLES

log = logging.getLogger(__name__)

DAYS_BEHIND = 3
"""Days before today the migration prepares (late REST backfills land there)."""
DAYS_AHEAD = 7
"""Days after today prepared ahead, so a missed daily call costs nothing."""


def partition_name(table: str, day: date) -> str:
    """``trades_p20260126``: one name per table and day."""
    return f"{table}_p{day:%Y%m%d}"


def default_name(table: str) -> str:
    return f"{table}_default"


def is_partitioned(conn: psycopg.Connection[Any], table: str) -> bool:
    """True when ``table`` is a native partitioned table (false for a hypertable)."""
    row = conn.execute(
        "SELECT 1 FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid "
        "WHERE c.relname = %s AND c.relnamespace = current_schema()::regnamespace",
        (table,),
    ).fetchone()
    return row is not None


def existing_partitions(conn: psycopg.Connection[Any], table: str) -> set[str]:
    """Names of the partitions attached to ``table``."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = %s::regclass",
        (table,),
    ).fetchall()
    return {name for (name,) in rows}


def ensure_default(conn: psycopg.Connection[Any], table: str) -> None:
    """Create the DEFAULT partition of ``table`` if it is missing."""
    conn.execute(
        sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF {} DEFAULT").format(
            sql.Identifier(default_name(table)), sql.Identifier(table)
        )
    )


def ensure_partitions(
    conn: psycopg.Connection[Any],
    first_day: date,
    days_ahead: int,
    tables: tuple[str, ...] = PARTITIONED_TABLES,
) -> list[str]:
    """Make sure a partition exists for every day from ``first_day`` to ``first_day + days_ahead``.

    Idempotent and cheap when everything exists. Runs in one transaction (a savepoint when
    the caller already holds one). Returns the names of the partitions it created.
    """
    if days_ahead < 0:
        raise ValueError(f"days_ahead must be >= 0, got {days_ahead}")
    created: list[str] = []
    with conn.transaction():
        for table in tables:
            if not is_partitioned(conn, table):
                continue
            present = existing_partitions(conn, table)
            if default_name(table) not in present:
                ensure_default(conn, table)
            for offset in range(days_ahead + 1):
                day = first_day + timedelta(days=offset)
                if partition_name(table, day) not in present and _create_day(conn, table, day):
                    created.append(partition_name(table, day))
    if created:
        log.info("created %d day partitions from %s (%d days)", len(created), first_day, days_ahead)
    return created


def ensure_window(
    conn: psycopg.Connection[Any],
    today: date | None = None,
    behind: int = DAYS_BEHIND,
    ahead: int = DAYS_AHEAD,
) -> list[str]:
    """Partitions for ``today`` (KST) − ``behind`` … + ``ahead``: what persist calls daily."""
    anchor = today if today is not None else datetime.now(KST).date()
    return ensure_partitions(conn, anchor - timedelta(days=behind), behind + ahead)


def default_rows(conn: psycopg.Connection[Any], table: str) -> dict[date, int]:
    """Rows per trading day sitting in the default partition (a monitoring figure)."""
    rows = conn.execute(
        sql.SQL("SELECT trading_day, count(*) FROM {} GROUP BY 1 ORDER BY 1").format(
            sql.Identifier(default_name(table))
        )
    ).fetchall()
    return {day: int(count) for day, count in rows}


def _create_day(conn: psycopg.Connection[Any], table: str, day: date) -> bool:
    """Create one day partition, moving that day's rows out of the default partition first.

    Returns False when a concurrent caller created it first (checked under the lock).

    PostgreSQL refuses ``CREATE TABLE … PARTITION OF`` while the default partition holds
    rows of the new range, so those rows go through a detached table that is then attached.
    The SHARE ROW EXCLUSIVE lock on the parent keeps writers (and a concurrent call) out
    between the move and the attach; it is released at commit.
    """
    name = sql.Identifier(partition_name(table, day))
    parent = sql.Identifier(table)
    default = sql.Identifier(default_name(table))
    bounds = (day, day + timedelta(days=1))
    literals = [sql.Literal(bound) for bound in bounds]  # DDL takes no bind parameters
    conn.execute(sql.SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(parent))
    exists = conn.execute("SELECT to_regclass(%s)", (partition_name(table, day),)).fetchone()
    if exists is not None and exists[0] is not None:
        return False
    in_default = conn.execute(
        sql.SQL("SELECT 1 FROM {} WHERE trading_day >= %s AND trading_day < %s LIMIT 1").format(
            default
        ),
        bounds,
    ).fetchone()
    if in_default is None:
        conn.execute(
            sql.SQL("CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                name, parent, *literals
            )
        )
        return True
    conn.execute(
        sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)").format(
            name, parent
        )
    )
    moved = conn.execute(
        sql.SQL(
            "WITH moved AS (DELETE FROM {} WHERE trading_day >= %s AND trading_day < %s "
            "RETURNING *) INSERT INTO {} SELECT * FROM moved"
        ).format(default, name),
        bounds,
    ).rowcount
    conn.execute(
        sql.SQL("ALTER TABLE {} ATTACH PARTITION {} FOR VALUES FROM ({}) TO ({})").format(
            parent, name, *literals
        )
    )
    log.info("moved %d rows of %s from %s into a new partition", moved, day, default_name(table))
    return True
