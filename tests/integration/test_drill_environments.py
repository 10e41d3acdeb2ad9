"""The drill environments against real servers: private Valkey/PostgreSQL really go down
and come back, the proxy really slows a query, the watch really sees persist's lag.

Time is scaled: at speed 60 one session minute is one wall second. The shared Redis and
PostgreSQL are only read from (the redis-outage drill keeps using the configured database).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Callable
from typing import Any

import psycopg
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from sqlalchemy.engine import make_url

from tickguard.drill.env_api import Disruption
from tickguard.drill.environments import postgres_outage, redis_outage
from tickguard.drill.private import private_valkey
from tickguard.drill.proxy import SlowProxy, Throttle
from tickguard.drill.runner import DrillOptions, run_drill
from tickguard.drill.scenarios import Scenario, scenario, verdict
from tickguard.drill.watch import StreamWatch
from tickguard.settings import Settings
from tickguard.store.migrate import libpq_url

pytestmark = pytest.mark.slow

SPEED = 60.0
PG_ADMIN_URL = os.environ.get(
    "TICKGUARD_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TICKGUARD_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _opts(**extra: float) -> DrillOptions:
    return DrillOptions(Scenario("env-test", "test", extra=extra), minutes=3.0, speed=SPEED)


def _redis_up(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=0.3, retry=Retry(NoBackoff(), 0))
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def _pg_up(url: str) -> bool:
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=1) as conn:
            conn.execute("SELECT 1")
        return True
    except psycopg.OperationalError:
        return False


async def _until(predicate: Callable[[], bool], timeout_s: float = 15.0) -> float:
    """Poll (on a thread) until ``predicate`` holds; returns the time.time() it did."""
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(predicate):
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)
    return time.time()


async def test_redis_outage_stops_the_private_server_and_keeps_its_stream() -> None:
    async with redis_outage(PG_ADMIN_URL, REDIS_URL, _opts(outage_at_min=0.5, outage_min=2)) as env:
        assert isinstance(env, Disruption)  # the runner's seam (env_api)
        assert env.redis_url != REDIS_URL and env.admin_url == PG_ADMIN_URL
        client = redis.Redis.from_url(env.redis_url)
        client.xadd("drilltest:events", {b"b": b"x"})
        start = time.time()
        during = asyncio.create_task(env.during(start, start + 10))
        down = await _until(lambda: not _redis_up(env.redis_url))
        up = await _until(lambda: _redis_up(env.redis_url))
        await during
        assert 1.5 <= up - down <= 6.0  # 2 session minutes = 2 s wall (+ restart)
        assert client.xlen("drilltest:events") == 1  # AOF: the stream survives the outage
        client.close()
        report = env.report()
    assert report["outage_server"] == "redis" and 1.9 <= report["outage_s"] <= 6.0
    assert report["outage_min"] == 2 and report["unpersisted_trimmed"] == 0


async def test_postgres_outage_is_cancelled_into_a_running_server() -> None:
    async with postgres_outage(PG_ADMIN_URL, REDIS_URL, _opts(outage_at_min=0.2)) as env:
        assert _pg_up(env.admin_url) and _redis_up(env.redis_url)
        start = time.time()
        during = asyncio.create_task(env.during(start, start + 600))
        await _until(lambda: not _pg_up(env.admin_url))
        during.cancel()  # the session ended inside the outage: the server must come back
        with pytest.raises(asyncio.CancelledError):
            await during
        assert await asyncio.to_thread(_pg_up, env.admin_url)
        report = env.report()
    assert report["outage_server"] == "postgres" and report["outage_s"] < 5.0
    assert not _pg_up(env.admin_url)  # removed at exit


def test_proxy_adds_latency_and_caps_bandwidth_only_while_slow() -> None:
    url = make_url(PG_ADMIN_URL)
    big = "SELECT repeat('x', 131072)"
    with SlowProxy(url.host or "127.0.0.1", url.port or 5432) as proxy:
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(False)
        with psycopg.connect(libpq_url(proxied)) as conn:
            conn.execute("SELECT 1")
            fast, fast_big = _timed(conn, "SELECT 1"), _timed(conn, big)
            proxy.slow(Throttle(latency_s=0.15, bytes_per_s=128 * 1024))
            slow, slow_big = _timed(conn, "SELECT 1"), _timed(conn, big)
            proxy.fast()
            after = _timed(conn, "SELECT 1")
    assert slow >= 0.3 and fast < 0.1 and after < 0.1  # 150 ms each way while slow
    assert slow_big >= 1.0 and fast_big < 0.2  # 128 KiB at 128 KiB/s while slow
    assert proxy.counters.slowed_chunks >= 4 and proxy.counters.connections == 1


def _timed(conn: psycopg.Connection[Any], sql: str) -> float:
    begun = time.monotonic()
    conn.execute(sql).fetchall()
    return time.monotonic() - begun


def test_watch_measures_lag_catch_up_and_refuses_a_trim_past_pending() -> None:
    with private_valkey() as valkey:
        url = valkey.url()
        client = redis.Redis.from_url(url)
        stream = "tgdrill:x:events"
        client.xgroup_create(stream, "persist", id="0", mkstream=True)
        ids = [client.xadd(stream, {b"b": b"x"}) for _ in range(5)]
        watch = StreamWatch(url, interval_s=0.05)
        watch.start()
        try:
            time.sleep(0.3)
            client.xreadgroup("persist", "c", {stream: ">"}, count=2)
            client.xdel(stream, ids[0])  # a pending entry gone: what a bad trim would do
            time.sleep(0.3)
            watch.restored(time.time())
            client.xreadgroup("persist", "c", {stream: ">"})
            client.xack(stream, "persist", *ids)
            time.sleep(0.3)
        finally:
            watch.stop()
            client.close()
    assert watch.lag_peak_entries == 5 and watch.lag_peak_s >= 0.3
    assert watch.trimmed_unpersisted == 1
    report = watch.report("persist")
    assert report["persist_catch_up_s"] is not None and report["persist_catch_up_s"] < 0.3


# -- the scenarios end to end, tiny: the disruption shortened to fit a few-second session --


async def _scenario_drill(name: str, **extra: float) -> dict[str, Any]:
    sc = dataclasses.replace(scenario(name), extra={**scenario(name).extra, **extra})
    opts = DrillOptions(sc, symbols=1, minutes=4.0, speed=SPEED)
    report = await run_drill(Settings(), opts, admin_url=PG_ADMIN_URL, redis_url=REDIS_URL)
    assert verdict(sc, report) == [], report
    assert report["persist_caught_up"] is True and report["unpersisted_trimmed"] == 0
    assert report["trades_stored"] > 0
    return report


async def test_redis_outage_drill_spools_replays_and_loses_nothing() -> None:
    report = await _scenario_drill("redis-outage", outage_at_min=1.5, outage_min=1.5)
    assert report["outage_server"] == "redis" and report["outage_s"] >= 1.4
    assert report["spool_peak_bytes"] > 0 and report["spool_drain_s"] is not None
    assert report["persist_catch_up_s"] is not None


async def test_postgres_outage_drill_holds_the_stream_and_catches_up() -> None:
    report = await _scenario_drill("postgres-outage", outage_at_min=1.5, outage_min=1.5)
    assert report["outage_server"] == "postgres" and report["outage_s"] >= 1.4
    assert report["persist_lag_peak_s"] >= 1.0  # nothing stored while PostgreSQL was away
    assert report["persist_catch_up_s"] is not None and report["spool_peak_bytes"] == 0


async def test_slow_sink_drill_lags_within_bounds_and_loses_nothing() -> None:
    report = await _scenario_drill("slow-sink", slow_at_min=1.5, slow_min=1.5)
    assert report["slow_s"] >= 1.4 and report["proxy_slowed_chunks"] > 0
    assert report["persist_lag_peak_s"] > 0.2 and report["persist_catch_up_s"] is not None
