"""REST access tokens cached in Redis and shared by every process using one app key.

KIS refuses a second ``tokenP`` within a minute (EGW00133) and sends its user a KakaoTalk
message per issue, so a token is issued once and reused by every backfill worker until
shortly before it expires. Redis holds the token (under the app key's *name*, never the key)
and an "issued recently" marker that lives ``min_interval_s``: while it exists nobody issues
again; a worker that finds no token and the marker set waits for the issuer to publish.
A token the broker rejects (expired early, revoked) is dropped with :meth:`invalidate` and
the next ``get`` issues a new one once the marker has expired.

The token sits in Redis in clear (as in every KIS client that caches tokens on disk);
protect Redis accordingly. It never reaches a log line.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis
from pydantic import SecretStr
from redis.exceptions import RedisError

from tickguard.errors import AuthError

log = logging.getLogger(__name__)

Issue = Callable[[], Awaitable[tuple[SecretStr, datetime]]]
"""Asks the broker for a token: (token, expires_at tz-aware)."""


class SharedToken:
    """One app key's token, shared through Redis (``key`` names the broker and app)."""

    def __init__(
        self,
        client: aioredis.Redis,
        key: str,
        issue: Issue,
        *,
        min_interval_s: float = 61.0,
        renew_before: timedelta = timedelta(hours=1),
        wait_s: float = 90.0,
    ) -> None:
        self._client = client
        self._key = key
        self._marker = key + ":issued"
        self._issue = issue
        self._min_interval_s = min_interval_s
        self._renew_before = renew_before
        self._wait_s = wait_s
        self.issued = 0

    async def get(self) -> SecretStr:
        """A valid token: the cached one, or a new one when none is fresh (bounded wait)."""
        deadline = time.monotonic() + self._wait_s
        while True:
            cached = await self._cached()
            if cached is not None:
                return cached
            if await self._claim():
                return await self._issue_and_store()
            if time.monotonic() > deadline:
                raise AuthError(f"no token for {self._key}: issued within the last minute")
            await asyncio.sleep(0.5)

    async def invalidate(self) -> None:
        """Forget the cached token (the broker rejected it)."""
        log.info("token %s rejected by the broker: dropped from the cache", self._key)
        await self._redis(self._client.delete(self._key))

    async def _cached(self) -> SecretStr | None:
        raw = await self._redis(self._client.get(self._key))
        if not isinstance(raw, (str, bytes)):
            return None
        doc = json.loads(raw)
        expires = datetime.fromisoformat(doc["expires_at"])
        if expires - datetime.now(UTC) <= self._renew_before:
            return None
        return SecretStr(doc["token"])

    async def _claim(self) -> bool:
        """Take the right to issue (at most once per ``min_interval_s`` across processes)."""
        ms = int(self._min_interval_s * 1000)
        return bool(await self._redis(self._client.set(self._marker, "1", nx=True, px=ms)))

    async def _issue_and_store(self) -> SecretStr:
        token, expires = await self._issue()
        ttl = int((expires - datetime.now(UTC)).total_seconds())
        doc = json.dumps({"token": token.get_secret_value(), "expires_at": expires.isoformat()})
        if ttl > 0:
            await self._redis(self._client.set(self._key, doc, ex=ttl))
        self.issued += 1
        log.info("token %s issued, expires %s", self._key, expires.isoformat())
        return token

    async def _redis(self, call: Awaitable[object]) -> object:
        try:
            return await call
        except RedisError as exc:
            raise AuthError(f"token cache {self._key}: Redis refused ({exc})") from exc
