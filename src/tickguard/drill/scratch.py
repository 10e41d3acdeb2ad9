"""Scratch resources of one drill: a migrated PostgreSQL database and a Redis key prefix.

A drill runs against the configured (or embedded) servers but never touches their data: it
creates ``tg_drill_<hex>``, migrates it, and uses the prefix ``tgdrill:<hex>``; both are
dropped afterwards, also when the drill fails.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import redis
from psycopg import sql
from sqlalchemy.engine import make_url

from tickguard.store.migrate import libpq_url, sqlalchemy_url, upgrade

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Scratch:
    database_url: str
    """SQLAlchemy URL of the scratch database (carries the password: never log it)."""
    stream_prefix: str


def _with_database(url: str, name: str) -> str:
    return make_url(sqlalchemy_url(url)).set(database=name).render_as_string(hide_password=False)


@contextlib.contextmanager
def scratch(admin_url: str, redis_url: str) -> Iterator[Scratch]:
    """Create, migrate and finally drop a scratch database; delete the scratch keys."""
    tag = uuid.uuid4().hex[:10]
    name = f"tg_drill_{tag}"
    prefix = f"tgdrill:{tag}"
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = _with_database(admin_url, name)
    log.info("drill scratch database %s, stream prefix %s", name, prefix)
    try:
        upgrade(url)
        yield Scratch(url, prefix)
    finally:
        with psycopg.connect(libpq_url(admin_url), autocommit=True) as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        _delete_prefix(redis_url, prefix)


def _delete_prefix(redis_url: str, prefix: str) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    except redis.RedisError as exc:
        log.warning("could not delete drill keys under %s: %s", prefix, exc)
    finally:
        client.close()
