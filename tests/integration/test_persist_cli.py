"""``tickguard persist``: refuses to start on bad input with a clear message; stops on SIGINT."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime

import psycopg
import pytest
import redis

from tickguard.models import KST, Batch, Broker, Side, Source, Trade
from tickguard.sinks.encoding import encode_batch
from tickguard.sinks.redis_stream import FIELD, stream_key
from tickguard.store.migrate import libpq_url

CODE = "from tickguard.cli import main; main()"
PG_ADMIN = os.environ.get(
    "TICKGUARD_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def _env(db_url: str, redis_url: str, prefix: str, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "TICKGUARD_DATABASE_URL": db_url,
        "TICKGUARD_REDIS_URL": redis_url,
        "TICKGUARD_SINK__STREAM_PREFIX": prefix,
        "TICKGUARD_SINK__PERSIST_BLOCK_MS": "50",
        **extra,
    }


def _run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-c", CODE, "persist", *args], env=env, capture_output=True, timeout=120
    )


@pytest.fixture
def empty_db() -> Iterator[str]:
    """A database that exists but was never migrated."""
    name = f"tg_t_empty_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rpartition("/")[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_unmigrated_database_is_refused_with_the_fix(
    empty_db: str, redis_url: str, stream_prefix: str
) -> None:
    out = _run(_env(empty_db, redis_url, stream_prefix))
    assert out.returncode == 1
    assert b"tickguard db upgrade" in out.stderr
    assert empty_db.encode() not in out.stderr + out.stdout  # URLs are never printed


def test_bad_fault_setting_names_the_variable(
    db_url: str, redis_url: str, stream_prefix: str
) -> None:
    out = _run(_env(db_url, redis_url, stream_prefix, TICKGUARD_PERSIST_FAULT="explode"))
    assert out.returncode == 2
    assert b"TICKGUARD_PERSIST_FAULT" in out.stderr


def test_bad_option_prints_usage(db_url: str, redis_url: str, stream_prefix: str) -> None:
    out = _run(_env(db_url, redis_url, stream_prefix), "--consumers", "x")
    assert out.returncode == 2
    assert b"Usage" in out.stderr


def test_runs_until_sigint_then_exits_cleanly(
    db_url: str, redis_url: str, stream_prefix: str
) -> None:
    ts = datetime(2026, 3, 3, 9, 0, tzinfo=KST)
    trade = Trade(Broker.KIWOOM, "000660", ts.date(), ts, 180_000, 5, Side.SELL, 5, ts, Source.WS)
    client = redis.Redis.from_url(redis_url)
    client.xadd(stream_key(stream_prefix), {FIELD: encode_batch(Batch(trades=[trade]))})
    proc = subprocess.Popen(
        [sys.executable, "-c", CODE, "persist"], env=_env(db_url, redis_url, stream_prefix)
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _stored(db_url) == 0:
            time.sleep(0.05)
        assert _stored(db_url) == 1
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=30)
        client.close()
    assert code == 0


def _stored(db_url: str) -> int:
    with psycopg.connect(libpq_url(db_url)) as conn:
        row = conn.execute("SELECT count(*) FROM trades").fetchone()
    return int(row[0]) if row else 0
