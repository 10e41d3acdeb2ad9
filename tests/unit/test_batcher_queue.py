"""The event queue takes whole frames but keeps its cap in events (RAM bound, back-pressure),
and the batcher drains it into bounded batches without losing anything at a stop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime

from tickguard.models import Batch, Broker, Trade
from tickguard.settings import StreamSettings
from tickguard.stream.batcher import END, Batcher, EventQueue, Item

T0 = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)


def _trade(n: int) -> Trade:
    return Trade(Broker.KIS, "005930", date(2026, 11, 26), T0, 100, 1, None, n, T0)


def _volumes(items: Sequence[Item]) -> list[int]:
    return [t.cum_volume for t in items if isinstance(t, Trade)]


class ListSink:
    def __init__(self) -> None:
        self.batches: list[Batch] = []

    async def put(self, batch: Batch) -> None:
        self.batches.append(batch)
        await asyncio.sleep(0)

    @property
    def volumes(self) -> list[int]:
        return [t.cum_volume for b in self.batches for t in b.trades]


async def test_frame_sized_puts_never_hold_more_than_the_cap() -> None:
    queue = EventQueue(10)
    await queue.put_many([_trade(i) for i in range(9)])
    put = asyncio.create_task(queue.put_many([_trade(9), _trade(10), _trade(11)]))
    await asyncio.sleep(0.01)
    # what fits went in, the reader waits for room for the rest
    assert not put.done() and queue.qsize() == 10 == queue.high_water and queue.waits == 1
    taken = queue.take_nowait(4)
    await asyncio.wait_for(put, 1.0)
    assert _volumes(taken) == [0, 1, 2, 3]
    assert queue.qsize() == 8 and queue.high_water == 10
    rest = queue.take_nowait(100)
    assert _volumes(rest) == list(range(4, 12))


async def test_a_frame_bigger_than_the_cap_gets_through_in_order() -> None:
    sink = ListSink()
    queue = EventQueue(10)
    batcher = Batcher(queue, sink, StreamSettings(batch_max_events=4, batch_max_delay_s=0.01))
    task = asyncio.create_task(batcher.run())
    await asyncio.wait_for(queue.put_many([_trade(i) for i in range(25)]), 5)
    await batcher.close()
    await asyncio.wait_for(task, 5)
    assert sink.volumes == list(range(25))
    assert all(1 <= len(b) <= 4 for b in sink.batches)
    assert queue.high_water <= 10 and queue.waits >= 1


async def test_close_flushes_partial_batches_at_once() -> None:
    sink = ListSink()
    queue = EventQueue(1000)
    # a delay far longer than the test: close must not wait for it
    batcher = Batcher(queue, sink, StreamSettings(batch_max_events=7, batch_max_delay_s=30))
    task = asyncio.create_task(batcher.run())
    for i in range(0, 10, 2):
        await queue.put_many([_trade(i), _trade(i + 1)])
    await batcher.close()
    await asyncio.wait_for(task, 2)
    assert sink.volumes == list(range(10))
    assert [len(b) for b in sink.batches] == [7, 3]
    assert batcher.stats.trades == 10 and batcher.stats.batches == 2
    assert queue.get_nowait() is END


async def test_items_within_the_delay_share_one_batch() -> None:
    sink = ListSink()
    queue = EventQueue(1000)
    batcher = Batcher(queue, sink, StreamSettings(batch_max_events=100, batch_max_delay_s=0.2))
    task = asyncio.create_task(batcher.run())
    for i in range(5):
        await queue.put_many([_trade(i)])
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.4)
    assert [len(b) for b in sink.batches] == [5]
    await batcher.close()
    await asyncio.wait_for(task, 2)


async def test_a_full_batch_goes_without_waiting_for_the_delay() -> None:
    sink = ListSink()
    queue = EventQueue(1000)
    batcher = Batcher(queue, sink, StreamSettings(batch_max_events=10, batch_max_delay_s=30))
    task = asyncio.create_task(batcher.run())
    await queue.put_many([_trade(0)])
    await asyncio.sleep(0.01)
    await queue.put_many([_trade(i) for i in range(1, 12)])
    await asyncio.sleep(0.05)
    assert [len(b) for b in sink.batches] == [10]
    await batcher.close()
    await asyncio.wait_for(task, 2)
    assert sink.volumes == list(range(12))


async def test_a_cap_below_the_batch_size_still_drains_without_the_delay() -> None:
    """The batcher stops waiting once the queue is full: its readers are blocked."""
    sink = ListSink()
    queue = EventQueue(5)
    batcher = Batcher(queue, sink, StreamSettings(batch_max_events=100, batch_max_delay_s=30))
    task = asyncio.create_task(batcher.run())
    await asyncio.wait_for(queue.put_many([_trade(i) for i in range(23)]), 2)
    await batcher.close()
    await asyncio.wait_for(task, 2)
    assert sink.volumes == list(range(23))


async def test_waiting_readers_take_turns_in_arrival_order() -> None:
    queue = EventQueue(4)
    await queue.put_many([_trade(i) for i in range(4)])
    first = asyncio.create_task(queue.put_many([_trade(10), _trade(11), _trade(12)]))
    await asyncio.sleep(0)
    second = asyncio.create_task(queue.put_many([_trade(20)]))
    await asyncio.sleep(0)
    got: list[int] = []
    while len(got) < 8:
        got.extend(_volumes(queue.take_nowait(2)))
        await asyncio.sleep(0)
    await asyncio.wait_for(asyncio.gather(first, second), 1)
    assert got == [0, 1, 2, 3, 10, 11, 12, 20]


async def test_a_cancelled_waiting_reader_does_not_block_the_next() -> None:
    queue = EventQueue(2)
    await queue.put_many([_trade(0), _trade(1)])
    stuck = asyncio.create_task(queue.put_many([_trade(2)]))
    await asyncio.sleep(0)
    nxt = asyncio.create_task(queue.put_many([_trade(3)]))
    await asyncio.sleep(0)
    stuck.cancel()
    await asyncio.gather(stuck, return_exceptions=True)
    queue.take_nowait(2)
    await asyncio.wait_for(nxt, 1)
    assert _volumes(queue.take_nowait(5)) == [3]
