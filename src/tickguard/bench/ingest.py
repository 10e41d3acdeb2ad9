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

The rows are cut into ``rounds`` (default 4) and each round runs sink, persist, then COPY,
so on a shared machine a burst of someone else's load hits both measurements alike; the
times are summed over the rounds. ``ratio`` = persist ÷ copy: the price of the loss-proof
path over the cheapest way to get rows into PostgreSQL. ``rows_stored`` must equal
``rows`` and ``duplicates`` must be 0.
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
from tickguard.sinks.persist_write import PersistCounters
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
    rounds: int
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


async def _produce(redis_url: str, stream: str, spool_dir: Path, batches: list[Batch]) -> float:
    """Put ``batches`` through the sink into Redis: seconds until all are on the stream."""
    spool = Spool(spool_dir, segment_bytes=16 << 20, max_bytes=1 << 30)
    sink = RedisStreamSink(redis_client(redis_url, 5.0), stream, spool, timeout_s=5.0)
    started = time.perf_counter()
    for batch in batches:
        await sink.put(batch)
    delivered = await sink.drain(timeout_s=600)
    elapsed = time.perf_counter() - started
    counters = sink.counters
    await sink.aclose()
    if not delivered or counters.batches_sent + counters.batches_replayed < len(batches):
        raise RuntimeError("bench: the sink could not deliver every batch to Redis")
    return elapsed


def _drain(
    redis_url: str, db_url: str, stream: str, entries: int, read_count: int, writers: int
) -> tuple[float, PersistCounters]:
    """Run persist until ``entries`` more entries are acknowledged: (seconds, counters)."""
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
    while persist.counters.entries_acked < entries and runner.is_alive():
        time.sleep(0.002)
    elapsed = time.perf_counter() - started
    persist.stop_event.set()
    runner.join()
    if persist.counters.entries_acked < entries:
        raise RuntimeError("bench: persist stopped before it had stored every entry")
    return elapsed, persist.counters


def _copy(conn: psycopg.Connection[Any], data: list[tuple[Any, ...]]) -> float:
    """COPY pre-built row tuples into ``bench_copy`` in one transaction: seconds."""
    cols = sql.SQL(", ").join(map(sql.Identifier, rows.TRADE_COLUMNS))
    statement = sql.SQL("COPY bench_copy ({}) FROM STDIN (FORMAT BINARY)").format(cols)
    started = time.perf_counter()
    with conn.transaction(), conn.cursor() as cur, cur.copy(statement) as copy:
        copy.set_types(list(rows.TRADE_TYPES))
        for row in data:
            copy.write_row(row)
    return time.perf_counter() - started


def _chunks(n_rows: int, rounds: int) -> Iterator[list[Batch]]:
    """The synthetic feed cut into ``rounds`` runs of whole batches."""
    per_round = -(-n_rows // rounds)
    chunk: list[Batch] = []
    size = 0
    for batch in synthetic_batches(n_rows):
        chunk.append(batch)
        size += len(batch.trades)
        if size >= per_round:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


@dataclass(slots=True)
class _Totals:
    produce_s: float = 0.0
    persist_s: float = 0.0
    copy_s: float = 0.0
    batches: int = 0
    duplicates: int = 0
    stream_bytes_per_row: float = 0.0


def _measure(
    db_url: str, redis_url: str, stream: str, spool: Path, n_rows: int, knobs: tuple[int, int, int]
) -> _Totals:
    """Alternate persist and COPY round by round, so both see the same background load."""
    read_count, writers, rounds = knobs
    totals = _Totals()
    probe = redis.Redis.from_url(redis_url)
    with psycopg.connect(migrate.libpq_url(db_url), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE bench_copy (LIKE trades INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
            "INCLUDING INDEXES)"
        )
        for chunk in _chunks(n_rows, rounds):
            totals.produce_s += asyncio.run(_produce(redis_url, stream, spool, chunk))
            if not totals.batches:
                in_chunk = sum(len(b.trades) for b in chunk)
                totals.stream_bytes_per_row = int(probe.memory_usage(stream) or 0) / in_chunk
            elapsed, counters = _drain(redis_url, db_url, stream, len(chunk), read_count, writers)
            totals.persist_s += elapsed
            totals.duplicates += counters.rows_duplicates
            data = [rows.trade_row(t) for b in chunk for t in b.trades]
            totals.copy_s += _copy(conn, data)
            totals.batches += len(chunk)
    probe.close()
    return totals


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
    rounds: int = 4,
) -> IngestResult:
    """Run the phases on scratch resources and return the figures."""
    knobs = (
        read_count or settings.sink.persist_read_count,
        writers or settings.sink.persist_writers,
        max(1, min(rounds, n_rows)),
    )
    stream = stream_key(f"tickguard_bench_{uuid.uuid4().hex[:10]}")
    cleanup = redis.Redis.from_url(redis_url)
    try:
        with scratch_database(database_url) as db_url, tempfile.TemporaryDirectory() as tmp:
            totals = _measure(db_url, redis_url, stream, Path(tmp), n_rows, knobs)
            stored, quarantined = _stored(db_url)
    finally:
        cleanup.delete(stream)
        cleanup.close()
    persist_rate, copy_rate = n_rows / totals.persist_s, n_rows / totals.copy_s
    return IngestResult(
        rows=n_rows,
        batches=totals.batches,
        read_count=knobs[0],
        writers=knobs[1],
        rounds=knobs[2],
        sink_rows_per_s=n_rows / totals.produce_s,
        stream_bytes_per_row=totals.stream_bytes_per_row,
        persist_rows_per_s=persist_rate,
        copy_rows_per_s=copy_rate,
        ratio=persist_rate / copy_rate,
        rows_stored=stored,
        duplicates=totals.duplicates,
        quarantined=quarantined,
    )


__all__ = ["IngestResult", "run_ingest_bench", "scratch_database", "synthetic_batches"]
