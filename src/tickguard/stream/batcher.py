"""The bounded hand-off between the websocket readers and a sink.

Readers put decoded items into one :class:`EventQueue` whose capacity is
``settings.stream.queue_max_events``. When the sink is slow the queue fills and the readers
*wait* for room (back-pressure reaches the socket), so RAM is bounded by the cap, never by
the backlog — the incident's collector was OOM-killed by an unbounded buffer. The sink
itself (RedisStreamSink) spills to its disk spool when Redis cannot keep up.

The :class:`Batcher` drains the queue into :class:`~tickguard.models.Batch` objects of at
most ``batch_max_events`` items, or whatever arrived within ``batch_max_delay_s``.

Why the queue is a flat list and not an ``asyncio.Queue``: at tens of thousands of events
a second, one queue operation and one batcher wake-up per *event* cost more CPU than the
rest of the hand-off (profile at 12k msgs/s). A reader puts a whole frame's items with one
``list.extend``; the batcher sleeps until a batch is full or its delay is up and takes the
batch with one slice.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from tickguard.models import Batch, BookSnapshot, Gap, HaltSignal, QuarantineRecord, Trade
from tickguard.settings import StreamSettings

log = logging.getLogger(__name__)

Item = Trade | BookSnapshot | Gap | QuarantineRecord | HaltSignal


class _EndOfStream:
    """What :meth:`EventQueue.get_nowait` returns once the queue is closed and empty."""


END = _EndOfStream()


class Sink(Protocol):
    """Where batches go (RedisStreamSink in production, a list or a Persist in tests)."""

    async def put(self, batch: Batch) -> None: ...


class EventQueue:
    """A bounded FIFO of items with one consumer; ``put_many`` waits while it is full.

    The cap counts items, never frames: a put that does not fit whole puts what fits and
    waits for room for the rest, so the queue never holds more than ``max_events`` items
    and a frame larger than the cap still gets through, in pieces. Readers that must wait
    take turns in arrival order, and a new put does not overtake a waiting one.
    """

    def __init__(self, max_events: int) -> None:
        self.max_events = max_events
        self._items: list[Item] = []
        self._closed = False
        self._turn = asyncio.Lock()
        """Held by the reader waiting for room; others queue behind it (FIFO)."""
        self._waiting = 0
        """Readers inside :meth:`_put_waiting` (a plain int: checked on every put)."""
        self._room = asyncio.Event()
        self._ready: asyncio.Future[bool] | None = None
        """The consumer's wake-up while it waits for ``_wanted`` items."""
        self._wanted = 0
        self.high_water = 0
        self.waits = 0
        """How many times a reader had to wait for room (back-pressure events)."""

    async def put_many(self, items: Sequence[Item]) -> None:
        """Append ``items`` in order; waits for room past the cap (nothing is dropped)."""
        buf = self._items
        size = len(buf) + len(items)
        if size > self.max_events or self._waiting:
            await self._put_waiting(items)
            return
        buf.extend(items)
        if size > self.high_water:
            self.high_water = size
        if self._ready is not None and size >= self._wanted:
            self._wake()

    async def _put_waiting(self, items: Sequence[Item]) -> None:
        self._waiting += 1
        try:
            await self._put_in_turn(items)
        finally:
            self._waiting -= 1

    async def _put_in_turn(self, items: Sequence[Item]) -> None:
        async with self._turn:
            rest = list(items)
            while True:
                buf = self._items  # the batcher swaps the list out when it takes
                free = self.max_events - len(buf)
                if free >= len(rest):
                    buf.extend(rest)
                    break
                if free > 0:
                    buf.extend(rest[:free])
                    del rest[:free]
                    self.high_water = max(self.high_water, len(buf))
                    if self._ready is not None:
                        self._wake()
                self.waits += 1
                self._room.clear()
                await self._room.wait()
            self.high_water = max(self.high_water, len(buf))
            if self._ready is not None and len(buf) >= self._wanted:
                self._wake()

    def close(self) -> None:
        """No more items will come: the consumer takes what is queued, then sees the end."""
        self._closed = True
        if self._ready is not None:
            self._wake()

    def qsize(self) -> int:
        return len(self._items)

    def get_nowait(self) -> Item | _EndOfStream:
        """The oldest item; :data:`END` once closed and empty; QueueEmpty when empty."""
        if not self._items:
            if self._closed:
                return END
            raise asyncio.QueueEmpty
        item = self._items.pop(0)
        self._freed()
        return item

    def take_nowait(self, limit: int) -> list[Item]:
        """Up to ``limit`` of the oldest items, without waiting ([] when none is queued)."""
        buf = self._items
        if not buf:
            return buf[:0]
        if len(buf) <= limit:
            self._items = []
        else:
            buf, self._items = buf[:limit], buf[limit:]
        self._freed()
        return buf

    async def wait_for_items(self, wanted: int, timeout_s: float | None = None) -> bool:
        """Wait until ``wanted`` items are queued or the queue is closed; False on timeout.

        For the one consumer (the batcher): it sleeps through the arrivals it does not need.
        """
        if len(self._items) >= wanted or self._closed:
            return True
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[bool] = loop.create_future()
        self._ready = ready
        self._wanted = wanted
        timer = None if timeout_s is None else loop.call_later(timeout_s, _expire, ready)
        try:
            return await ready
        finally:
            self._ready = None
            if timer is not None:
                timer.cancel()

    def _wake(self) -> None:
        ready = self._ready
        if ready is not None and not ready.done():
            ready.set_result(True)

    def _freed(self) -> None:
        if self._waiting:
            self._room.set()


