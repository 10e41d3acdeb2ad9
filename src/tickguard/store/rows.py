"""Domain objects → COPY rows, and the stable digests that give books and quarantined
frames an identity.

Kept free of I/O so the hot path is easy to measure: a trade becomes a tuple through one
C-level ``attrgetter`` call, with no per-field Python code. Enum members are ``StrEnum``
and go to the ``text`` columns as they are.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from hashlib import blake2b
from operator import attrgetter
from typing import Any

from tickguard.models import BookSnapshot, MinuteBar, QuarantineRecord, Trade

MASK63 = (1 << 63) - 1
"""Digests are cut to 63 bits so they fit a non-negative PostgreSQL bigint."""

TRADE_COLUMNS = (
    "broker",
    "symbol",
    "trading_day",
    "ts",
    "price",
    "qty",
    "side",
    "cum_volume",
    "source",
    "received_at",
)
TRADE_TYPES = (
    "text",
    "text",
    "date",
    "timestamptz",
    "int8",
    "int8",
    "text",
    "int8",
    "text",
    "timestamptz",
)
BOOK_COLUMNS = (
    "broker",
    "symbol",
    "trading_day",
    "ts",
    "received_at",
    "ask_prices",
    "ask_qtys",
    "bid_prices",
    "bid_qtys",
    "total_ask_qty",
    "total_bid_qty",
    "digest",
)
BOOK_TYPES = (
    "text",
    "text",
    "date",
    "timestamptz",
    "timestamptz",
    "int8[]",
    "int8[]",
    "int8[]",
    "int8[]",
    "int8",
    "int8",
    "int8",
)
BAR_COLUMNS = (
    "broker",
    "symbol",
    "trading_day",
    "minute",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "source",
)
BAR_TYPES = ("text", "text", "date", "timestamptz", "int8", "int8", "int8", "int8", "int8", "text")
QUARANTINE_COLUMNS = ("broker", "received_at", "reason", "detail", "raw", "raw_digest")
QUARANTINE_TYPES = ("text", "timestamptz", "text", "text", "text", "int8")

trade_row = attrgetter(*TRADE_COLUMNS)
bar_row = attrgetter(*BAR_COLUMNS)


def _digest(payload: bytes) -> int:
    return int.from_bytes(blake2b(payload, digest_size=8).digest(), "little") & MASK63


def book_digest(book: BookSnapshot) -> int:
    """A stable 63-bit hash of a book's levels and totals (the same in every process).

    Python's ``hash()`` is salted per process, so it cannot identify a row across a
    redelivery; blake2b over a fixed little-endian layout can. The level counts lead the
    payload so that moving a level from asks to bids changes the digest.
    """
    values = [len(book.asks), len(book.bids)]
    for price, qty in book.asks:
        values += (price, qty)
    for price, qty in book.bids:
        values += (price, qty)
    values += (book.total_ask_qty, book.total_bid_qty)
    return _digest(struct.pack(f"<{len(values)}q", *values))


def raw_digest(raw: str) -> int:
    """A stable 63-bit hash of a quarantined frame's raw text."""
    return _digest(raw.encode("utf-8", "surrogatepass"))


def trade_rows(trades: Iterable[Trade]) -> Iterator[tuple[Any, ...]]:
    return map(trade_row, trades)


def book_rows(books: Iterable[BookSnapshot]) -> Iterator[tuple[Any, ...]]:
    for book in books:
        yield (
            book.broker,
            book.symbol,
            book.trading_day,
            book.ts,
            book.received_at,
            [price for price, _ in book.asks],
            [qty for _, qty in book.asks],
            [price for price, _ in book.bids],
            [qty for _, qty in book.bids],
            book.total_ask_qty,
            book.total_bid_qty,
            book_digest(book),
        )


def bar_rows(bars: Iterable[MinuteBar]) -> Iterator[tuple[Any, ...]]:
    return map(bar_row, bars)


def quarantine_rows(records: Iterable[QuarantineRecord]) -> Iterator[tuple[Any, ...]]:
    for record in records:
        yield (
            record.broker,
            record.received_at,
            record.reason,
            record.detail,
            record.raw,
            raw_digest(record.raw),
        )
