"""persist on book entries, real Redis and PostgreSQL: the fast book path end to end.

Books go through the column-wise decode, the flat-list digest and the ``int8[]`` binary
dumper; what lands must be the levels that went in, with the digest the model gives, and
a redelivered entry must still be a duplicate. While persist runs, its collector settings
are in force; afterwards the process has its own back.
"""

from __future__ import annotations

import gc
import threading
from datetime import datetime, timedelta

import psycopg
import redis
from test_persist_stream import wait_for

from tickguard.gctune import THRESHOLDS as GC_THRESHOLDS
from tickguard.models import KST, Batch, BookSnapshot, Broker
from tickguard.sinks.encoding import encode_batch
from tickguard.sinks.persist import Persist
from tickguard.sinks.redis_stream import FIELD, stream_key
from tickguard.store.migrate import libpq_url
from tickguard.store.rows import book_digest
from tickguard.store.writer import PostgresWriter


def books(i: int) -> list[BookSnapshot]:
    """Entry ``i``: three updates of one symbol, the last with an empty ask side."""
    at = datetime(2026, 3, 3, 9, 0, tzinfo=KST) + timedelta(seconds=i)
    out = []
    for k in range(3):
        asks = () if k == 2 else tuple((70_100 + 100 * j, 10 * k + j) for j in range(10))
        bids = tuple((70_000 - 100 * j, 5 + j + i) for j in range(10))
        ts = at + timedelta(milliseconds=k)
        totals = sum(q for _, q in asks), sum(q for _, q in bids)
        out.append(BookSnapshot(Broker.KIS, "005930", ts.date(), ts, asks, bids, *totals, ts))
    return out


def test_books_land_with_their_levels_and_digest(
    redis_url: str, db_url: str, stream_prefix: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    stream = stream_key(stream_prefix)
    sent = [b for i in range(4) for b in books(i)]
    for i in range(4):
        client.xadd(stream, {FIELD: encode_batch(Batch(books=books(i)))})
    client.xadd(stream, {FIELD: encode_batch(Batch(books=books(0)))})  # a redelivery
    seen: list[tuple[int, int, int]] = []

    def connect() -> PostgresWriter:
        seen.append(gc.get_threshold())
        return PostgresWriter.connect(db_url)

    before = gc.get_threshold()
    persist = Persist(
        redis.Redis.from_url(redis_url),
        connect,
        stream=stream,
        group="persist",
        consumer="c1",
        read_count=2,
        block_ms=50,
    )
    runner = threading.Thread(target=persist.run)
    runner.start()
    try:
        wait_for(lambda: persist.counters.entries_acked == 5)
    finally:
        persist.stop_event.set()
        runner.join(timeout=30)
        client.close()
    assert not runner.is_alive()
    assert seen and set(seen) == {GC_THRESHOLDS}
    assert gc.get_threshold() == before
    assert (persist.counters.rows_inserted, persist.counters.rows_duplicates) == (12, 3)
    with psycopg.connect(libpq_url(db_url)) as conn:
        stored = conn.execute(
            "SELECT ask_prices, ask_qtys, bid_prices, bid_qtys, total_ask_qty, total_bid_qty,"
            " digest FROM book_snapshots ORDER BY ts"
        ).fetchall()
    assert stored == [
        (
            [p for p, _ in b.asks],
            [q for _, q in b.asks],
            [p for p, _ in b.bids],
            [q for _, q in b.bids],
            b.total_ask_qty,
            b.total_bid_qty,
            book_digest(b),
        )
        for b in sent
    ]
