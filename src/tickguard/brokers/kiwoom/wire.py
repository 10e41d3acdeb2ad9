"""Kiwoom's wire vocabulary and the pure functions that turn it into domain objects.

Wire names stay Kiwoom's (``trnm``, ``grp_no``, FID strings such as ``"10"``); the named
``parse_*`` functions are the only place they become :class:`~tickguard.models.Trade` and
:class:`~tickguard.models.BookSnapshot`. Facts: ``shared/reference/broker-protocols.md`` §2.

Every value of a REAL message is a string. Prices carry a ``+``/``-`` prefix relative to the
previous close (the price itself is the absolute value); FID 15 (trade volume) is signed by
the aggressor side (``+`` buy, ``-`` sell). REAL messages carry only ``HHMMSS``: the trading
day comes from the caller, and the time is Asia/Seoul.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import date, datetime, time

from tickguard.brokers import MAX_NUMBER, TIME_CACHE_ENTRIES
from tickguard.errors import DecodeError
from tickguard.models import BOOK_DEPTH, KST, BookSnapshot, Broker, Level, Side, Trade

# --- message names (``trnm``) and real-time types -------------------------------------------
LOGIN = "LOGIN"
REG = "REG"
REMOVE = "REMOVE"
REAL = "REAL"
PING = "PING"
SYSTEM = "SYSTEM"

TYPE_TRADE = "0B"
"""주식체결."""
TYPE_BOOK = "0D"
"""주식호가잔량."""
TYPE_VI = "1h"
"""VI발동/해제 (§2.6.3). UNCONFIRMED: whether it needs its own REG and what 9068 carries; the
codec reads only 1223 (activation time) and 1224 (release time, blank while active)."""
TYPE_NAMES = {TYPE_TRADE: "주식체결", TYPE_BOOK: "주식호가잔량", TYPE_VI: "VI발동/해제"}

# --- SYSTEM codes ------------------------------------------------------------------------------
SYS_KICKED = "R10001"
"""동일한 App key로 접속이 되었습니다. 기존 세션은 종료가 됩니다."""
SYS_NO_HEARTBEAT = "R10002"
"""Heartbeat(연결유지) 메시지가 오지않아서 접속을 종료합니다."""
SYS_NO_LOGIN = "R10004"
"""접속허용요청이 들어오지 않았습니다."""
SYSTEM_MESSAGES = {
    SYS_KICKED: "동일한 App key로 접속이 되었습니다. 기존 세션은 종료가 됩니다",
    SYS_NO_HEARTBEAT: (
        "사용자 프로그램으로부터 Heartbeat(연결유지) 메시지가 오지않아서 접속을 종료합니다"
    ),
    SYS_NO_LOGIN: "접속허용요청이 들어오지 않았습니다",
}

# --- FIDs ----------------------------------------------------------------------------------------
FID_TRADE_TIME = "20"
FID_PRICE = "10"
FID_TRADE_VOLUME = "15"
FID_CUM_VOLUME = "13"
FID_BOOK_TIME = "21"
FID_VI_AT = "1223"
"""매매체결처리시각 of a ``1h`` entry: when the VI started."""
FID_VI_RELEASED_AT = "1224"
"""VI해제시각: blank while the VI holds."""
FID_TOTAL_ASK = "121"
FID_TOTAL_BID = "125"
ASK_PRICE_FIDS = tuple(str(40 + n) for n in range(1, BOOK_DEPTH + 1))
BID_PRICE_FIDS = tuple(str(50 + n) for n in range(1, BOOK_DEPTH + 1))
ASK_QTY_FIDS = tuple(str(60 + n) for n in range(1, BOOK_DEPTH + 1))
BID_QTY_FIDS = tuple(str(70 + n) for n in range(1, BOOK_DEPTH + 1))
ITEMS_PER_REG = 100
"""``data[].item`` holds at most 100 codes (official table: len 100)."""


def _int(values: Mapping[str, object], fid: str) -> int:
    """A signed integer FID; an empty string counts as 0 (Kiwoom blanks unused levels)."""
    raw = values.get(fid)
    if not isinstance(raw, str):
        raise DecodeError("bad_field", f"FID {fid} missing or not a string: {raw!r}")
    if not raw:
        return 0
    try:
        value = int(raw)
    except ValueError:
        raise DecodeError("bad_field", f"FID {fid} is not an integer: {raw[:32]!r}") from None
    if not -MAX_NUMBER <= value <= MAX_NUMBER:
        raise DecodeError("bad_field", f"FID {fid} is out of range: {raw[:32]!r}")
    return value


def _qty(values: Mapping[str, object], fid: str) -> int:
    """A quantity FID: unsigned on the wire, so a sign is a corrupt value."""
    value = _int(values, fid)
    if value < 0:
        raise DecodeError("bad_field", f"FID {fid} is a negative quantity: {value}")
    return value


def parse_hhmmss(raw: object, trading_day: date) -> datetime:
    """``HHMMSS`` on ``trading_day`` in Asia/Seoul."""
    if not isinstance(raw, str) or len(raw) != 6 or not (raw.isascii() and raw.isdigit()):
        raise DecodeError("bad_time", f"expected HHMMSS, got {raw!r}")
    hour, minute, second = int(raw[:2]), int(raw[2:4]), int(raw[4:])
    if hour > 23 or minute > 59 or second > 59:
        raise DecodeError("bad_time", f"HHMMSS out of range: {raw!r}")
    return datetime.combine(trading_day, time(hour, minute, second), tzinfo=KST)


class TimeCache:
    """Memoises ``HHMMSS`` → datetime for one trading day: most ticks share their second.

    Holds only the recent seconds: cleared when it reaches ``max_entries`` (time moves
    forward, so it refills at one miss per current second). A cache kept for the whole day
    grew each connection's memory all session long (:data:`~tickguard.brokers.TIME_CACHE_ENTRIES`).
    """

    __slots__ = ("_cache", "_max", "day")

    def __init__(self, trading_day: date, max_entries: int = TIME_CACHE_ENTRIES) -> None:
        self.day = trading_day
        self._max = max_entries
        self._cache: dict[str, datetime] = {}

    def at(self, raw: object) -> datetime:
        if isinstance(raw, str):
            hit = self._cache.get(raw)
            if hit is not None:
                return hit
        ts = parse_hhmmss(raw, self.day)
        if len(self._cache) >= self._max:
            self._cache.clear()
        self._cache[raw] = ts  # type: ignore[index]  # parse_hhmmss proved raw is a str
        return ts


_SIDE_OF_SIGN = {"+": Side.BUY, "-": Side.SELL}


def parse_trade(
    item: str, values: Mapping[str, object], times: TimeCache, received_at: datetime
) -> Trade:
    """One ``0B`` entry → Trade: |price|, |volume| with side from the volume's sign.

    Takes an entry whose three numbers are plain in-range integer strings whole; any other
    goes to :func:`parse_trade_checked`, which names what is wrong (same result, same
    refusal, at a third of the cost for the usual entry).
    """
    raw_qty = values.get(FID_TRADE_VOLUME)
    raw_cum = values.get(FID_CUM_VOLUME)
    raw_price = values.get(FID_PRICE)
    if raw_qty.__class__ is str and raw_cum.__class__ is str and raw_price.__class__ is str:
        try:
            signed_qty, cum, price = int(raw_qty), int(raw_cum), int(raw_price)
        except ValueError:  # "" (0 on this wire) or junk: the checked path tells which
            pass
        else:
            price = abs(price)
            if (
                0 < price <= MAX_NUMBER
                and 0 <= cum <= MAX_NUMBER
                and -MAX_NUMBER <= signed_qty <= MAX_NUMBER
            ):
                return Trade(
                    Broker.KIWOOM,
                    item,
                    times.day,
                    times.at(values.get(FID_TRADE_TIME)),
                    price,
                    abs(signed_qty),
                    _SIDE_OF_SIGN.get(raw_qty[:1]),
                    cum,
                    received_at,
                )
    return parse_trade_checked(item, values, times, received_at)


def parse_trade_checked(
    item: str, values: Mapping[str, object], times: TimeCache, received_at: datetime
) -> Trade:
    """One ``0B`` entry → Trade, field by field: the reference :func:`parse_trade` keeps to."""
    signed_qty = _int(values, FID_TRADE_VOLUME)
    sign = str(values[FID_TRADE_VOLUME])[:1]
    side = Side.BUY if sign == "+" else Side.SELL if sign == "-" else None
    cum = _int(values, FID_CUM_VOLUME)
    if cum < 0:
        raise DecodeError("bad_field", f"negative cumulative volume {cum}")
    price = abs(_int(values, FID_PRICE))
    if not price:
        raise DecodeError("bad_price", f"FID {FID_PRICE}={values.get(FID_PRICE)!r}")
    return Trade(
        broker=Broker.KIWOOM,
        symbol=item,
        trading_day=times.day,
        ts=times.at(values.get(FID_TRADE_TIME)),
        price=price,
        qty=abs(signed_qty),
        side=side,
        cum_volume=cum,
        received_at=received_at,
    )


ASK_FIDS = tuple(zip(ASK_PRICE_FIDS, ASK_QTY_FIDS, strict=True))
BID_FIDS = tuple(zip(BID_PRICE_FIDS, BID_QTY_FIDS, strict=True))


def _levels(values: Mapping[str, object], fids: Sequence[tuple[str, str]]) -> tuple[Level, ...]:
    """Levels best first. A level without a price ("" or 0) means no order rests there and
    is dropped, as the KIS codec does, so both brokers yield the same book."""
    levels: list[Level] = []
    for price_fid, qty_fid in fids:
        price = abs(_int(values, price_fid))
        if price:
            levels.append((price, _qty(values, qty_fid)))
    return tuple(levels)


def check_item(item: object) -> str:
    """A Kiwoom item code: ``005930``, venue-suffixed ``005930_NX``/``_AL``, ETN ``Q500001``."""
    if (
        not isinstance(item, str)
        or not 0 < len(item) <= 12
        or not item.isascii()
        or not item.replace("_", "").isalnum()
    ):
        raise DecodeError("bad_symbol", repr(item)[:40])
    return item


_BOOK_FIDS = (
    *ASK_PRICE_FIDS,
    *BID_PRICE_FIDS,
    *ASK_QTY_FIDS,
    *BID_QTY_FIDS,
    FID_TOTAL_ASK,
    FID_TOTAL_BID,
)
_PRICES = 2 * BOOK_DEPTH
"""The first 20 of :data:`_BOOK_FIDS` are prices (signed on the wire), the rest quantities."""


def parse_book(
    item: str, values: Mapping[str, object], times: TimeCache, received_at: datetime
) -> BookSnapshot:
    """One ``0D`` entry → 10-level BookSnapshot (asks 41–50/61–70, bids 51–60/71–80).

    Takes an entry whose 42 numbers are all plain in-range integer strings whole, converted
    in one ``map``; any other (a blank level, a missing FID, junk) goes to
    :func:`parse_book_checked`: the same book or the same refusal.
    """
    raws = list(map(values.get, _BOOK_FIDS))
    try:
        qty_text = "".join(raws[_PRICES:])  # type: ignore[arg-type]  # TypeError: not a str
        "".join(raws[:_PRICES])  # type: ignore[arg-type]
        nums = list(map(int, raws))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return parse_book_checked(item, values, times, received_at)
    # A quantity without "-" is not negative; then |values| summing within the bound holds
    # each one within it (a price's sign is only its move against the previous close).
    if "-" in qty_text or sum(map(abs, nums)) > MAX_NUMBER:
        return parse_book_checked(item, values, times, received_at)
    ts = times.at(values.get(FID_BOOK_TIME))
    prices = list(map(abs, nums[:_PRICES]))
    asks = tuple(zip(prices[:BOOK_DEPTH], nums[_PRICES : _PRICES + BOOK_DEPTH], strict=False))
    bids = tuple(zip(prices[BOOK_DEPTH:], nums[_PRICES + BOOK_DEPTH : 2 * _PRICES], strict=False))
    if not all(prices):  # a level priced 0 holds no order: left out
        asks = tuple([level for level in asks if level[0]])
        bids = tuple([level for level in bids if level[0]])
    return BookSnapshot(
        Broker.KIWOOM, item, times.day, ts, asks, bids, nums[-2], nums[-1], received_at
    )


def parse_book_checked(
    item: str, values: Mapping[str, object], times: TimeCache, received_at: datetime
) -> BookSnapshot:
    """One ``0D`` entry → BookSnapshot, FID by FID: the reference :func:`parse_book` keeps to."""
    return BookSnapshot(
        broker=Broker.KIWOOM,
        symbol=item,
        trading_day=times.day,
        ts=times.at(values.get(FID_BOOK_TIME)),
        asks=_levels(values, ASK_FIDS),
        bids=_levels(values, BID_FIDS),
        total_ask_qty=_qty(values, FID_TOTAL_ASK),
        total_bid_qty=_qty(values, FID_TOTAL_BID),
        received_at=received_at,
    )


def parse_vi(
    item: str, values: Mapping[str, object], times: TimeCache
) -> tuple[str, datetime, bool]:
    """One ``1h`` entry → (symbol, when, halted): released when 1224 carries a time."""
    released = values.get(FID_VI_RELEASED_AT)
    if isinstance(released, str) and released.strip():
        return item, times.at(released), False
    return item, times.at(values.get(FID_VI_AT)), True


def dumps(message: Mapping[str, object]) -> str:
    """Compact JSON with Korean text kept readable (what Kiwoom sends and expects)."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def login_message(token: str) -> str:
    """The first frame of every session: the raw access token, no ``Bearer``."""
    return dumps({"trnm": LOGIN, "token": token})


def registration_message(
    trnm: str, grp_no: str, data: Sequence[tuple[str, Sequence[str]]], refresh: str = "1"
) -> str:
    """One REG/REMOVE frame; ``data`` is (type, items) pairs (``refresh`` is sent on REG only)."""
    message: dict[str, object] = {"trnm": trnm, "grp_no": grp_no}
    if trnm == REG:
        message["refresh"] = refresh
    message["data"] = [{"item": list(items), "type": [rtype]} for rtype, items in data]
    return dumps(message)
