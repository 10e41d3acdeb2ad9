"""The Redis GCRA limiter: spacing, a budget shared by two workers, penalties (real Redis)."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis

from tickguard.ratelimit import RedisRateLimiter


async def test_requests_are_spaced_at_the_rate(redis_url: str, stream_prefix: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    limiter = RedisRateLimiter(client, f"{stream_prefix}:rl:a", rate_per_s=40.0)
    started = time.monotonic()
    for _ in range(21):
        await limiter.acquire()
    elapsed = time.monotonic() - started
    await client.aclose()
    assert 0.5 - 0.03 <= elapsed < 1.5  # 20 intervals of 25 ms, never a burst


async def test_two_workers_share_one_budget(redis_url: str, stream_prefix: str) -> None:
    clients = [aioredis.Redis.from_url(redis_url) for _ in range(2)]
    key = f"{stream_prefix}:rl:shared"
    limiters = [RedisRateLimiter(c, key, rate_per_s=50.0) for c in clients]
    stamps: list[float] = []

    async def worker(limiter: RedisRateLimiter) -> None:
        for _ in range(15):
            await limiter.acquire()
            stamps.append(time.monotonic())

    await asyncio.gather(*(worker(lim) for lim in limiters))
    for c in clients:
        await c.aclose()
    stamps.sort()
    # 30 requests at 50/s together: the pair cannot go faster than one worker alone may
    assert stamps[-1] - stamps[0] >= 29 / 50 - 0.03
    in_any_second = max(sum(1 for u in stamps if t <= u < t + 0.2) for t in stamps)
    assert in_any_second <= 11  # 0.2 s holds at most 10 intervals (+1 edge)


async def test_penalty_pauses_every_sharer(redis_url: str, stream_prefix: str) -> None:
    client = aioredis.Redis.from_url(redis_url)
    key = f"{stream_prefix}:rl:p"
    first, second = (RedisRateLimiter(client, key, rate_per_s=100.0) for _ in range(2))
    await first.acquire()
    await first.penalize(0.4)
    started = time.monotonic()
    await second.acquire()
    waited = time.monotonic() - started
    await client.aclose()
    assert 0.3 <= waited < 1.5
