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
    """One H0STCNT0 record, 46 fields in KIS's order (§1.7.1)."""
    prev, price = tr.prev_close, tr.price
    diff = price - prev
    buy_sell = tr.buy_volume + tr.sell_volume
    fields = (
        tr.symbol,
        hhmmss(tr.t),
        str(price),
        _sign(price, prev, prev),
        str(diff),
        _pct(diff, prev),
        f"{tr.cum_value / tr.cum_volume:.2f}",
        str(tr.open),
        str(tr.high),
        str(tr.low),
        str(tr.ask1),
        str(tr.bid1),
        str(tr.qty),
        str(tr.cum_volume),
        str(tr.cum_value),
        str(tr.sells),
        str(tr.buys),
        str(tr.buys - tr.sells),
        _pct(tr.buy_volume, tr.sell_volume),
        str(tr.sell_volume),
        str(tr.buy_volume),
        _ccld(tr.side),
        _pct(tr.buy_volume, buy_sell),
        "0.00",
        hhmmss(tr.open_t),
        _sign(price, tr.open),
        str(price - tr.open),
        hhmmss(tr.high_t),
        _sign(price, tr.high),
        str(price - tr.high),
        hhmmss(tr.low_t),
        _sign(price, tr.low),
        str(price - tr.low),
        tr.day.strftime("%Y%m%d"),
        "20",
        "N",
        str(tr.ask1_qty),
        str(tr.bid1_qty),
        str(tr.total_ask),
        str(tr.total_bid),
        "0.00",
        "0",
        "0.00",
        "0",
        "",
        str(prev),
    )
    return "^".join(fields)


_HOUR_CLS = {"continuous": "0", "pre_open": "B", "closing_auction": "A"}


def book_record(bk: GenBook) -> str:
    """One H0STASP0 record, 59 fields in KIS's order (§1.7.2)."""
    book = bk.book
    pad = 10 - len(book.bids)
    ask_p = [str(p) for p, _ in book.asks]
    bid_p = [str(p) for p, _ in book.bids] + ["0"] * pad
    ask_q = [str(q) for _, q in book.asks]
    bid_q = [str(q) for _, q in book.bids] + ["0"] * pad
    exp = bk.expected_price
    exp_diff = exp - bk.prev_close if exp else 0
    tail = (
        str(book.total_ask),
        str(book.total_bid),
        "0",
        "0",
        str(exp),
        str(bk.expected_qty),
        str(bk.expected_qty if exp else 0),
        str(exp_diff),
        _sign(exp, bk.prev_close) if exp else "3",
        _pct(exp_diff, bk.prev_close) if exp else "0.00",
        str(bk.cum_volume),
        "0",
        "0",
        "0",
        "0",
        "0",
    )
    head = (bk.symbol, hhmmss(bk.t), _HOUR_CLS.get(bk.phase, "0"))
    return "^".join((*head, *ask_p, *bid_p, *ask_q, *bid_q, *tail))


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
