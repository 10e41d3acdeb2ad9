"""Pure conversion of KIS real-time records (KIS field names) into domain events.

A frame's payload is one flat list of ``^``-separated fields holding ``count`` records; the
functions here read one record at ``start`` inside that list, so the hot path never copies a
record. Per-session context (the time cache, the trading day) comes first in each signature
so the session binds it once with ``functools.partial``. Errors raise
:class:`~tickguard.errors.DecodeError`; the session turns them into quarantine entries.
Exchange time is built in Asia/Seoul through :class:`KstTimes`, a bounded cache, because
building a tz-aware datetime costs more than the rest of a record.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from tickguard.brokers import MAX_NUMBER, TIME_CACHE_ENTRIES
from tickguard.brokers.kis.wire import CCLD_DVSN_BUY, CCLD_DVSN_SELL, Asp, Cnt
from tickguard.errors import DecodeError
from tickguard.models import BOOK_DEPTH, KST, BookSnapshot, Broker, Level, Side, Trade

SIDES: dict[str, Side | None] = {CCLD_DVSN_BUY: Side.BUY, CCLD_DVSN_SELL: Side.SELL}


def _digits(value: str, width: int) -> bool:
    return len(value) == width and value.isascii() and value.isdigit()


class KstTimes:
    """Small caches of parsed ``YYYYMMDD`` dates and (date, ``HHMMSS``) KST datetimes.

    A frame's records, and the frames of the next moments, share a handful of seconds, so
    almost every lookup hits a cache that holds only the recent ones
    (:data:`~tickguard.brokers.TIME_CACHE_ENTRIES`). A cache that reaches ``max_entries`` is
    cleared: exchange time moves forward, so it refills with the current seconds at one miss
    (~2 µs) each.
    """

    __slots__ = ("_dates", "_max", "_stamps", "_times")

    def __init__(self, max_entries: int = TIME_CACHE_ENTRIES) -> None:
        self._max = max_entries
        self._dates: dict[str, date] = {}
        self._times: dict[tuple[date, str], datetime] = {}
        self._stamps: dict[tuple[str, str], tuple[date, datetime]] = {}

    def day(self, yyyymmdd: str) -> date:
        found = self._dates.get(yyyymmdd)
        if found is not None:
            return found
        if not _digits(yyyymmdd, 8):
            raise DecodeError("bad_date", repr(yyyymmdd[:16]))
        try:
            parsed = date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:]))
        except ValueError as exc:
            raise DecodeError("bad_date", repr(yyyymmdd)) from exc
        if len(self._dates) >= self._max:
            self._dates.clear()
        self._dates[yyyymmdd] = parsed
        return parsed

    def stamp(self, yyyymmdd: str, hhmmss: str) -> tuple[date, datetime]:
        """(trading day, exchange time) of a record that carries its own date, one lookup."""
        key = (yyyymmdd, hhmmss)
        found = self._stamps.get(key)
        if found is not None:
            return found
        day = self.day(yyyymmdd)
        stamp = (day, self.at(day, hhmmss))
        if len(self._stamps) >= self._max:
            self._stamps.clear()
        self._stamps[key] = stamp
        return stamp

    def at(self, day: date, hhmmss: str) -> datetime:
        key = (day, hhmmss)
        found = self._times.get(key)
        if found is not None:
            return found
        if not _digits(hhmmss, 6):
            raise DecodeError("bad_time", repr(hhmmss[:16]))
        try:
            parsed = datetime(
                day.year, day.month, day.day,
                int(hhmmss[:2]), int(hhmmss[2:4]), int(hhmmss[4:]), tzinfo=KST,
            )  # fmt: skip
        except ValueError as exc:
            raise DecodeError("bad_time", repr(hhmmss)) from exc
        if len(self._times) >= self._max:
            self._times.clear()
        self._times[key] = parsed
        return parsed


def _int(fields: Sequence[str], index: int, name: str) -> int:
    try:
        value = int(fields[index])
    except ValueError:
        raise DecodeError("bad_number", f"{name}={fields[index][:32]!r}") from None
    if not 0 <= value <= MAX_NUMBER:
        raise DecodeError("bad_number", f"{name}={fields[index][:32]!r}")
    return value


def _symbol(symbol: str) -> str:
    if not symbol or len(symbol) > 12 or not symbol.isascii() or not symbol.isalnum():
        raise DecodeError("bad_symbol", repr(symbol[:32]))
    return symbol


# Positions as module constants: the record loop is hot and attribute lookups add up.
_C_SYMBOL, _C_HOUR, _C_PRICE, _C_QTY = Cnt.SYMBOL, Cnt.HOUR, Cnt.PRICE, Cnt.QTY
_C_CUM, _C_SIDE, _C_DATE = Cnt.CUM_VOLUME, Cnt.SIDE, Cnt.DATE


def parse_h0stcnt0_record(
    times: KstTimes, fields: Sequence[str], start: int, received_at: datetime
) -> Trade:
    """One H0STCNT0 record → :class:`Trade`. The record carries its own date (BSOP_DATE)."""
    try:
        price = int(fields[start + _C_PRICE])
        qty = int(fields[start + _C_QTY])
        cum_volume = int(fields[start + _C_CUM])
    except ValueError:
        raise DecodeError("bad_number", "STCK_PRPR, CNTG_VOL or ACML_VOL") from None
    if not 0 < price <= MAX_NUMBER:
        raise DecodeError("bad_price", f"STCK_PRPR={price}"[:64])
    if not (0 <= qty <= MAX_NUMBER and 0 <= cum_volume <= MAX_NUMBER):
        raise DecodeError("bad_number", f"CNTG_VOL={qty} ACML_VOL={cum_volume}"[:64])
    trading_day, ts = times.stamp(fields[start + _C_DATE], fields[start + _C_HOUR])
    symbol = fields[start + _C_SYMBOL]
    if not (symbol.isascii() and symbol.isalnum()) or len(symbol) > 12:  # inline: hot path
        raise DecodeError("bad_symbol", repr(symbol[:32]))
    return Trade(
        Broker.KIS,
        symbol,
        trading_day,
        ts,
        price,
        qty,
        SIDES.get(fields[start + _C_SIDE]),
        cum_volume,
        received_at,
    )


def _levels(fields: Sequence[str], price_at: int, qty_at: int) -> tuple[Level, ...]:
    """Book levels best first; a level with price 0 is KIS's "no order at this level"."""
    levels: list[Level] = []
    for n in range(BOOK_DEPTH):
        price = int(fields[price_at + n])
        if not 0 <= price <= MAX_NUMBER:
            raise DecodeError("bad_price", f"level {n + 1} price={price}"[:64])
        if price:
            qty = int(fields[qty_at + n])
            if not 0 <= qty <= MAX_NUMBER:
                raise DecodeError("bad_number", f"level {n + 1} quantity={qty}"[:64])
            levels.append((price, qty))
    return tuple(levels)


