"""``tickguard bench ingest``: persist throughput next to a plain COPY of the same rows.

What is measured, in one run, on scratch resources that are removed afterwards (a database
``tickguard_bench_<hex>`` migrated like production, a stream prefix of its own):

1. sink: N synthetic trades (~40 symbols, batches of ~2000, one trading day) go through
   :class:`RedisStreamSink` into Redis (``sink_rows_per_s``, encoded bytes per row);
2. persist: :class:`Persist` drains that backlog into PostgreSQL — XREADGROUP, decode,
   COPY → staging → ``INSERT … ON CONFLICT DO NOTHING``, commit, XACK
   (``persist_rows_per_s``);
3. copy: the same rows, already in memory as tuples, are COPYed (binary) into a scratch
   table shaped like ``trades`` (same columns, primary key and indexes, not partitioned)
   (``copy_rows_per_s``).

``ratio`` = persist ÷ copy: the price of the loss-proof path over the cheapest way to get
rows into PostgreSQL. ``rows_stored`` must equal ``rows`` and ``duplicates`` must be 0.
"""

from __future__ import annotations

import asyncio
import logging
import random
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import psycopg
import redis
from psycopg import sql
from sqlalchemy.engine import make_url

from tickguard.models import KST, Batch, Broker, Side, Source, Trade
from tickguard.settings import Settings
from tickguard.sinks.persist import Persist, sync_redis
from tickguard.sinks.redis_stream import RedisStreamSink, redis_client, stream_key
from tickguard.store import migrate, rows
from tickguard.store.writer import PostgresWriter
from tickguard.stream.spool import Spool

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IngestResult:
    rows: int
    batches: int
    read_count: int
    writers: int
    sink_rows_per_s: float
    stream_bytes_per_row: float
    persist_rows_per_s: float
    copy_rows_per_s: float
    ratio: float
    rows_stored: int
    duplicates: int
    quarantined: int

    def as_json(self) -> dict[str, Any]:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


