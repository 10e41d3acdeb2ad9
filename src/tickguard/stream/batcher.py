"""The bounded hand-off between the websocket readers and a sink.

Readers put decoded items into one :class:`EventQueue` whose capacity is
``settings.stream.queue_max_events``. When the sink is slow the queue fills and the readers
*wait* for room (back-pressure reaches the socket), so RAM is bounded by the cap, never by
the backlog — the incident's collector was OOM-killed by an unbounded buffer. The sink
itself (RedisStreamSink) spills to its disk spool when Redis cannot keep up.

The :class:`Batcher` drains the queue into :class:`~tickguard.models.Batch` objects of at
most ``batch_max_events`` items, or whatever arrived within ``batch_max_delay_s``.
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
    """Queued after the last item: tells the batcher to flush and stop."""


END = _EndOfStream()


class Sink(Protocol):
    """Where batches go (RedisStreamSink in production, a list or a Persist in tests)."""

    async def put(self, batch: Batch) -> None: ...


class EventQueue:
    """A bounded FIFO of items; ``put`` waits while it is full."""

    def __init__(self, max_events: int) -> None:
        self.max_events = max_events
        self._queue: asyncio.Queue[Item | _EndOfStream] = asyncio.Queue(maxsize=max_events)
        self.high_water = 0
        self.waits = 0
        """How many times a reader had to wait for room (back-pressure events)."""

    async def put_many(self, items: Sequence[Item | _EndOfStream]) -> None:
        queue = self._queue
        for item in items:
            if queue.full():
                self.waits += 1
                await queue.put(item)
            else:
                queue.put_nowait(item)
        size = queue.qsize()
        if size > self.high_water:
            self.high_water = size

    def qsize(self) -> int:
        return self._queue.qsize()

    async def get(self) -> Item | _EndOfStream:
        return await self._queue.get()

    def get_nowait(self) -> Item | _EndOfStream:
        return self._queue.get_nowait()


@dataclass(slots=True)
class BatcherStats:
    batches: int = 0
    trades: int = 0
    books: int = 0
    gaps: int = 0
    quarantined: int = 0


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
        """Until :data:`END` arrives: wait for an item, gather a batch, hand it to the sink.

        Everything queued before END is delivered; cancel this task only to abandon them.
        """
        loop = asyncio.get_running_loop()
        ended = False
        while not ended:
            batch = Batch()
            first = await self._queue.get()
            if isinstance(first, _EndOfStream):
                return
            _add(batch, first)
            deadline = loop.time() + self._delay
            while len(batch) < self._max and not ended:
                ended = self._fill(batch)
                if ended or len(batch) >= self._max:
                    break
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    async with asyncio.timeout(remaining):
                        item = await self._queue.get()
                except TimeoutError:
                    break
                if isinstance(item, _EndOfStream):
                    ended = True
                else:
                    _add(batch, item)
            await self._emit(batch)

    def _fill(self, batch: Batch) -> bool:
        """Take what is already queued without waiting; True when END was taken."""
        while len(batch) < self._max:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return False
            if isinstance(item, _EndOfStream):
                return True
            _add(batch, item)
        return False

    async def close(self) -> None:
        """Ask :meth:`run` to flush what is queued and return (readers must have stopped)."""
        await self._queue.put_many([END])

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
