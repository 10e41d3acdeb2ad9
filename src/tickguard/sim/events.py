"""The market's vocabulary: session table, symbol profiles, configuration, generated events.

Broker-neutral plain data. Time is a float ``t`` = seconds since midnight KST (sub-second
order inside an exchange second); the wire sees whole seconds (:func:`hhmmss`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from tickguard.models import KST, Side
from tickguard.sim.ticks import Book

BOOK_LEVELS = 10
MAIN_SEQ = 1_000_000
"""Sequence numbers from the open on start here; pre-open books count from 1."""


def seconds_of(value: time) -> float:
    """Seconds since midnight of a wall-clock time (session time coordinate)."""
    return value.hour * 3600 + value.minute * 60 + value.second + value.microsecond / 1e6


_HHMMSS: dict[int, str] = {}


def hhmmss(t: float) -> str:
    """Exchange time on the wire: whole seconds, ``HHMMSS`` (memoised: hot path; a day has
    at most 86 400 distinct values)."""
    s = int(t) % 86_400
    text = _HHMMSS.get(s)
    if text is None:
        text = _HHMMSS[s] = f"{s // 3600:02d}{s // 60 % 60:02d}{s % 60:02d}"
    return text


@dataclass(frozen=True, slots=True)
class SessionTimes:
    """The session table as configuration (KRX changes it; see §3.2 of the reference)."""

    pre_open: time = time(8, 30)
    open: time = time(9, 0)
    close_auction: time = time(15, 20)
    close: time = time(15, 30)


@dataclass(frozen=True, slots=True)
class SymbolProfile:
    """How one symbol trades: previous close, activity and order sizes."""

    symbol: str
    prev_close: int
    orders_per_min: float
    """Average aggressive orders per minute in the continuous session (before the U-shape)."""
    mean_qty: int
    books_per_min: float
    kind: str = "stock"


@dataclass(frozen=True, slots=True)
class HaltWindow:
    """A symbol that stops trading for a window of session time."""

    symbol: str
    start: time
    end: time


@dataclass(frozen=True, slots=True)
class MarketConfig:
    day: date
    symbols: tuple[SymbolProfile, ...]
    seed: int = 0
    sessions: SessionTimes = field(default_factory=SessionTimes)
    halts: tuple[HaltWindow, ...] = ()
    open_burst: float = 6.0
    """Extra activity multiple right after the open, decaying with ``burst_tau_s``."""
    close_burst: float = 3.0
    burst_tau_s: float = 600.0


@dataclass(slots=True)
class GenTrade:
    """One generated trade, with the running statistics a broker feed carries.

    Not frozen: frozen dataclasses pay ``object.__setattr__`` per field on the hot path.
    Treat instances as immutable all the same.
    """

    t: float
    seq: int
    symbol: str
    day: date
    price: int
    qty: int
    side: Side | None
    """Aggressor side; None for auction prints."""
    cum_volume: int
    cum_value: int
    open: int
    high: int
    low: int
    open_t: float
    high_t: float
    low_t: float
    buys: int
    sells: int
    buy_volume: int
    sell_volume: int
    prev_close: int
    ask1: int
    bid1: int
    ask1_qty: int
    bid1_qty: int
    total_ask: int
    total_bid: int
    auction: bool = False

    @property
    def ts(self) -> datetime:
        return exchange_ts(self.day, self.t)


@dataclass(slots=True)
class GenBook:
    """One 10-level book snapshot consistent with the last trade (best ask > best bid)."""

    t: float
    seq: int
    symbol: str
    day: date
    book: Book
    cum_volume: int
    prev_close: int
    phase: str
    """"pre_open", "continuous", "closing_auction" or "halt" (a halted symbol's book)."""
    expected_price: int = 0
    expected_qty: int = 0

    @property
    def ts(self) -> datetime:
        return exchange_ts(self.day, self.t)


GenEvent = GenTrade | GenBook


def exchange_ts(day: date, t: float) -> datetime:
    """Exchange timestamp as the feed carries it: whole seconds, Asia/Seoul."""
    return datetime(day.year, day.month, day.day, tzinfo=KST) + timedelta(seconds=int(t))


def symbol_seed(seed: int, symbol: str) -> int:
    """A stable per-symbol seed (``hash()`` is salted per process, so it is not used)."""
    digest = hashlib.blake2b(f"{seed}:{symbol}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")