def parse_h0stasp0_record_checked(
    times: KstTimes, trading_day: date, fields: Sequence[str], start: int, received_at: datetime
) -> BookSnapshot:
    """One H0STASP0 record → :class:`BookSnapshot`, field by field in wire order.

    The reference for :func:`parse_h0stasp0_record`, which falls back to it for any record
    it does not take whole, so a bad record is refused with this function's reason and
    detail: the first bad field in this order decides.
    """
    try:
        asks = _levels(fields, start + Asp.ASK_PRICE, start + Asp.ASK_QTY)
        bids = _levels(fields, start + Asp.BID_PRICE, start + Asp.BID_QTY)
    except ValueError:
        raise DecodeError("bad_number", "non-numeric book level") from None
    return BookSnapshot(
        Broker.KIS,
        _symbol(fields[start + Asp.SYMBOL]),
        trading_day,
        times.at(trading_day, fields[start + Asp.HOUR]),
        asks,
        bids,
        _int(fields, start + Asp.TOTAL_ASK, "TOTAL_ASKP_RSQN"),
        _int(fields, start + Asp.TOTAL_BID, "TOTAL_BIDP_RSQN"),
        received_at,
    )


# The book's numbers — 10 ask prices, 10 bid prices, their 10 + 10 quantities, the two
# totals — are one contiguous run of columns: read as one slice, they convert in C.
_A_FIRST = min(Asp.ASK_PRICE, Asp.BID_PRICE, Asp.ASK_QTY, Asp.BID_QTY, Asp.TOTAL_ASK, Asp.TOTAL_BID)
_A_END = max(Asp.ASK_PRICE + BOOK_DEPTH, Asp.BID_PRICE + BOOK_DEPTH, Asp.ASK_QTY + BOOK_DEPTH,
             Asp.BID_QTY + BOOK_DEPTH, Asp.TOTAL_ASK + 1, Asp.TOTAL_BID + 1)  # fmt: skip
