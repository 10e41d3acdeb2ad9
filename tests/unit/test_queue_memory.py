"""The collector's bounded queue holds a bounded amount of memory, not just of items.

A full queue is the collector's memory high-water mark (issue 9's soak: RSS rose with the
queue's high water and stayed). The default cap must keep the worst case, every item a
10-level KIS book, within the budget the settings document.
"""

from __future__ import annotations

import asyncio
import random
import tracemalloc
from datetime import UTC, date, datetime, timedelta

from tickguard.models import BookSnapshot, Broker
from tickguard.settings import StreamSettings
from tickguard.stream.batcher import EventQueue

BUDGET_BYTES = 32 * 2**20
"""Documented in StreamSettings.queue_max_events: ~3 KiB a book, at most ~29 MiB."""


def _book(rng: random.Random, i: int) -> BookSnapshot:
    ts = datetime(2026, 1, 19, 0, 0, tzinfo=UTC) + timedelta(microseconds=37 * i)
    price = 50_000 + 10 * rng.randrange(1_000)
    return BookSnapshot(
        broker=Broker.KIS,
        symbol=f"{rng.randrange(1_000_000):06d}",
        trading_day=date(2026, 1, 19),
        ts=ts,
        asks=tuple((price + 10 * k, rng.randrange(1, 100_000)) for k in range(10)),
        bids=tuple((price - 10 * k, rng.randrange(1, 100_000)) for k in range(10)),
        total_ask_qty=rng.randrange(10**6),
        total_bid_qty=rng.randrange(10**6),
        received_at=ts + timedelta(milliseconds=3),
    )


def test_a_full_queue_of_books_fits_the_documented_budget() -> None:
    """Measured on a sample of 1,000 queued books (tracemalloc is slow), scaled to the cap."""
    cap, sample = StreamSettings().queue_max_events, 1_000
    rng = random.Random(9)

    async def fill() -> EventQueue:
        queue = EventQueue(sample)
        await queue.put_many([_book(rng, i) for i in range(sample)])
        return queue

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        queue = asyncio.run(fill())
        per_item = (tracemalloc.get_traced_memory()[0] - before) / sample
    finally:
        tracemalloc.stop()
    assert queue.qsize() == sample
    assert 1_000 < per_item < 4_000, f"{per_item:.0f} bytes a book"
    assert per_item * cap < BUDGET_BYTES, f"{per_item * cap / 2**20:.1f} MiB for {cap} books"


def test_readers_wait_at_the_cap_instead_of_growing_the_queue() -> None:
    rng = random.Random(3)

    async def scenario() -> tuple[bool, int, int]:
        queue = EventQueue(100)
        await queue.put_many([_book(rng, i) for i in range(100)])
        put = asyncio.create_task(queue.put_many([_book(rng, 100)]))
        await asyncio.sleep(0.01)
        waiting = not put.done()
        size = queue.qsize()
        queue.get_nowait()
        await asyncio.wait_for(put, 1.0)
        return waiting, size, queue.high_water

    waiting, size, high = asyncio.run(scenario())
    assert waiting and size == 100 and high == 100
