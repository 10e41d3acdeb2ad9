"""PostgreSQL and Redis: reachable, writable, readable, schema current, persist keeping up.

Each probe writes something it then reads back and removes (a temp table, a short-lived
key), so a read-only replica or a full Redis (``noeviction``) shows up before the open.
"""

from __future__ import annotations

import uuid

import psycopg
import redis
from redis.exceptions import RedisError

from tickguard.errors import StorageError
from tickguard.preflight.model import CheckResult, failed, passed, warned
from tickguard.settings import Settings
from tickguard.sinks import stream_admin
from tickguard.sinks.redis_stream import stream_key
from tickguard.store import migrate

TIMEOUT_S = 3


def check_postgres(database_url: str) -> CheckResult:
    """Connect, write and read a temp row, and compare the schema with the code's head."""
    try:
        with psycopg.connect(migrate.libpq_url(database_url), connect_timeout=TIMEOUT_S) as conn:
            conn.execute("CREATE TEMP TABLE preflight_probe (v text) ON COMMIT DROP")
            token = uuid.uuid4().hex
            conn.execute("INSERT INTO preflight_probe VALUES (%s)", (token,))
            row = conn.execute("SELECT v FROM preflight_probe").fetchone()
            if row is None or row[0] != token:
                return failed("postgres", "read back a different value", "check the server")
        current, head = migrate.current_revision(database_url), migrate.head_revision()
    except (psycopg.Error, StorageError) as exc:
        reason = str(exc).strip().splitlines()[0][:200] if str(exc) else type(exc).__name__
        return failed(
            "postgres",
            f"unreachable: {reason}",
            "start PostgreSQL (or `tickguard stack up`) and check TICKGUARD_DATABASE_URL",
        )
    if current != head:
        return failed(
            "postgres",
            f"schema at {current or 'nothing'}, code at {head}",
            "run `tickguard db upgrade` before the collectors start (persist refuses otherwise)",
        )
    return passed("postgres", f"write/read ok; schema at head {head}")


def _client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=TIMEOUT_S, socket_connect_timeout=TIMEOUT_S)


def check_redis(settings: Settings, redis_url: str) -> list[CheckResult]:
    """Write/read a key; then the persist group on the events stream and its lag."""
    client = _client(redis_url)
    key = f"{settings.sink.stream_prefix}:preflight:{uuid.uuid4().hex}"
    try:
        client.set(key, b"1", px=10_000)
        ok = client.get(key) == b"1"
        client.delete(key)
        groups = stream_admin.groups(client, stream_key(settings.sink.stream_prefix))
    except (RedisError, OSError) as exc:
        return [
            failed(
                "redis",
                f"unreachable: {type(exc).__name__}",
                "start Redis (or `tickguard stack up`) and check TICKGUARD_REDIS_URL; until then "
                "collectors spool to disk and nothing reaches PostgreSQL",
            )
        ]
    finally:
        client.close()
    first = (
        passed("redis", "write/read ok")
        if ok
        else failed("redis", "wrote a key but read another value", "check Redis' maxmemory policy")
    )
    return [first, _group_check(settings, groups)]


def _group_check(settings: Settings, groups: list[stream_admin.GroupState]) -> CheckResult:
    name = settings.sink.consumer_group
    state = next((g for g in groups if g.name == name), None)
    if state is None:
        return warned(
            "persist group",
            f"consumer group {name!r} absent",
            "persist has not run yet (it creates the group): start the persist deployment",
        )
    lag = (state.lag or 0) + state.pending
    value = f"{lag} entries not yet stored ({state.pending} pending)"
    if lag > settings.preflight.persist_lag_warn:
        return warned(
            "persist group", value, "persist is behind: check its flow run and PostgreSQL load"
        )
    return passed("persist group", value)
