"""RedisStreamSink against a real, private redis-server that the tests stop and start.

The shared Redis on 6379 is never stopped: each test runs its own redis-server on an
ephemeral loopback port (AOF on, so entries written before a stop are still there after).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil
import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from tickguard.models import KST, Batch, Broker, Side, Source, Trade
from tickguard.sinks.encoding import decode_batch
from tickguard.sinks.redis_stream import FIELD, RedisStreamSink, redis_client, stream_key
from tickguard.stream.spool import Spool

STREAM = stream_key("outage")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(predicate: object, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout_s}s")


class PrivateRedis:
    """A redis-server of this test's own, with AOF so a restart keeps the stream."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _ping(self) -> bool:
        try:
            client = redis.Redis(port=self.port, socket_timeout=0.2, retry=Retry(NoBackoff(), 0))
            with client:
                return bool(client.ping())
        except redis.RedisError:
            return False

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
             str(self.workdir), "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        _wait(self._ping)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=15)
            self.proc = None
        _wait(lambda: not self._ping())

    def entries(self) -> list[Batch]:
        client = redis.Redis(port=self.port)
        try:
            return [decode_batch(fields[FIELD]) for _, fields in client.xrange(STREAM)]
        finally:
            client.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path / "redis")
    yield server
    server.stop()


def batch(i: int, n: int = 50) -> Batch:
    """Batch ``i``: n trades whose cum_volume encodes (batch, row)."""
    ts = datetime(2026, 3, 3, 9, 0, tzinfo=KST) + timedelta(seconds=i)
    now = datetime.now(UTC)
    return Batch(
        trades=[
            Trade(
                Broker.KIS,
                "005930",
                ts.date(),
                ts,
                70_000,
                1,
                Side.BUY,
                i * 1_000 + k,
                now,
                Source.WS,
            )
            for k in range(n)
        ]
    )


def batch_ids(batches: list[Batch]) -> list[int]:
    return [b.trades[0].cum_volume // 1_000 for b in batches]


def _sink(
    url: str, spool_dir: Path, *, cap: int = 64 << 20, segment: int = 256 << 10
) -> RedisStreamSink:
    spool = Spool(spool_dir, segment_bytes=segment, max_bytes=cap)
    return RedisStreamSink(redis_client(url, 0.5), STREAM, spool, timeout_s=0.5, retry_s=0.05)


async def test_outage_spools_then_replays_every_batch_in_order(
    private_redis: PrivateRedis, tmp_path: Path
) -> None:
    private_redis.start()
    sink = _sink(private_redis.url, tmp_path / "spool")
    for i in range(20):
        await sink.put(batch(i))
    assert not sink.spooling

    await asyncio.to_thread(private_redis.stop)
    slowest = 0.0
    for i in range(20, 60):
        started = time.monotonic()
        await sink.put(batch(i))
        slowest = max(slowest, time.monotonic() - started)
    assert sink.spooling
    assert slowest < 2.0  # bounded by the 0.5 s timeout, never a hang
    assert sink.counters.batches_spooled == 40 and sink.counters.send_failures == 1

    await asyncio.to_thread(private_redis.start)
    for i in range(60, 80):  # still spooled behind the backlog, so order holds
        await sink.put(batch(i))
    assert await sink.drain(timeout_s=30)
    for i in range(80, 90):  # direct again
        await sink.put(batch(i))
    counters = sink.counters
    await sink.aclose()

    assert batch_ids(private_redis.entries()) == list(range(90))
    assert counters.batches_replayed == counters.batches_spooled
    assert counters.batches_sent == 30 and counters.overflow_batches == 0
    assert list((tmp_path / "spool").glob("*.seg")) == []


async def test_spool_left_by_a_dead_sink_is_replayed_by_the_next(
    private_redis: PrivateRedis, tmp_path: Path
) -> None:
    spool_dir = tmp_path / "spool"
    first = _sink(private_redis.url, spool_dir)  # Redis not started: everything spools
    for i in range(10):
        await first.put(batch(i))
    assert first.counters.batches_spooled == 10
    await first.aclose()

    private_redis.start()
    second = _sink(private_redis.url, spool_dir)
    await second.start()
    await second.put(batch(10))  # must queue behind the leftovers
    assert await second.drain(timeout_s=30)
    await second.aclose()
    assert batch_ids(private_redis.entries()) == list(range(11))


async def test_cap_reached_overflow_counted_and_memory_bounded(tmp_path: Path) -> None:
    url = f"redis://127.0.0.1:{_free_port()}/0"  # nothing listens: connection refused
    cap = 1 << 20
    sink = _sink(url, tmp_path / "spool", cap=cap, segment=128 << 10)
    big = batch(0, n=500)  # ~25 kB encoded
    process = psutil.Process()
    await sink.put(big)  # warm up allocations
    rss_before = process.memory_info().rss
    tracemalloc.start()
    for _ in range(1_000):  # ~25 MB offered against a 1 MB cap
        await sink.put(big)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_growth = process.memory_info().rss - rss_before
    counters = sink.counters
    await sink.aclose()

    on_disk = sum(p.stat().st_size for p in (tmp_path / "spool").glob("*.seg"))
    assert on_disk <= cap
    assert counters.batches_spooled + counters.overflow_batches == 1_001
    assert counters.overflow_batches > 900
    assert counters.overflow_events == counters.overflow_batches * 500
    assert peak < 4 << 20, f"traced peak {peak} bytes"
    assert rss_growth < 32 << 20, f"RSS grew {rss_growth} bytes"


async def test_stalled_redis_times_out_into_the_spool_and_nothing_is_lost(
    private_redis: PrivateRedis, tmp_path: Path
) -> None:
    """A Redis that accepts connections but does not answer (CLIENT PAUSE) is bounded too."""
    private_redis.start()
    sink = _sink(private_redis.url, tmp_path / "spool")
    for i in range(5):
        await sink.put(batch(i))
    admin = redis.Redis(port=private_redis.port)
    admin.execute_command("CLIENT", "PAUSE", "1500", "WRITE")
    started = time.monotonic()
    for i in range(5, 15):
        await sink.put(batch(i))
    assert time.monotonic() - started < 3.0  # one 0.5 s timeout, then straight to disk
    assert sink.spooling and sink.counters.send_failures == 1
    assert await sink.drain(timeout_s=30)
    await sink.aclose()
    admin.close()

    seen = batch_ids(private_redis.entries())
    first_seen = list(dict.fromkeys(seen))
    assert first_seen == list(range(15))  # every batch, in order
    assert len(seen) - len(first_seen) <= 1  # at most the timed-out XADD landed twice
