"""Never two websocket sessions on one app key.

KIS allows one session per app key and answers a second one with OPSP8996; Kiwoom kicks the
first session (R10001). Two supervisors fighting over a key would knock each other off all
day. Two guards:

* in-process: a set of held keys, so one collector cannot start two sessions on one key;
* across processes: a Redis lock per key (``SET NX PX`` with periodic renewal, released on
  exit by compare-and-delete), so two collector processes cannot share a key either.

The lock name is a hash of the app key itself, not the configured name: two configs that
name one key differently still collide, and the key never appears in Redis or in logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from tickguard.errors import SessionConflictError
from tickguard.models import Broker
from tickguard.settings import AppCredential

log = logging.getLogger(__name__)

_HELD: set[str] = set()
"""Lock names held by this process."""

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


def lock_name(namespace: str, broker: Broker, credential: AppCredential) -> str:
    digest = hashlib.sha256(credential.app_key.get_secret_value().encode()).hexdigest()[:20]
    return f"{namespace}:keylock:{broker.value}:{digest}"


class KeyLease:
    """A held key. ``lost`` is set when another owner took the Redis lock from us."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lost = asyncio.Event()


class KeyGuard:
    """Hands out leases on app keys; ``redis=None`` guards within this process only."""

    def __init__(
        self,
        redis: aioredis.Redis | None,
        namespace: str,
        ttl_s: float = 30.0,
    ) -> None:
        self._redis = redis
        self._namespace = namespace
        self._ttl_ms = max(1000, int(ttl_s * 1000))
        self._owner = uuid.uuid4().hex

    @contextlib.asynccontextmanager
    async def hold(self, broker: Broker, credential: AppCredential) -> AsyncIterator[KeyLease]:
        """Hold ``credential`` for the duration; SessionConflictError when someone else has it."""
        name = lock_name(self._namespace, broker, credential)
        if name in _HELD:
            raise SessionConflictError(
                f"app key {credential.name!r} is already in use in this process"
            )
        _HELD.add(name)
        try:
            await self._acquire(name, credential)
            lease = KeyLease(name)
            renewer = asyncio.create_task(self._renew(lease), name=f"keylock-{credential.name}")
            try:
                yield lease
            finally:
                renewer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await renewer
                await self._release(name)
        finally:
            _HELD.discard(name)

    async def _acquire(self, name: str, credential: AppCredential) -> None:
        if self._redis is None:
            return
        try:
            ok = await self._redis.set(name, self._owner, nx=True, px=self._ttl_ms)
        except RedisError as exc:
            # Without Redis we cannot see other processes; refusing to collect would turn a
            # Redis outage into a data outage, so go on with the in-process guard only.
            log.warning("key lock for %s not checked (Redis unavailable: %s)", credential.name, exc)
            return
        if not ok:
            raise SessionConflictError(
                f"app key {credential.name!r} is held by another collector process"
            )

    async def _renew(self, lease: KeyLease) -> None:
        if self._redis is None:
            return
        interval = self._ttl_ms / 3000.0
        while True:
            await asyncio.sleep(interval)
            try:
                result = await self._redis.eval(_RENEW, 1, lease.name, self._owner, self._ttl_ms)
                if result == 0:
                    await self._reclaim(lease)
            except RedisError as exc:
                log.warning("key lock renewal failed (%s); will retry", exc)

    async def _reclaim(self, lease: KeyLease) -> None:
        """The lock expired (e.g. Redis was down); take it back, or mark the lease lost."""
        assert self._redis is not None
        if await self._redis.set(lease.name, self._owner, nx=True, px=self._ttl_ms):
            log.warning("key lock %s had expired and was re-acquired", lease.name)
            return
        log.error("key lock %s was taken by another process; giving up the session", lease.name)
        lease.lost.set()

    async def _release(self, name: str) -> None:
        if self._redis is None:
            return
        try:
            await self._redis.eval(_RELEASE, 1, name, self._owner)
        except RedisError as exc:
            log.warning("key lock release failed (%s); it expires by itself", exc)