def _expire(ready: asyncio.Future[bool]) -> None:
    if not ready.done():
        ready.set_result(False)


@dataclass(slots=True)
class BatcherStats:
    batches: int = 0
    trades: int = 0
    books: int = 0
    gaps: int = 0
    quarantined: int = 0


def _batch(items: list[Item]) -> Batch:
    """Sort items by kind, keeping their order within each kind."""
    batch = Batch()
    add_trade, add_book = batch.trades.append, batch.books.append
    for item in items:
        if type(item) is Trade:  # exact types first: the two kinds nearly every item is
            add_trade(item)
        elif type(item) is BookSnapshot:
            add_book(item)
        else:
            _add(batch, item)
    return batch


def _add(batch: Batch, item: Item) -> None:
    if isinstance(item, Trade):
        batch.trades.append(item)
    elif isinstance(item, BookSnapshot):
        batch.books.append(item)
    elif isinstance(item, Gap):
        batch.gaps.append(item)
    elif isinstance(item, HaltSignal):
        batch.halts.append(item)
    else:
        batch.quarantined.append(item)


class Batcher:
    """Moves items from an :class:`EventQueue` to a :class:`Sink` in bounded batches."""

    def __init__(self, queue: EventQueue, sink: Sink, stream: StreamSettings) -> None:
        self._queue = queue
        self._sink = sink
        self._max = stream.batch_max_events
        self._delay = stream.batch_max_delay_s
        self.stats = BatcherStats()

    async def run(self) -> None:
        """Until the queue is closed and empty: wait for an item, give the batch
        ``batch_max_delay_s`` to fill, hand it to the sink.

        Everything queued before :meth:`close` is delivered; cancel this task only to
        abandon it.
        """
        queue, limit = self._queue, self._max
        # A full queue also ends the wait: its readers are blocked until the batcher takes.
        enough = min(limit, queue.max_events)
        while True:
            await queue.wait_for_items(1)
            await queue.wait_for_items(enough, self._delay)
            items = queue.take_nowait(limit)
            if not items:
                return  # closed and drained
            await self._emit(_batch(items))

    async def close(self) -> None:
        """Ask :meth:`run` to flush what is queued and return (readers must have stopped)."""
        self._queue.close()

    async def _emit(self, batch: Batch) -> None:
        # A batch is one transaction downstream. A raw malformed frame can be poison (a NUL
        # byte PostgreSQL text refuses): it must not take a batch of good trades with it.
        if batch.quarantined and (batch.trades or batch.books or batch.gaps or batch.halts):
            await self._sink.put(Batch(batch.trades, batch.books, batch.gaps, halts=batch.halts))
            await self._sink.put(Batch(quarantined=batch.quarantined))
        else:
            await self._sink.put(batch)
        stats = self.stats
        stats.batches += 1
        stats.trades += len(batch.trades)
        stats.books += len(batch.books)
        stats.gaps += len(batch.gaps)
        stats.quarantined += len(batch.quarantined)
