"""KIS wire encoding for the simulator, written from the protocol reference (§1.6, §1.7).

Deliberately independent of tickguard's own KIS codec (``tickguard.brokers.kis``): the two
are written separately from the same reference, so testing the codec against the simulator
means something. Pure functions, no I/O. Records are built with ``str.join`` (one per event,
shared by every session that receives it); control messages are rare and use ``json``.
"""

from __future__ import annotations

import json
import random
import string

from tickguard.models import Side
from tickguard.sim.market import GenBook, GenTrade, hhmmss

TR_TRADE = "H0STCNT0"
TR_BOOK = "H0STASP0"
TRADE_FIELDS = 46
BOOK_FIELDS = 59
DATA_TRS = (TR_TRADE, TR_BOOK)


def _sign(price: int, ref: int, prev_close: int = 0) -> str:
    """PRDY_VRSS_SIGN-style code: 1 upper limit, 2 up, 3 flat, 4 lower limit, 5 down."""
    if prev_close:
        if price >= int(prev_close * 1.3):
            return "1"
        if price <= int(prev_close * 0.7):
            return "4"
    return "2" if price > ref else "3" if price == ref else "5"


def _pct(num: float, den: float) -> str:
    return f"{num / den * 100:.2f}" if den else "0.00"


def _ccld(side: Side | None) -> str:
    """CCLD_DVSN: 1 buy (+), 5 sell (-), 3 for auction prints (장전)."""
    return "1" if side is Side.BUY else "5" if side is Side.SELL else "3"


def trade_record(tr: GenTrade) -> str:
    """One H0STCNT0 record, 46 fields in KIS's order (§1.7.1); one f-string for speed."""
    prev, price = tr.prev_close, tr.price
    diff = price - prev
    vwap = tr.cum_value / tr.cum_volume
    cttr = _pct(tr.buy_volume, tr.sell_volume)
    shnu = _pct(tr.buy_volume, tr.buy_volume + tr.sell_volume)
    o, h, lo = tr.open, tr.high, tr.low
    return (
        f"{tr.symbol}^{hhmmss(tr.t)}^{price}^{_sign(price, prev, prev)}^{diff}^"
        f"{_pct(diff, prev)}^{vwap:.2f}^{o}^{h}^{lo}^{tr.ask1}^{tr.bid1}^"
        f"{tr.qty}^{tr.cum_volume}^{tr.cum_value}^{tr.sells}^{tr.buys}^{tr.buys - tr.sells}^"
        f"{cttr}^{tr.sell_volume}^{tr.buy_volume}^{_ccld(tr.side)}^{shnu}^0.00^"
        f"{hhmmss(tr.open_t)}^{_sign(price, o)}^{price - o}^"
        f"{hhmmss(tr.high_t)}^{_sign(price, h)}^{price - h}^"
        f"{hhmmss(tr.low_t)}^{_sign(price, lo)}^{price - lo}^"
        f"{tr.day:%Y%m%d}^20^N^{tr.ask1_qty}^{tr.bid1_qty}^{tr.total_ask}^{tr.total_bid}^"
        f"0.00^0^0.00^0^^{prev}"
    )


_HOUR_CLS = {"continuous": "0", "pre_open": "B", "closing_auction": "A", "halt": "C"}
"""HOUR_CLS_CODE (§1.7.2): a halted symbol's book goes out as C (9시이후 예상가·VI발동)."""


_LADDERS: dict[tuple[tuple[int, ...], tuple[int, ...]], str] = {}
_LADDER_CACHE_MAX = 50_000


def _ladder_text(asks: tuple[int, ...], bids: tuple[int, ...]) -> str:
    """ASKP1..10 then BIDP1..10 as text, cached: ladders repeat all day (bounded cache)."""
    key = (asks, bids)
    text = _LADDERS.get(key)
    if text is None:
        if len(_LADDERS) >= _LADDER_CACHE_MAX:
            _LADDERS.clear()
        padded = bids + (0,) * (10 - len(bids))
        text = _LADDERS[key] = "^".join(map(str, asks + padded))
    return text


