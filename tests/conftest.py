"""Shared fixtures: real PostgreSQL and Redis, isolated per test.

PostgreSQL: the schema is migrated once per session into a template database; a test that
asks for ``db_url`` gets its own database cloned from that template (fast, isolated).
Redis: a test that asks for ``stream_prefix`` gets its own key prefix, deleted afterwards.
Point them elsewhere with TICKGUARD_TEST_PG_ADMIN_URL / TICKGUARD_TEST_REDIS_URL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

for _name, _value in {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_UI_SHOW_PROMOTIONAL_CONTENT": "false",
    "DO_NOT_TRACK": "1",
    "GX_ANALYTICS_ENABLED": "false",
}.items():
    os.environ.setdefault(_name, _value)

PG_ADMIN_URL = os.environ.get(
    "TICKGUARD_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
pytest_plugins = ["fakes.prefect_server"]
"""A real Prefect server per session (``prefect_api``), for the orchestration tests."""

REDIS_URL = os.environ.get("TICKGUARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _db_url(name: str) -> str:
    base, _, _ = PG_ADMIN_URL.rpartition("/")
    return f"{base.replace('postgresql://', 'postgresql+psycopg://', 1)}/{name}"


def _admin(sql: str) -> None:
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def template_db() -> Iterator[str]:
    """A migrated database used as the template for every test database."""
    from tickguard.store.migrate import upgrade

    name = f"tg_tpl_{uuid.uuid4().hex[:10]}"
    _admin(f'CREATE DATABASE "{name}"')
    try:
        upgrade(_db_url(name))
        yield name
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db_url(template_db: str) -> Iterator[str]:
    """A fresh, migrated database of this test's own (SQLAlchemy/psycopg URL)."""
    name = f"tg_t_{uuid.uuid4().hex[:12]}"
    _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
    try:
        yield _db_url(name)
    finally:
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def stream_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    prefix = f"tgtest:{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def settings_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, redis_url: str, stream_prefix: str
) -> Path:
    """Environment for a tickguard process of this test (real services, own data dir)."""
    monkeypatch.setenv("TICKGUARD_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("TICKGUARD_DATABASE_URL", db_url)
    monkeypatch.setenv("TICKGUARD_REDIS_URL", redis_url)
    monkeypatch.setenv("TICKGUARD_SINK__STREAM_PREFIX", stream_prefix)
    from tickguard.settings import get_settings

    get_settings.cache_clear()
    return tmp_path / "data"
