"""encode_batch's fast paths (one conversion per shared datetime object, unrolled full book
sides) write the same bytes as the plain per-row conversion, at every depth and fold."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from itertools import chain
from zoneinfo import ZoneInfo

import msgpack

from tickguard.models import KST, Batch, BookSnapshot, Broker, Side, Source, Trade
from tickguard.sinks.encoding import VERSION, decode_batch, encode_batch

DAY = date(2026, 3, 5)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NY = ZoneInfo("America/New_York")


def _us(at: datetime) -> int:
    return (at - EPOCH) // timedelta(microseconds=1)


def _book(depth: int, ts: datetime, received: datetime) -> BookSnapshot:
    asks = tuple((70_000 + 100 * i, 1 + i) for i in range(depth))
    bids = tuple((69_900 - 100 * i, 2 + i) for i in range(max(depth - 1, 0)))
    return BookSnapshot(Broker.KIS, "005930", DAY, ts, asks, bids, 7, 8, received)


def test_book_sides_of_every_depth_flatten_as_before() -> None:
    shared = datetime(2026, 3, 5, 9, 0, 1, tzinfo=KST)
    received = datetime(2026, 3, 5, 0, 0, 1, 5, tzinfo=UTC)
    books = [_book(depth, shared, received) for depth in (0, 1, 9, 10, 11, 10)]
    doc = msgpack.unpackb(encode_batch(Batch(books=books)))
    assert doc[0] == VERSION
    assert doc[2][4] == [list(chain.from_iterable(b.asks)) for b in books]
    assert doc[2][5] == [list(chain.from_iterable(b.bids)) for b in books]
    assert doc[2][3] == [_us(shared)] * len(books)
    assert decode_batch(encode_batch(Batch(books=books))).books == books


def test_equal_datetimes_of_different_fold_keep_their_own_instant() -> None:
    # 01:30 on 2026-11-01 happens twice in New York; equal as values, one hour apart.
    first = datetime(2026, 11, 1, 1, 30, tzinfo=NY)
    second = first.replace(fold=1)
    assert first == second and _us(second) - _us(first) == 3_600_000_000
    trades = [
        Trade(Broker.KIS, "005930", DAY, at, 70_000, 1, Side.BUY, n, at, Source.WS)
        for n, at in enumerate([first, second, first, datetime(2026, 3, 5, tzinfo=KST)])
    ]
    doc = msgpack.unpackb(encode_batch(Batch(trades=trades)))
    assert doc[1][3] == [_us(t.ts) for t in trades]
    assert doc[1][8] == [_us(t.received_at) for t in trades]
    back = decode_batch(encode_batch(Batch(trades=trades))).trades
    assert [_us(t.ts) for t in back] == [_us(t.ts) for t in trades]
