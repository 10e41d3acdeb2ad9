"""Collector-side sink: one XADD per batch, a disk spool while Redis is unreachable.

Why this shape: the incident lost a morning because the hand-off had nowhere to put data
while its downstream was away. Here a batch goes to Redis when Redis answers within a
bounded timeout; otherwise it goes to the disk spool (:mod:`tickguard.stream.spool`), and
while the spool holds anything every new batch goes there too, so the stream receives
batches in the order they were put. A background task replays the spool oldest-first
once Redis answers again, then hands back to direct XADDs.

Bounded: ``put`` waits at most ``timeout_s`` on Redis (the client has its own retries
disabled) and holds one encoded batch; the spool has a byte cap and counts what exceeds it.
An XADD that timed out may still have landed, so a batch can reach the stream twice;
persist stores by natural key, so that is harmless, and a loss is not.

Entries: stream ``f"{prefix}:events"``, field ``b`` holding
:func:`~tickguard.sinks.encoding.encode_batch` bytes. No MAXLEN on XADD:
only persist trims, and only below what every group acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict, dataclass
from typing import Any, Final

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from tickguard.models import Batch
from tickguard.settings import Settings
from tickguard.sinks.encoding import encode_batch
from tickguard.stream.spool import Spool

log = logging.getLogger(__name__)

FIELD: Final = b"b"
_UNREACHABLE = (RedisError, OSError, TimeoutError)


def stream_key(prefix: str) -> str:
    """The stream every sink of a deployment writes to and persist reads from."""
    return f"{prefix}:events"


def redis_client(url: str, timeout_s: float) -> Redis:
    """An asyncio client that fails fast: bounded socket timeouts, no hidden retries."""
    return Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )


@dataclass(slots=True)
class SinkCounters:
    batches_sent: int = 0
    events_sent: int = 0
    batches_spooled: int = 0
    events_spooled: int = 0
    batches_replayed: int = 0
    events_replayed: int = 0
    send_failures: int = 0
    overflow_batches: int = 0
    overflow_events: int = 0
    spool_bytes: int = 0
    torn_records: int = 0


class RedisStreamSink:
    """XADD batches to one stream; spool and replay in order while Redis is away."""

    def __init__(
        self,
        client: Redis,
        stream: str,
        spool: Spool,
        *,
        timeout_s: float = 2.0,
        retry_s: float = 0.2,
        retry_cap_s: float = 5.0,
    ) -> None:
        self.client = client
        self.stream = stream
        self.spool = spool
        self.timeout_s = timeout_s
        self.retry_s = retry_s
        self.retry_cap_s = retry_cap_s
        self._counters = SinkCounters()
        self._down = False
        self._lock = asyncio.Lock()
        self._replayer: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, redis_url: str, *, name: str = "default", timeout_s: float = 2.0
    ) -> RedisStreamSink:
        """A sink on ``redis_url`` with its spool under ``<data_dir>/spool/<name>``."""
        spool = Spool(
            settings.data_dir / "spool" / name,
            segment_bytes=settings.sink.spool_segment_bytes,
            max_bytes=settings.sink.spool_max_bytes,
        )
        client = redis_client(redis_url, timeout_s)
        return cls(client, stream_key(settings.sink.stream_prefix), spool, timeout_s=timeout_s)

    @property
    def counters(self) -> SinkCounters:
        """A snapshot of the counters, spool figures included (for the metrics layer)."""
        stats = self.spool.stats
        self._counters.overflow_batches = stats.overflow_batches
        self._counters.overflow_events = stats.overflow_events
        self._counters.spool_bytes = stats.bytes
        self._counters.torn_records = stats.torn_records
        return SinkCounters(**asdict(self._counters))

    @property
    def spooling(self) -> bool:
        """True while batches go to disk instead of Redis."""
        return self._down or not self.spool.empty

    async def put(self, batch: Batch) -> None:
        """Hand one batch on: to Redis, else to the spool. Returns within ~timeout_s."""
        await self.put_encoded(encode_batch(batch), len(batch))

    async def put_encoded(self, data: bytes, events: int) -> None:
        """:meth:`put` for an already encoded batch."""
        async with self._lock:
            if self.spooling:
                self._to_spool(data, events)
                return
            try:
                await self._xadd(data)
            except _UNREACHABLE as exc:
                self._counters.send_failures += 1
                log.warning(
                    "redis unreachable (%s); spooling to %s",
                    type(exc).__name__,
                    self.spool.directory,
                )
                self._down = True
                self._to_spool(data, events)
                return
            self._counters.batches_sent += 1
            self._counters.events_sent += events

    async def _xadd(self, data: bytes) -> None:
        # asyncio.timeout, not wait_for: no extra task per batch on the hot path
        async with asyncio.timeout(self.timeout_s):
            await self.client.xadd(self.stream, {FIELD: data})

    def _to_spool(self, data: bytes, events: int) -> None:
        if self.spool.append(data, events):
            self._counters.batches_spooled += 1
            self._counters.events_spooled += events
        self._ensure_replayer()

    def _ensure_replayer(self) -> None:
        if self._replayer is None or self._replayer.done():
            self._replayer = asyncio.create_task(self._replay(), name="spool-replay")

    async def start(self) -> None:
        """Start replaying what a previous run left in the spool (if anything)."""
        if not self.spool.empty:
            self._down = True
            self._ensure_replayer()

    async def _replay(self) -> None:
        """Send spooled records oldest-first; back off while Redis is still away."""
        delay = self.retry_s
        while (record := self.spool.peek()) is not None:
            try:
                await self._xadd(record.payload)
            except _UNREACHABLE:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_cap_s)
                continue
            delay = self.retry_s
            self.spool.ack(record)
            self._counters.batches_replayed += 1
            self._counters.events_replayed += record.events
        if self._down:
            log.info(
                "spool drained: %d batch(es) replayed; back to direct XADD",
                self._counters.batches_replayed,
            )
        self._down = False

    async def drain(self, timeout_s: float) -> bool:
        """Wait until the spool is empty (shutdown, tests); False when time ran out."""
        if self._replayer is None or self._replayer.done():
            return not self.spooling
        try:
            await asyncio.wait_for(asyncio.shield(self._replayer), timeout_s)
        except TimeoutError:
            return False
        return not self.spooling

    async def aclose(self) -> None:
        """Stop replaying (the spool keeps what is left for the next start) and close."""
        if self._replayer is not None:
            self._replayer.cancel()
            await asyncio.gather(self._replayer, return_exceptions=True)
        self.spool.close()
        await self.client.aclose()

    async def __aenter__(self) -> RedisStreamSink:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()
