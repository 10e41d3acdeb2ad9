"""The app-key lock: one holder per key in a process and across processes (Redis), renewal,
release on exit, and a lease that is taken away ends the session instead of fighting."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from tickguard.errors import SessionConflictError
from tickguard.models import Broker
from tickguard.settings import AppCredential
from tickguard.stream.keylock import KeyGuard, lock_name

CRED = AppCredential(name="main", app_key=SecretStr("the-real-key"), app_secret=SecretStr("s"))


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    c = aioredis.Redis.from_url(redis_url)
    yield c
    await c.aclose()


async def test_in_process_second_holder_is_refused_and_released_on_exit() -> None:
    guard = KeyGuard(None, "t")
    async with guard.hold(Broker.KIS, CRED):
        with pytest.raises(SessionConflictError, match="in use in this process"):
            async with guard.hold(Broker.KIS, CRED):
                pass
    async with guard.hold(Broker.KIS, CRED):  # free again after exit
        pass


async def test_redis_lock_is_exclusive_renewed_and_released(
    client: aioredis.Redis, stream_prefix: str
) -> None:
    first, second = KeyGuard(client, stream_prefix, ttl_s=1.0), KeyGuard(client, stream_prefix)
    name = lock_name(stream_prefix, Broker.KIS, CRED)
    assert "the-real-key" not in name  # the key itself never appears in Redis
    async with first.hold(Broker.KIS, CRED):
        # Another process (the in-process set is bypassed by releasing the name locally).
        from tickguard.stream import keylock

        keylock._HELD.discard(name)
        with pytest.raises(SessionConflictError, match="another collector process"):
            async with second.hold(Broker.KIS, CRED):
                pass
        keylock._HELD.add(name)
        deadline = time.monotonic() + 2.5  # outlive the 1 s TTL: renewal must keep it
        while time.monotonic() < deadline:
            assert await client.exists(name)
            await asyncio.sleep(0.1)
    assert not await client.exists(name)


async def test_a_lease_taken_by_another_owner_is_marked_lost(
    client: aioredis.Redis, stream_prefix: str
) -> None:
    guard = KeyGuard(client, stream_prefix, ttl_s=1.0)
    name = lock_name(stream_prefix, Broker.KIS, CRED)
    async with guard.hold(Broker.KIS, CRED) as lease:
        await client.set(name, "someone-else", px=10_000)
        await asyncio.wait_for(lease.lost.wait(), 3.0)
    assert await client.get(name) == b"someone-else"  # our release did not delete theirs
