"""XTRIM MINID below what every group acknowledged: a lagging group never loses an entry."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tickguard.sinks import stream_admin
from tickguard.sinks.redis_stream import stream_key


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


def _ids(client: redis.Redis, stream: str) -> list[bytes]:
    return [entry_id for entry_id, _ in client.xrange(stream)]


def _consume(client: redis.Redis, stream: str, group: str, count: int, *, ack: bool) -> list[bytes]:
    reply = client.xreadgroup(group, "c", {stream: ">"}, count=count)
    ids = [entry_id for entry_id, _ in reply[0][1]] if reply else []
    if ack and ids:
        client.xack(stream, group, *ids)
    return ids


def test_lagging_group_keeps_its_pending_and_unread_entries(
    client: redis.Redis, stream_prefix: str
) -> None:
    stream = stream_key(stream_prefix)
    stream_admin.ensure_group(client, stream, "fast")
    stream_admin.ensure_group(client, stream, "slow")
    ids = [client.xadd(stream, {b"b": str(i).encode()}) for i in range(100)]

    _consume(client, stream, "fast", 100, ack=True)  # fast: everything acknowledged
    _consume(client, stream, "slow", 30, ack=True)  # slow: 0–29 acked
    _consume(client, stream, "slow", 20, ack=False)  # 30–49 delivered, pending; 50–99 unread

    assert stream_admin.trim_floor(client, stream) == stream_admin.parse_id(ids[30])
    deleted = stream_admin.trim_acknowledged(client, stream)
    assert deleted == 30
    assert _ids(client, stream) == ids[30:]

    client.xack(stream, "slow", *ids[30:50])  # slow catches up to 49; 50–99 still unread
    stream_admin.trim_acknowledged(client, stream)
    assert _ids(client, stream) == ids[49:]  # last-delivered kept, nothing unread touched
    assert len(_consume(client, stream, "slow", 100, ack=False)) == 50


def test_no_group_means_no_trim(client: redis.Redis, stream_prefix: str) -> None:
    stream = stream_key(stream_prefix)
    for i in range(10):
        client.xadd(stream, {b"b": str(i).encode()})
    assert stream_admin.trim_acknowledged(client, stream) == 0
    assert client.xlen(stream) == 10


def test_new_group_that_read_nothing_blocks_trimming(
    client: redis.Redis, stream_prefix: str
) -> None:
    stream = stream_key(stream_prefix)
    stream_admin.ensure_group(client, stream, "fast")
    for i in range(10):
        client.xadd(stream, {b"b": str(i).encode()})
    _consume(client, stream, "fast", 10, ack=True)
    stream_admin.ensure_group(client, stream, "audit")  # created at id 0: must see everything
    assert stream_admin.trim_acknowledged(client, stream) == 0
    assert client.xlen(stream) == 10
    assert stream_admin.ensure_group(client, stream, "audit") is False


def test_persist_maintenance_trims_only_below_the_lagging_group(
    client: redis.Redis, redis_url: str, db_url: str, stream_prefix: str
) -> None:
    from tickguard.models import Batch
    from tickguard.sinks.encoding import encode_batch
    from tickguard.sinks.persist import Persist
    from tickguard.store.writer import PostgresWriter

    stream = stream_key(stream_prefix)
    stream_admin.ensure_group(client, stream, "persist")
    stream_admin.ensure_group(client, stream, "audit")
    ids = [client.xadd(stream, {b"b": encode_batch(Batch())}) for _ in range(20)]
    _consume(client, stream, "audit", 5, ack=True)
    persist = Persist(
        redis.Redis.from_url(redis_url),
        lambda: PostgresWriter.connect(db_url),
        stream=stream,
        group="persist",
        consumer="c1",
        block_ms=10,
    )
    persist.start()
    while persist.counters.entries_acked < 20:
        persist.step()
    persist.maintain()
    persist.close()
    assert persist.counters.entries_acked == 20 and persist.counters.lag == 0
    assert persist.counters.trimmed == 4
    assert _ids(client, stream) == ids[4:]  # audit's last-delivered (4) and all it has not read