def synthetic_batches(
    n_rows: int, *, batch_size: int = 2_000, symbols: int = 40, seed: int = 7
) -> Iterator[Batch]:
    """A seeded trading morning: trades spread over ``symbols``, cumulative volume per symbol."""
    rng = random.Random(seed)
    day = datetime.now(KST).date()
    codes = [f"{100_000 + 37 * i:06d}" for i in range(symbols)]
    price = {c: rng.randrange(5_000, 500_000, 50) for c in codes}
    cum = dict.fromkeys(codes, 0)
    start = datetime.combine(day, dtime(9, 0), tzinfo=KST)
    step = timedelta(microseconds=max(1, 23_400_000_000 // max(n_rows, 1)))
    made = 0
    while made < n_rows:
        batch = Batch()
        for i in range(made, min(made + batch_size, n_rows)):
            code = codes[rng.randrange(symbols)]
            qty = rng.randint(1, 500)
            cum[code] += qty
            price[code] = max(50, price[code] + rng.choice((-50, 0, 0, 50)))
            ts = start + step * i
            batch.trades.append(
                Trade(
                    Broker.KIS,
                    code,
                    day,
                    ts,
                    price[code],
                    qty,
                    rng.choice((Side.BUY, Side.SELL)),
                    cum[code],
                    ts + timedelta(milliseconds=3),
                    Source.WS,
                )
            )
        made += len(batch.trades)
        yield batch


@contextmanager
def scratch_database(admin_url: str) -> Iterator[str]:
    """A migrated database of the bench's own on the configured server, dropped afterwards."""
    name = f"tickguard_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(migrate.libpq_url(admin_url), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = make_url(migrate.sqlalchemy_url(admin_url)).set(database=name)
    scratch = url.render_as_string(hide_password=False)
    try:
        migrate.upgrade(scratch)
        yield scratch
    finally:
        with psycopg.connect(migrate.libpq_url(admin_url), autocommit=True) as conn:
            drop = sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
            conn.execute(drop.format(sql.Identifier(name)))


async def _produce(
    redis_url: str, stream: str, spool_dir: Path, n_rows: int
) -> tuple[float, int, int]:
    """Put every synthetic batch through the sink: (seconds, batches, encoded bytes)."""
    spool = Spool(spool_dir, segment_bytes=16 << 20, max_bytes=1 << 30)
    sink = RedisStreamSink(redis_client(redis_url, 5.0), stream, spool, timeout_s=5.0)
    started = time.perf_counter()
    batches = 0
    for batch in synthetic_batches(n_rows):
        await sink.put(batch)
        batches += 1
    if not await sink.drain(timeout_s=600):
        raise RuntimeError("bench: the sink could not deliver its spool to Redis")
    elapsed = time.perf_counter() - started
    counters = sink.counters
    await sink.aclose()
    probe = redis.Redis.from_url(redis_url)
    size = int(probe.memory_usage(stream) or 0)
    probe.close()
    if counters.batches_sent + counters.batches_replayed < batches:
        raise RuntimeError(f"bench: only {counters.batches_sent} of {batches} batches sent")
    return elapsed, batches, size


def _drain(
    redis_url: str, db_url: str, stream: str, batches: int, read_count: int, writers: int
) -> tuple[float, Persist]:
    """Run persist on the backlog until every entry is acknowledged: (seconds, persist)."""
    persist = Persist(
        sync_redis(redis_url, 100),
        lambda: PostgresWriter.connect(db_url),
        stream=stream,
        group="bench",
        consumer="bench-1",
        read_count=read_count,
        block_ms=100,
        writers=writers,
    )
    runner = threading.Thread(target=persist.run, name="bench-persist")
    started = time.perf_counter()
    runner.start()
    while persist.counters.entries_acked < batches and runner.is_alive():
        time.sleep(0.005)
    elapsed = time.perf_counter() - started
    persist.stop_event.set()
    runner.join()
    if persist.counters.entries_acked < batches:
        raise RuntimeError("bench: persist stopped before it had stored every entry")
    return elapsed, persist


def _plain_copy(db_url: str, n_rows: int) -> float:
    """COPY the same rows (pre-built tuples) into a scratch copy of ``trades``: seconds."""
    data = [rows.trade_row(t) for b in synthetic_batches(n_rows) for t in b.trades]
    with psycopg.connect(migrate.libpq_url(db_url), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bench_copy (LIKE trades INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
            "INCLUDING INDEXES)"
        )
        cols = sql.SQL(", ").join(map(sql.Identifier, rows.TRADE_COLUMNS))
        statement = sql.SQL("COPY bench_copy ({}) FROM STDIN (FORMAT BINARY)").format(cols)
        started = time.perf_counter()
        with conn.transaction(), conn.cursor() as cur, cur.copy(statement) as copy:
            copy.set_types(list(rows.TRADE_TYPES))
            for row in data:
                copy.write_row(row)
        return time.perf_counter() - started


def _stored(db_url: str) -> tuple[int, int]:
    with psycopg.connect(migrate.libpq_url(db_url)) as conn:
        trades = conn.execute("SELECT count(*) FROM trades").fetchone()
        quarantined = conn.execute("SELECT count(*) FROM quarantine").fetchone()
    return (trades[0] if trades else 0), (quarantined[0] if quarantined else 0)


def run_ingest_bench(
    settings: Settings,
    *,
    database_url: str,
    redis_url: str,
    n_rows: int,
    read_count: int | None = None,
    writers: int | None = None,
) -> IngestResult:
    """Run the three phases on scratch resources and return the figures."""
    read_count = read_count or settings.sink.persist_read_count
    writers = writers or settings.sink.persist_writers
    stream = stream_key(f"tickguard_bench_{uuid.uuid4().hex[:10]}")
    cleanup = redis.Redis.from_url(redis_url)
    try:
        with scratch_database(database_url) as db_url, tempfile.TemporaryDirectory() as tmp:
            produce_s, batches, size = asyncio.run(_produce(redis_url, stream, Path(tmp), n_rows))
            log.info("bench: %d rows in %d entries on the stream", n_rows, batches)
            persist_s, persist = _drain(redis_url, db_url, stream, batches, read_count, writers)
            copy_s = _plain_copy(db_url, n_rows)
            stored, quarantined = _stored(db_url)
    finally:
        cleanup.delete(stream)
        cleanup.close()
    persist_rate, copy_rate = n_rows / persist_s, n_rows / copy_s
    return IngestResult(
        rows=n_rows,
        batches=batches,
        read_count=read_count,
        writers=writers,
        sink_rows_per_s=n_rows / produce_s,
        stream_bytes_per_row=size / n_rows,
        persist_rows_per_s=persist_rate,
        copy_rows_per_s=copy_rate,
        ratio=persist_rate / copy_rate,
        rows_stored=stored,
        duplicates=persist.counters.rows_duplicates,
        quarantined=quarantined,
    )


__all__ = ["IngestResult", "run_ingest_bench", "scratch_database", "synthetic_batches"]
