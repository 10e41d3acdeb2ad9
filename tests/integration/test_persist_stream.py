"""persist against the real Redis and a fresh migrated PostgreSQL database per test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import redis

from tickguard.models import KST, Batch, Broker, Gap, GapKind, Side, Source, Trade
from tickguard.sinks.encoding import encode_batch
from tickguard.sinks.persist import Persist
from tickguard.sinks.redis_stream import FIELD, RedisStreamSink, redis_client, stream_key
from tickguard.store.migrate import libpq_url
from tickguard.store.writer import PostgresWriter
from tickguard.stream.spool import Spool

GROUP = "persist"


def wait_for(predicate: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout_s}s")


def make_batch(i: int, n: int = 40) -> Batch:
    """Batch ``i``: n trades of one symbol with cumulative volumes i*1000+1 … i*1000+n."""
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
                i * 1_000 + k + 1,
                now,
                Source.WS,
            )
            for k in range(n)
        ]
    )


def sql(db_url: str, query: str) -> object:
    with psycopg.connect(libpq_url(db_url)) as conn:
        row = conn.execute(query).fetchone()  # type: ignore[arg-type]
        return None if row is None else row[0]


@pytest.fixture
def rclient(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def make_persist(
    redis_url: str,
    db_url: str,
    prefix: str,
    consumer: str = "c1",
    connect: Callable[[], PostgresWriter] | None = None,
    **kw: object,
) -> Persist:
    options: dict[str, object] = {"read_count": 16, "block_ms": 50, "trim_interval_s": 0.2}
    options.update(kw)
    return Persist(
        redis.Redis.from_url(redis_url),
        connect or (lambda: PostgresWriter.connect(db_url)),
        stream=stream_key(prefix),
        group=GROUP,
        consumer=consumer,
        **options,  # type: ignore[arg-type]
    )


def pending(client: redis.Redis, prefix: str) -> int:
    return int(client.xpending(stream_key(prefix), GROUP)["pending"])


async def test_same_batch_put_twice_is_stored_once(
    redis_url: str, db_url: str, stream_prefix: str, rclient: redis.Redis, tmp_path: object
) -> None:
    spool = Spool(tmp_path / "spool", segment_bytes=1 << 20, max_bytes=1 << 24)  # type: ignore[operator]
    sink = RedisStreamSink(redis_client(redis_url, 2.0), stream_key(stream_prefix), spool)
    batch = make_batch(1)
    await sink.put(batch)
    await sink.put(batch)
    await sink.aclose()

    persist = make_persist(redis_url, db_url, stream_prefix)
    persist.start()
    while persist.counters.entries_acked < 2:
        persist.step()
    persist.close()
    assert sql(db_url, "SELECT count(*) FROM trades") == 40
    assert persist.counters.trades_inserted == 40 and persist.counters.trades_duplicates == 40
    assert pending(rclient, stream_prefix) == 0


def test_undecodable_entry_is_quarantined_and_acked(
    redis_url: str, db_url: str, stream_prefix: str, rclient: redis.Redis
) -> None:
    stream = stream_key(stream_prefix)
    rclient.xadd(stream, {FIELD: encode_batch(make_batch(1))})
    bad_id = rclient.xadd(stream, {FIELD: b"\x93\x01garbage"})
    rclient.xadd(stream, {b"other": b"no b field"})
    rclient.xadd(stream, {FIELD: encode_batch(make_batch(2))})

    persist = make_persist(redis_url, db_url, stream_prefix)
    persist.start()
    persist.step()
    persist.close()
    assert sql(db_url, "SELECT count(*) FROM trades") == 80
    assert (
        sql(db_url, "SELECT count(*) FROM quarantine WHERE reason = 'undecodable_stream_entry'")
        == 2
    )
    detail = sql(db_url, "SELECT string_agg(detail, ' ') FROM quarantine")
    assert bad_id.decode() in str(detail)
    assert persist.counters.quarantined_entries == 2
    assert pending(rclient, stream_prefix) == 0


def test_rows_postgres_refuses_are_quarantined_not_retried_forever(
    redis_url: str, db_url: str, stream_prefix: str, rclient: redis.Redis
) -> None:
    start = datetime(2026, 3, 3, 0, 5, tzinfo=UTC)
    poison = Batch(
        trades=make_batch(3).trades,  # good rows travelling with a bad gap
        gaps=[Gap(Broker.KIS, "005930", GapKind.TRADES, start, start - timedelta(minutes=1), "x")],
    )
    stream = stream_key(stream_prefix)
    rclient.xadd(stream, {FIELD: encode_batch(make_batch(1))})
    rclient.xadd(stream, {FIELD: encode_batch(poison)})  # end < start violates a check
    rclient.xadd(stream, {FIELD: encode_batch(make_batch(2))})

    persist = make_persist(redis_url, db_url, stream_prefix)
    persist.start()
    persist.step()
    persist.close()
    assert sql(db_url, "SELECT count(*) FROM trades") == 120  # the poison entry's trades too
    assert (
        sql(db_url, "SELECT count(*) FROM quarantine WHERE reason = 'unwritable_stream_entry'") == 1
    )
    assert "gaps refused" in str(sql(db_url, "SELECT detail FROM quarantine"))
    assert sql(db_url, "SELECT count(*) FROM gaps") == 0
    assert pending(rclient, stream_prefix) == 0


def test_postgres_down_keeps_entries_pending_then_catches_up(
    redis_url: str, db_url: str, stream_prefix: str, rclient: redis.Redis
) -> None:
    stream = stream_key(stream_prefix)
    for i in range(5):
        rclient.xadd(stream, {FIELD: encode_batch(make_batch(i))})
    database_up = threading.Event()

    def connect() -> PostgresWriter:
        if not database_up.is_set():
            return PostgresWriter.connect("postgresql://postgres@127.0.0.1:1/none")
        return PostgresWriter.connect(db_url)

    persist = make_persist(
        redis_url, db_url, stream_prefix, connect=connect, backoff_cap_s=0.2, writers=2
    )
    runner = threading.Thread(target=persist.run)
    runner.start()
    try:
        wait_for(lambda: persist.counters.db_retries >= 3)
        assert pending(rclient, stream_prefix) == 5  # delivered, not acknowledged
        assert sql(db_url, "SELECT count(*) FROM trades") == 0
        database_up.set()
        wait_for(lambda: pending(rclient, stream_prefix) == 0)
    finally:
        persist.stop_event.set()
        runner.join(timeout=30)
    assert not runner.is_alive()
    assert sql(db_url, "SELECT count(*) FROM trades") == 200


def _persist_process(env: dict[str, str], consumer: str) -> subprocess.Popen[bytes]:
    code = "from tickguard.cli import main; main()"
    return subprocess.Popen(
        [sys.executable, "-c", code, "persist", "--consumer", consumer], env=env
    )


@pytest.mark.parametrize(
    ("restart_as", "writers"), [("c1", 1), ("c2", 2)], ids=["same-consumer", "other-consumer"]
)
def test_sigkill_between_commit_and_xack_loses_and_duplicates_nothing(
    redis_url: str,
    db_url: str,
    stream_prefix: str,
    rclient: redis.Redis,
    tmp_path: object,
    restart_as: str,
    writers: int,
) -> None:
    stream = stream_key(stream_prefix)
    for i in range(30):
        rclient.xadd(stream, {FIELD: encode_batch(make_batch(i))})
    env = {
        **os.environ,
        "TICKGUARD_DATABASE_URL": db_url,
        "TICKGUARD_REDIS_URL": redis_url,
        "TICKGUARD_SINK__STREAM_PREFIX": stream_prefix,
        "TICKGUARD_SINK__PERSIST_READ_COUNT": "7",
        "TICKGUARD_SINK__PERSIST_BLOCK_MS": "50",
        "TICKGUARD_SINK__PERSIST_CLAIM_IDLE_MS": "0",
        "TICKGUARD_DATA_DIR": str(tmp_path),
        "TICKGUARD_SINK__PERSIST_WRITERS": str(writers),
    }
    victim = _persist_process({**env, "TICKGUARD_PERSIST_FAULT": "kill-after-commit:2"}, "c1")
    assert victim.wait(timeout=60) == -signal.SIGKILL
    committed = sql(db_url, "SELECT count(*) FROM trades")
    unacked = pending(rclient, stream_prefix)
    if writers == 1:  # two reads committed; the second never acked, a third maybe read ahead
        assert committed == 14 * 40 and unacked in (7, 14)
    else:  # another writer may have been mid-commit (or done) when the process died
        assert committed in (14 * 40, 21 * 40) and unacked >= 7

    survivor = _persist_process(env, restart_as)
    try:
        wait_for(
            lambda: (
                pending(rclient, stream_prefix) == 0 and rclient.xinfo_groups(stream)[0]["lag"] == 0
            )
        )
        wait_for(lambda: sql(db_url, "SELECT count(*) FROM trades") == 30 * 40)
    finally:
        survivor.send_signal(signal.SIGTERM)
        code = survivor.wait(timeout=30)
    assert code == 0
    assert sql(db_url, "SELECT count(*) FROM trades") == 30 * 40
    assert (
        sql(db_url, "SELECT count(DISTINCT (symbol, trading_day, cum_volume)) FROM trades")
        == 30 * 40
    )
    assert sql(db_url, "SELECT count(*) FROM quarantine") == 0


def test_two_consumers_share_the_stream_and_store_each_row_once(
    redis_url: str, db_url: str, stream_prefix: str, rclient: redis.Redis
) -> None:
    stream = stream_key(stream_prefix)
    for i in range(40):
        rclient.xadd(stream, {FIELD: encode_batch(make_batch(i))})
    workers = [
        make_persist(redis_url, db_url, stream_prefix, consumer=f"c{n}", read_count=3)
        for n in (1, 2)
    ]
    threads = [threading.Thread(target=p.run) for p in workers]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: sum(p.counters.entries_acked for p in workers) >= 40)
    finally:
        for p in workers:
            p.stop_event.set()
        for t in threads:
            t.join(timeout=30)
    assert all(p.counters.entries_acked > 0 for p in workers)  # the group split the work
    assert sum(p.counters.trades_inserted for p in workers) == 40 * 40
    assert sum(p.counters.trades_duplicates for p in workers) == 0
    assert sql(db_url, "SELECT count(*) FROM trades") == 40 * 40
    assert pending(rclient, stream_prefix) == 0