def book_record(bk: GenBook) -> str:
    """One H0STASP0 record, 59 fields in KIS's order (§1.7.2)."""
    book = bk.book
    pad = (0,) * (10 - len(book.bid_qtys))
    qtys = "^".join(map(str, book.ask_qtys + book.bid_qtys + pad))
    exp = bk.expected_price
    if exp:
        diff = exp - bk.prev_close
        sign, rate = _sign(exp, bk.prev_close), _pct(diff, bk.prev_close)
        antc = f"{exp}^{bk.expected_qty}^{bk.expected_qty}^{diff}^{sign}^{rate}"
    else:
        antc = f"0^{bk.expected_qty}^0^0^3^0.00"
    return (
        f"{bk.symbol}^{hhmmss(bk.t)}^{_HOUR_CLS.get(bk.phase, '0')}^"
        f"{_ladder_text(book.ask_prices, book.bid_prices)}^{qtys}^"
        f"{book.total_ask}^{book.total_bid}^0^0^{antc}^{bk.cum_volume}^0^0^0^0^0"
    )


def data_frame(tr_id: str, records: list[str]) -> str:
    """``0|tr_id|NNN|rec^rec…``: several records simply concatenated with '^' (§1.7)."""
    return f"0|{tr_id}|{len(records):03d}|" + "^".join(records)


def grow(record: str, extra: str = "2") -> str:
    """The same record with one more trailing field (like KIS's announced MARKET_CLS_CODE)."""
    return f"{record}^{extra}"


_KEY_CHARS = string.ascii_letters + string.digits


def aes_material(rng: random.Random) -> tuple[str, str]:
    """(iv, key): 16 and 32 ASCII characters, as KIS sends with every SUBSCRIBE SUCCESS."""
    iv = "".join(rng.choices(_KEY_CHARS, k=16))
    key = "".join(rng.choices(_KEY_CHARS, k=32))
    return iv, key


def ack(
    tr_id: str,
    tr_key: str,
    msg_cd: str,
    msg1: str,
    *,
    ok: bool,
    iv_key: tuple[str, str] | None = None,
) -> str:
    """A subscribe/unsubscribe answer in KIS's shape (§1.6); errors use rt_cd "1"."""
    body: dict[str, object] = {"rt_cd": "0" if ok else "1", "msg_cd": msg_cd, "msg1": msg1}
    if iv_key is not None:
        body["output"] = {"iv": iv_key[0], "key": iv_key[1]}
    return json.dumps({"header": {"tr_id": tr_id, "tr_key": tr_key, "encrypt": "N"}, "body": body})


def pingpong(datetime_text: str) -> str:
    """The server keep-alive: a header and no body (§1.6)."""
    return json.dumps({"header": {"tr_id": "PINGPONG", "datetime": datetime_text}})


def malformed(rng: random.Random, tr_id: str, record: str) -> tuple[str, str]:
    """A frame a client must quarantine and survive: (frame, variant name)."""
    fields = record.split("^")
    variant = rng.choice(("count", "truncated", "nonnumeric", "header", "json", "bytes"))
    if variant == "count":
        frame = f"0|{tr_id}|003|{record}"
    elif variant == "truncated":
        frame = f"0|{tr_id}|001|" + "^".join(fields[: len(fields) // 2])
    elif variant == "nonnumeric":
        frame = f"0|{tr_id}|001|" + "^".join([fields[0], fields[1], "7l9OO", *fields[3:]])
    elif variant == "header":
        frame = f"0|{tr_id}|{record}"
    elif variant == "json":
        frame = '{"header": {"tr_id": "' + tr_id + '", "tr_key"'
    else:
        frame = "0|" + "".join(rng.choices("\x00\x01\xff^|", k=24))
    return frame, variant


def corrupt(rng: random.Random, frame: str) -> str:
    """A real data frame cut short at a random point of its payload."""
    cut = rng.randrange(len(frame) // 2, len(frame) - 1)
    return frame[:cut]
