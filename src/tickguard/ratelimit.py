"""One request budget per broker app key, shared by every process that calls the broker.

KIS allows 20 REST calls/s per app key (2/s on paper) and answers EGW00201 past it; Kiwoom
answers 1700 past an unpublished number. Several backfill workers (threads, processes,
hosts) share one app key, so the budget lives in Redis: a GCRA (generic cell rate
algorithm) in one Lua script keeps the "theoretical arrival time" (TAT) of the next
allowed request under one key per app key, using Redis's own clock so workers on different
hosts agree. ``acquire`` waits until the request may go; ``penalize`` pushes the TAT out
after the broker said "too many" anyway (its window and ours are never perfectly aligned),
so every sharer backs off, not only the one that was refused.

With ``burst`` 1 the requests are evenly spaced at ``1/rate`` seconds: any one-second
window holds at most ``ceil(rate) + 1`` of them, which is why the configured rate sits
below the broker's limit (18/s for KIS's 20/s).
"""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tickguard.errors import StorageError

log = logging.getLogger(__name__)

_GCRA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local wait = tat - now - (burst - 1) * interval
if wait > 0 then return tostring(wait) end
local next_tat = tat + interval
redis.call('SET', KEYS[1], tostring(next_tat), 'PX', math.ceil(next_tat - now) + 1000)
return '0'
"""

_PENALIZE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
local until_ms = now + tonumber(ARGV[1])
if tat < until_ms then
  redis.call('SET', KEYS[1], tostring(until_ms), 'PX', math.ceil(until_ms - now) + 1000)
end
return '1'
"""


class RedisRateLimiter:
    """GCRA limiter for one app key, shared through Redis.

    ``key`` names the app key (its name, never the key itself: app keys are secrets).
    """

    def __init__(self, client: aioredis.Redis, key: str, rate_per_s: float, burst: int = 1) -> None:
        if rate_per_s <= 0:
            raise ValueError("rate_per_s must be positive")
        self._client = client
        self.key = key
        self.rate_per_s = rate_per_s
        self._interval_ms = 1000.0 / rate_per_s
        self._burst = max(1, burst)
        self._gcra = client.register_script(_GCRA)
        self._penalize = client.register_script(_PENALIZE)
        self.acquired = 0
        self.waited_s = 0.0

    async def try_acquire(self) -> float:
        """Take a slot now and return 0, or return the seconds to wait before asking again."""
        try:
            raw = await self._gcra(keys=[self.key], args=[self._interval_ms, self._burst])
        except RedisError as exc:
            raise StorageError(f"rate limiter {self.key}: Redis refused ({exc})") from exc
        wait_ms = float(raw.decode() if isinstance(raw, bytes) else raw)
        return max(0.0, wait_ms / 1000.0)

    async def acquire(self, timeout_s: float = 300.0) -> None:
        """Wait for a slot (bounded by ``timeout_s``; a stuck budget is an error, not a hang)."""
        started = time.monotonic()
        deadline = started + timeout_s
        while True:
            wait = await self.try_acquire()
            if wait == 0.0:
                self.acquired += 1
                self.waited_s += time.monotonic() - started
                return
            if time.monotonic() + wait > deadline:
                raise StorageError(f"rate limiter {self.key}: no slot within {timeout_s:.0f} s")
            await asyncio.sleep(wait)

    async def penalize(self, seconds: float) -> None:
        """Nobody sharing this key sends for ``seconds`` (after a broker rate-limit answer)."""
        log.info("rate limiter %s: broker refused, pausing %.2f s", self.key, seconds)
        try:
            await self._penalize(keys=[self.key], args=[seconds * 1000.0])
        except RedisError as exc:
            raise StorageError(f"rate limiter {self.key}: Redis refused ({exc})") from exc
