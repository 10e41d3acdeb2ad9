"""The shared market's events written the way Kiwoom writes them (reference §2.6–2.7).

Pure functions: :class:`~tickguard.sim.market.GenTrade` → a REAL ``0B`` entry,
:class:`~tickguard.sim.market.GenBook` → a REAL ``0D`` entry, a symbol's tape → ka10079 tick
rows and ka10080 minute bars. Every value is a string, as on the wire; prices carry ``+``/``-``
relative to the previous close, FID 15 carries the aggressor side, and the FIDs the market
does not model are sent blank like the blanks in Kiwoom's own example.

Deliberately independent of tickguard's Kiwoom codec (``tickguard.brokers.kiwoom``): both are
written from the same reference, so decoding the simulator's frames with the codec tests it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from tickguard.models import BOOK_DEPTH, Side
from tickguard.sim.market import GenBook, GenTrade, Market, MarketConfig, hhmmss
from tickguard.sim.universe import default_universe

_TRADE_FID_ORDER = (
    "20 10 11 12 27 28 15 13 14 16 17 18 25 26 29 30 31 32 228 311 290 691 567 568 851 1890 "
    "1891 1892 1030 1031 1032 1071 1072 1313 1315 1316 1314 1497 1498 620 732 852 9081"
)
TRADE_FIDS = tuple(_TRADE_FID_ORDER.split())
"""The 0B FIDs in Kiwoom's order (reference §2.6.1); those not modelled go out blank."""
ASK_PRICE, BID_PRICE, ASK_QTY, BID_QTY = 40, 50, 60, 70
"""0D level n (1..10) is FID base + n: 41–50 ask prices, 51–60 bids, 61–70 / 71–80 quantities."""
PHASE_CODES = {"pre_open": "2", "continuous": "3", "closing_auction": "4"}
"""FID 215 장운영구분 as sent here (the value table is UNCONFIRMED; the codec ignores it)."""


def signed(price: int, reference: int) -> str:
    """Kiwoom's price notation: ``+`` above the previous close, ``-`` below, bare at it."""
    if price > reference:
        return f"+{price}"
    if price < reference:
        return f"-{price}"
    return str(price)


def change(price: int, reference: int) -> str:
    diff = price - reference
    return f"{diff:+d}" if diff else "0"


def sign_code(price: int, prev_close: int) -> str:
    """전일대비기호: 1 상한가, 2 상승, 3 보합, 4 하한가, 5 하락 (limits ±30 %)."""
    if price >= int(prev_close * 1.3):
        return "1"
    if price <= int(prev_close * 0.7):
        return "4"
    return "2" if price > prev_close else "5" if price < prev_close else "3"


def _volume(qty: int, side: Side | None) -> str:
    """FID 15: ``+`` buyer-initiated, ``-`` seller-initiated, bare for auction prints."""
    return f"+{qty}" if side is Side.BUY else f"-{qty}" if side is Side.SELL else str(qty)


