"""Domain model: what tickguard stores, independent of any broker's wire names.

Prices and volumes are KRW integers. Every timestamp is timezone-aware: exchange time is
built in Asia/Seoul from the feed; storage converts to UTC. The natural key of a trade is
(symbol, trading_day, cum_volume): both brokers send the cumulative volume after every
trade, so the websocket path and the REST backfill land on the same row.

These are plain slotted dataclasses, not pydantic models: they are built once per tick on
the hot path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

KST = ZoneInfo("Asia/Seoul")
BOOK_DEPTH = 10


class Broker(StrEnum):
    KIS = "kis"
    KIWOOM = "kiwoom"


class Side(StrEnum):
    """Aggressor side of a trade."""

    BUY = "buy"
    SELL = "sell"


class Source(StrEnum):
    WS = "ws"
    REST = "rest"


class GapKind(StrEnum):
    TRADES = "trades"
    BOOK = "book"


class GapStatus(StrEnum):
    OPEN = "open"
    FILLED = "filled"
    NO_TRADES = "no_trades"
    UNRECOVERABLE = "unrecoverable"


def _require_aware(name: str, value: datetime) -> None:
    zone = value.tzinfo
    if zone is KST or zone is UTC:  # the codecs' zones, accepted without a utcoffset() call
        return
    if zone is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")


_Setter = Callable[[object, object], None]


def _setters(cls: type) -> tuple[_Setter, ...]:
    """The slot descriptors' ``__set__`` of ``cls``'s fields, in field order.

    A frozen dataclass's generated ``__init__`` stores each field through
    ``object.__setattr__`` (~0.1 µs a field); calling the slot's descriptor directly costs
    half as much and builds the same object. Trade and BookSnapshot are built once per tick
    (and again when persist decodes a batch), so their ``__init__`` does this; a field added
    without its line there fails the unpacking of this tuple at the first construction.
    """
    setters: list[_Setter] = [getattr(cls, f.name).__set__ for f in fields(cls)]
    return tuple(setters)


@dataclass(frozen=True, slots=True, init=False)
class Trade:
    broker: Broker
    symbol: str
    trading_day: date
    ts: datetime
    """Exchange time of the trade (tz-aware)."""
    price: int
    qty: int
    side: Side | None
    cum_volume: int
    """Cumulative volume of the day after this trade: part of the natural key."""
    received_at: datetime
    source: Source = Source.WS

    def __init__(
        self,
        broker: Broker,
        symbol: str,
        trading_day: date,
        ts: datetime,
        price: int,
        qty: int,
        side: Side | None,
        cum_volume: int,
        received_at: datetime,
        source: Source = Source.WS,
    ) -> None:
        """The dataclass ``__init__``, written out to store through the slots (see
        :func:`_setters`); a naive ``ts`` or ``received_at`` is refused."""
        _require_aware("ts", ts)
        _require_aware("received_at", received_at)
        s_broker, s_symbol, s_day, s_ts, s_price, s_qty, s_side, s_cum, s_received, s_source = (
            _TRADE_SETTERS
        )
        s_broker(self, broker)
        s_symbol(self, symbol)
        s_day(self, trading_day)
        s_ts(self, ts)
        s_price(self, price)
        s_qty(self, qty)
        s_side(self, side)
        s_cum(self, cum_volume)
        s_received(self, received_at)
        s_source(self, source)

    @property
    def key(self) -> tuple[str, date, int]:
        return (self.symbol, self.trading_day, self.cum_volume)


_TRADE_SETTERS = _setters(Trade)

Level = tuple[int, int]
"""One book level: (price, quantity)."""


@dataclass(frozen=True, slots=True, init=False)
class BookSnapshot:
    broker: Broker
    symbol: str
    trading_day: date
    ts: datetime
    asks: tuple[Level, ...]
    """Ask levels, best (lowest) first."""
    bids: tuple[Level, ...]
    """Bid levels, best (highest) first."""
    total_ask_qty: int
    total_bid_qty: int
    received_at: datetime

    def __init__(
        self,
        broker: Broker,
        symbol: str,
        trading_day: date,
        ts: datetime,
        asks: tuple[Level, ...],
        bids: tuple[Level, ...],
        total_ask_qty: int,
        total_bid_qty: int,
        received_at: datetime,
    ) -> None:
        """The dataclass ``__init__``, written out like :meth:`Trade.__init__`."""
        _require_aware("ts", ts)
        _require_aware("received_at", received_at)
        s_broker, s_symbol, s_day, s_ts, s_asks, s_bids, s_total_ask, s_total_bid, s_received = (
            _BOOK_SETTERS
        )
        s_broker(self, broker)
        s_symbol(self, symbol)
        s_day(self, trading_day)
        s_ts(self, ts)
        s_asks(self, asks)
        s_bids(self, bids)
        s_total_ask(self, total_ask_qty)
        s_total_bid(self, total_bid_qty)
        s_received(self, received_at)


_BOOK_SETTERS = _setters(BookSnapshot)


@dataclass(frozen=True, slots=True)
class MinuteBar:
    broker: Broker
    symbol: str
    trading_day: date
    minute: datetime
    """Start of the minute (tz-aware)."""
    open: int
    high: int
    low: int
    close: int
    volume: int
    source: Source = Source.REST

    def __post_init__(self) -> None:
        _require_aware("minute", self.minute)


@dataclass(slots=True)
class Gap:
    broker: Broker
    symbol: str
    kind: GapKind
    start: datetime
    end: datetime | None
    cause: str
    status: GapStatus = GapStatus.OPEN
    detected_at: datetime | None = None
    resolved_at: datetime | None = None
    rows_filled: int = 0
    id: int | None = None
    detail: dict[str, object] = field(default_factory=dict)


Event = Trade | BookSnapshot


@dataclass(frozen=True, slots=True)
class HaltSignal:
    """The feed says a symbol stopped trading (``halted``) or trades again, as of ``at``.

    Codecs emit one on each change they see (KIS ``TRHT_YN``/``HOUR_CLS_CODE``, Kiwoom
    ``1h``); persist turns them into ``halts`` rows, which the completeness grid honours.
    """

    broker: Broker
    symbol: str
    at: datetime
    """Exchange time of the record that carried the flag (tz-aware)."""
    halted: bool
    reason: str = ""

    def __post_init__(self) -> None:
        _require_aware("at", self.at)


@dataclass(frozen=True, slots=True)
class QuarantineRecord:
    """A frame (or record) that could not be decoded, kept raw with the reason."""

    broker: Broker
    received_at: datetime
    reason: str
    raw: str
    detail: str = ""


@dataclass(slots=True)
class Batch:
    """The unit that moves collector → Redis stream → persist → PostgreSQL.

    One batch is one stream entry and one database transaction: it is stored whole or not
    at all, and storing it twice changes nothing.
    """

    trades: list[Trade] = field(default_factory=list)
    books: list[BookSnapshot] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    quarantined: list[QuarantineRecord] = field(default_factory=list)
    halts: list[HaltSignal] = field(default_factory=list)

    def __len__(self) -> int:
        return (
            len(self.trades)
            + len(self.books)
            + len(self.gaps)
            + len(self.quarantined)
            + len(self.halts)
        )
