"""Every Trade, BookSnapshot, HaltSignal and MinuteBar timestamp is timezone-aware.

Trade and BookSnapshot write their ``__init__`` out (cheaper than the dataclass one on the
hot path); these tests hold them to what the generated one did: same fields, defaults,
keywords, equality, hashing, ``replace``, immutability, and naive datetimes refused.
"""

from __future__ import annotations

import dataclasses
import pickle
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest

from tickguard.models import (
    KST,
    BookSnapshot,
    Broker,
    HaltSignal,
    MinuteBar,
    Side,
    Source,
    Trade,
)

DAY = date(2026, 3, 3)
TS = datetime(2026, 3, 3, 9, 0, 1, tzinfo=KST)
RECEIVED = datetime(2026, 3, 3, 0, 0, 1, 5, tzinfo=UTC)
NAIVE = datetime(2026, 3, 3, 9, 0, 1)


class _NoOffset(tzinfo):
    """A tzinfo that knows no offset: a datetime carrying it is naive in Python's terms."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


def _trade(ts: datetime = TS, received_at: datetime = RECEIVED) -> Trade:
    return Trade(Broker.KIS, "005930", DAY, ts, 71900, 3, Side.BUY, 100, received_at)


def _book(ts: datetime = TS, received_at: datetime = RECEIVED) -> BookSnapshot:
    return BookSnapshot(
        Broker.KIS, "005930", DAY, ts, ((71900, 5),), ((71800, 7),), 5, 7, received_at
    )


@pytest.mark.parametrize("build", [_trade, _book])
@pytest.mark.parametrize("field", ["ts", "received_at"])
@pytest.mark.parametrize("bad", [NAIVE, NAIVE.replace(tzinfo=_NoOffset())], ids=["naive", "none"])
def test_trade_and_book_refuse_naive_timestamps(build: object, field: str, bad: datetime) -> None:
    assert callable(build)
    with pytest.raises(ValueError, match=f"{field} must be timezone-aware"):
        build(**{field: bad})


def test_halt_and_bar_refuse_naive_timestamps() -> None:
    with pytest.raises(ValueError, match="at must be timezone-aware"):
        HaltSignal(Broker.KIS, "005930", NAIVE, True)
    with pytest.raises(ValueError, match="minute must be timezone-aware"):
        MinuteBar(Broker.KIS, "005930", DAY, NAIVE, 1, 1, 1, 1, 1)


@pytest.mark.parametrize("zone", [KST, UTC, timezone(timedelta(hours=9)), ZoneInfo("UTC")], ids=str)
def test_any_aware_zone_is_accepted(zone: tzinfo) -> None:
    ts = TS.astimezone(zone)
    assert _trade(ts=ts, received_at=ts).ts == TS
    assert _book(ts=ts, received_at=ts).ts == TS


def test_trade_keeps_the_dataclass_contract() -> None:
    trade = _trade()
    assert trade.source is Source.WS
    by_keyword = Trade(
        broker=Broker.KIS, symbol="005930", trading_day=DAY, ts=TS, price=71900, qty=3,
        side=Side.BUY, cum_volume=100, received_at=RECEIVED,
    )  # fmt: skip
    assert by_keyword == trade and hash(by_keyword) == hash(trade)
    assert (trade.symbol, trade.price, trade.qty, trade.cum_volume) == ("005930", 71900, 3, 100)
    assert trade.key == ("005930", DAY, 100)
    rest = dataclasses.replace(trade, source=Source.REST)
    assert rest.source is Source.REST and rest != trade
    assert [f.name for f in dataclasses.fields(Trade)][-1] == "source"
    assert pickle.loads(pickle.dumps(trade)) == trade
    with pytest.raises(dataclasses.FrozenInstanceError):
        trade.price = 1  # type: ignore[misc]
    with pytest.raises(ValueError, match="ts must be timezone-aware"):
        dataclasses.replace(trade, ts=NAIVE)
    with pytest.raises(TypeError):
        Trade(Broker.KIS, "005930", DAY, TS, 71900, 3, Side.BUY, 100)  # type: ignore[call-arg]


def test_book_keeps_the_dataclass_contract() -> None:
    book = _book()
    assert book.asks == ((71900, 5),) and book.bids == ((71800, 7),)
    assert (book.total_ask_qty, book.total_bid_qty, book.received_at) == (5, 7, RECEIVED)
    assert dataclasses.replace(book) == book and hash(dataclasses.replace(book)) == hash(book)
    assert pickle.loads(pickle.dumps(book)) == book
    assert "asks=((71900, 5),)" in repr(book)
    with pytest.raises(dataclasses.FrozenInstanceError):
        book.asks = ()  # type: ignore[misc]