def trade_entry(trade: GenTrade) -> dict[str, Any]:
    """One REAL ``0B`` entry for ``trade``."""
    ref = trade.prev_close
    pct = (trade.price - ref) * 100 / ref if ref else 0.0
    strength = trade.buy_volume * 100 / trade.sell_volume if trade.sell_volume else 0.0
    values = dict.fromkeys(TRADE_FIDS, "")
    values.update(
        {
            "20": hhmmss(trade.t),
            "10": signed(trade.price, ref),
            "11": change(trade.price, ref),
            "12": f"{pct:+.2f}" if trade.price != ref else "0.00",
            "27": signed(trade.ask1, ref),
            "28": signed(trade.bid1, ref),
            "15": _volume(trade.qty, trade.side),
            "13": str(trade.cum_volume),
            "14": str(trade.cum_value // 1_000_000),
            "16": signed(trade.open, ref),
            "17": signed(trade.high, ref),
            "18": signed(trade.low, ref),
            "25": sign_code(trade.price, ref),
            "228": f"{strength:.2f}",
            "290": "2",
            "1890": hhmmss(trade.open_t),
            "1891": hhmmss(trade.high_t),
            "1892": hhmmss(trade.low_t),
            "1030": str(trade.sell_volume),
            "1031": str(trade.buy_volume),
            "1071": str(trade.sells),
            "1072": str(trade.buys),
            "9081": "1",
        }
    )
    return {"type": "0B", "name": "주식체결", "item": trade.symbol, "values": values}


def book_entry(book: GenBook) -> dict[str, Any]:
    """One REAL ``0D`` entry for ``book``; levels the book does not have go out blank."""
    ref = book.prev_close
    values: dict[str, str] = {"21": hhmmss(book.t)}
    for n in range(BOOK_DEPTH):
        for price_base, qty_base, levels in (
            (ASK_PRICE, ASK_QTY, book.book.asks),
            (BID_PRICE, BID_QTY, book.book.bids),
        ):
            price, qty = levels[n] if n < len(levels) else (0, 0)
            values[str(price_base + n + 1)] = signed(price, ref) if price else ""
            values[str(qty_base + n + 1)] = str(qty) if price else ""
    values.update(
        {
            "121": str(book.book.total_ask),
            "125": str(book.book.total_bid),
            "13": str(book.cum_volume),
            "215": PHASE_CODES.get(book.phase, ""),
            "23": signed(book.expected_price, ref) if book.expected_price else "",
            "24": str(book.expected_qty) if book.expected_qty else "",
        }
    )
    return {"type": "0D", "name": "주식호가잔량", "item": book.symbol, "values": values}


def vi_entry(book: GenBook) -> dict[str, Any]:
    """A REAL ``1h`` VI발동 entry for a halted symbol's book (§2.6.3): 1223 the time, 1224
    (release time) blank while it holds; the other FIDs the market does not model go blank.
    Sent with the symbol's ``0D`` (whether Kiwoom needs a ``1h`` REG is UNCONFIRMED)."""
    values = dict.fromkeys(("9001", "302", "9068", "1221", "1223", "1224", "1225"), "")
    values.update({"9001": book.symbol, "9068": "1", "1223": hhmmss(book.t)})
    return {"type": "1h", "name": "VI발동/해제", "item": book.symbol, "values": values}


def real_message(entries: Sequence[dict[str, Any]]) -> str:
    return dumps({"trnm": "REAL", "data": list(entries)})


def dumps(message: dict[str, Any]) -> str:
    """Compact JSON with Korean kept as text, as Kiwoom sends it."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class Bar:
    """Trades grouped into one chart row (N ticks, or N minutes)."""

    stamp: str
    """``YYYYMMDDHHMMSS`` of the row: the last tick's time, or the bucket's start minute."""
    open: int
    high: int
    low: int
    close: int
    volume: int
    cum_volume: int
    prev_close: int


def _bar(stamp: str, trades: Sequence[GenTrade]) -> Bar:
    prices = [t.price for t in trades]
    return Bar(
        stamp,
        prices[0],
        max(prices),
        min(prices),
        prices[-1],
        sum(t.qty for t in trades),
        trades[-1].cum_volume,
        trades[0].prev_close,
    )


def _ymd(day: date) -> str:
    return day.strftime("%Y%m%d")


def tick_bars(trades: Iterable[GenTrade], scope: int) -> list[Bar]:
    """ka10079 rows oldest first: every ``scope`` consecutive trades make one row."""
    bars: list[Bar] = []
    group: list[GenTrade] = []
    for trade in trades:
        group.append(trade)
        if len(group) == scope:
            bars.append(_bar(_ymd(trade.day) + hhmmss(trade.t), group))
            group = []
    if group:
        bars.append(_bar(_ymd(group[-1].day) + hhmmss(group[-1].t), group))
    return bars


def minute_bars(trades: Iterable[GenTrade], scope: int) -> list[Bar]:
    """ka10080 rows oldest first: trades bucketed by ``scope`` minutes, stamped at the start
    of the bucket (Kiwoom's labelling convention is UNCONFIRMED; the start is what
    :class:`~tickguard.models.MinuteBar` stores)."""
    buckets: dict[int, list[GenTrade]] = {}
    for trade in trades:
        buckets.setdefault(int(trade.t) // (60 * scope), []).append(trade)
    bars = []
    for bucket, group in buckets.items():
        start = bucket * 60 * scope
        bars.append(_bar(_ymd(group[0].day) + hhmmss(start), group))
    return bars


def tick_row(bar: Bar) -> dict[str, str]:
    """One ``stk_tic_chart_qry`` row: no cumulative volume, as in Kiwoom's ka10079."""
    return {
        "cur_prc": str(bar.close),
        "trde_qty": str(bar.volume),
        "cntr_tm": bar.stamp,
        "open_pric": str(bar.open),
        "high_pric": str(bar.high),
        "low_pric": str(bar.low),
        "pred_pre": change(bar.close, bar.prev_close),
        "pred_pre_sig": sign_code(bar.close, bar.prev_close),
    }


def minute_row(bar: Bar) -> dict[str, str]:
    """One ``stk_min_pole_chart_qry`` row: sign-prefixed prices, cumulative volume."""
    ref = bar.prev_close
    return {
        "cur_prc": signed(bar.close, ref),
        "trde_qty": str(bar.volume),
        "cntr_tm": bar.stamp,
        "open_pric": signed(bar.open, ref),
        "high_pric": signed(bar.high, ref),
        "low_pric": signed(bar.low, ref),
        "acc_trde_qty": str(bar.cum_volume),
        "pred_pre": change(bar.close, ref),
        "pred_pre_sig": sign_code(bar.close, ref),
    }


def realistic_trade_messages(records: int, seed: int = 7, symbols: int = 20) -> list[str]:
    """REAL ``0B`` messages carrying ``records`` trades of the seeded market from the open.

    Trades of the same instant (a sweep, the opening auction) share one message, up to 20
    entries, as the simulator sends them; the rest travel one per message. The parse bench's
    Kiwoom workload (``tickguard bench parse --broker kiwoom``).
    """
    market = Market(MarketConfig(date(2026, 6, 12), default_universe(symbols), seed=seed))
    messages: list[str] = []
    batch: list[GenTrade] = []
    made = 0
    for event in market.events(start_t=9 * 3600):
        if made == records:
            break
        if not isinstance(event, GenTrade):
            continue
        if batch and (event.t != batch[0].t or len(batch) == 20):
            messages.append(real_message([trade_entry(t) for t in batch]))
            batch = []
        batch.append(event)
        made += 1
    if batch:
        messages.append(real_message([trade_entry(t) for t in batch]))
    return messages