_A_ASKP, _A_BIDP = Asp.ASK_PRICE - _A_FIRST, Asp.BID_PRICE - _A_FIRST
_A_ASKQ, _A_BIDQ = Asp.ASK_QTY - _A_FIRST, Asp.BID_QTY - _A_FIRST
_A_TOTAL_ASK, _A_TOTAL_BID = Asp.TOTAL_ASK - _A_FIRST, Asp.TOTAL_BID - _A_FIRST
_A_SYMBOL, _A_HOUR = Asp.SYMBOL, Asp.HOUR


def parse_h0stasp0_record(
    times: KstTimes, trading_day: date, fields: Sequence[str], start: int, received_at: datetime
) -> BookSnapshot:
    """One H0STASP0 record → :class:`BookSnapshot`; the record has a time only (BSOP_HOUR).

    All 42 numbers are converted in one ``map`` and range-checked at once; a record where
    any of them is non-numeric or out of range goes to :func:`parse_h0stasp0_record_checked`,
    which names the field (and ignores the quantity of a price-0 level, as it always did):
    the same events and the same quarantine as that function alone.
    """
    texts = fields[start + _A_FIRST : start + _A_END]
    try:
        nums = list(map(int, texts))
    except ValueError:
        return parse_h0stasp0_record_checked(times, trading_day, fields, start, received_at)
    # In range, 3x cheaper than min()/max(): without a "-" none is negative, and then a sum
    # within the bound holds each one within it.
    if "-" in "^".join(texts) or sum(nums) > MAX_NUMBER:
        return parse_h0stasp0_record_checked(times, trading_day, fields, start, received_at)
    # Both slices hold BOOK_DEPTH numbers: zip's strict check would cost ~0.2 µs a side.
    ask_prices = nums[_A_ASKP : _A_ASKP + BOOK_DEPTH]
    bid_prices = nums[_A_BIDP : _A_BIDP + BOOK_DEPTH]
    asks = tuple(zip(ask_prices, nums[_A_ASKQ : _A_ASKQ + BOOK_DEPTH], strict=False))
    bids = tuple(zip(bid_prices, nums[_A_BIDQ : _A_BIDQ + BOOK_DEPTH], strict=False))
    if not all(ask_prices):  # a thin book: price-0 levels are left out
        asks = tuple([level for level in asks if level[0]])
    if not all(bid_prices):
        bids = tuple([level for level in bids if level[0]])
    symbol = fields[start + _A_SYMBOL]
    if not symbol or len(symbol) > 12 or not (symbol.isascii() and symbol.isalnum()):
        raise DecodeError("bad_symbol", repr(symbol[:32]))
    return BookSnapshot(
        Broker.KIS,
        symbol,
        trading_day,
        times.at(trading_day, fields[start + _A_HOUR]),
        asks,
        bids,
        nums[_A_TOTAL_ASK],
        nums[_A_TOTAL_BID],
        received_at,
    )
