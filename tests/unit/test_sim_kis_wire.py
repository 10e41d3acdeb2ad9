"""KIS wire encoding of the simulator, checked against the protocol reference (§1.6, §1.7)."""

from __future__ import annotations

import itertools
import json
import random
from datetime import date

from tickguard.sim.kis_wire import (
    BOOK_FIELDS,
    TRADE_FIELDS,
    ack,
    aes_material,
    book_record,
    corrupt,
    data_frame,
    grow,
    malformed,
    pingpong,
    trade_record,
)
from tickguard.sim.market import GenBook, GenTrade, Market, MarketConfig
from tickguard.sim.universe import default_universe

DAY = date(2026, 11, 26)
# KIS's own example record (reference §1.7.1): the shape our records must share.
KIS_TRADE_EXAMPLE = (
    "005930^093354^71900^5^-100^-0.14^72023.83^72100^72400^71700^71900^71800^1^3052507^"
    "219853241700^5105^6937^1832^84.90^1366314^1159996^1^0.39^20.28^090020^5^-200^090820^5^"
    "-500^092619^2^200^20230612^20^N^65945^216924^1118750^2199206^0.05^2424142^125.92^0^^72100"
)


def _events() -> tuple[list[GenTrade], list[GenBook]]:
    m = Market(MarketConfig(day=DAY, symbols=default_universe(4), seed=5))
    evs = list(itertools.islice(m.events(start_t=8 * 3600 + 59 * 60), 20_000))
    trades = [e for e in evs if isinstance(e, GenTrade)]
    books = [e for e in evs if isinstance(e, GenBook)]
    assert len(trades) > 1_000 and len(books) > 1_000
    assert {b.phase for b in books} >= {"pre_open", "continuous"}
    return trades, books


def test_trade_records_have_46_fields_in_kis_order() -> None:
    assert len(KIS_TRADE_EXAMPLE.split("^")) == TRADE_FIELDS == 46
    trades, _ = _events()
    for tr in trades[:2_000]:
        f = trade_record(tr).split("^")
        assert len(f) == 46
        assert f[0] == tr.symbol and f[1] == tr.ts.strftime("%H%M%S")
        assert int(f[2]) == tr.price and int(f[12]) == tr.qty and int(f[13]) == tr.cum_volume
        assert f[21] == {"buy": "1", "sell": "5", None: "3"}[tr.side.value if tr.side else None]
        assert f[33] == "20261126" and f[35] == "N"
        assert int(f[4]) == tr.price - tr.prev_close
        assert f[3] in "12345" and int(f[10]) == tr.ask1 and int(f[11]) == tr.bid1


def test_book_records_have_59_fields_in_kis_order() -> None:
    _, books = _events()
    for bk in books[:2_000]:
        f = book_record(bk).split("^")
        assert len(f) == BOOK_FIELDS == 59
        assert f[0] == bk.symbol and f[1] == bk.ts.strftime("%H%M%S")
        asks = [(int(f[3 + i]), int(f[23 + i])) for i in range(10)]
        bids = [(int(f[13 + i]), int(f[33 + i])) for i in range(10)]
        assert asks == list(bk.book.asks) and bids == list(bk.book.bids)
        assert int(f[43]) == bk.book.total_ask and int(f[44]) == bk.book.total_bid
        assert int(f[53]) == bk.cum_volume
        assert f[2] == {"continuous": "0", "pre_open": "B", "closing_auction": "A"}[bk.phase]


def test_frames_batch_records_with_a_three_digit_count() -> None:
    trades, _ = _events()
    records = [trade_record(t) for t in trades[:4]]
    frame = data_frame("H0STCNT0", records)
    flag, tr_id, count, payload = frame.split("|", 3)
    assert (flag, tr_id, count) == ("0", "H0STCNT0", "004")
    fields = payload.split("^")
    assert len(fields) == 4 * 46 and fields[46] == trades[1].symbol
    grown = grow(records[0])
    assert len(grown.split("^")) == 47 and grown.startswith(records[0])


def test_acks_have_kis_shape() -> None:
    iv, key = aes_material(random.Random(1))
    ok = json.loads(
        ack("H0STCNT0", "005930", "OPSP0000", "SUBSCRIBE SUCCESS", ok=True, iv_key=(iv, key))
    )
    assert ok == {
        "header": {"tr_id": "H0STCNT0", "tr_key": "005930", "encrypt": "N"},
        "body": {
            "rt_cd": "0",
            "msg_cd": "OPSP0000",
            "msg1": "SUBSCRIBE SUCCESS",
            "output": {"iv": iv, "key": key},
        },
    }
    assert len(iv) == 16 and len(key) == 32
    err = json.loads(ack("H0STCNT0", "005930", "OPSP0002", "ALREADY IN SUBSCRIBE", ok=False))
    assert err["body"] == {"rt_cd": "1", "msg_cd": "OPSP0002", "msg1": "ALREADY IN SUBSCRIBE"}
    ping = json.loads(pingpong("20261126090000"))
    assert ping == {"header": {"tr_id": "PINGPONG", "datetime": "20261126090000"}}


def _decodable(frame: str) -> bool:
    """The reference's client rules: split '|' 3 times, fields % count == 0, numeric price."""
    parts = frame.split("|", 3)
    if len(parts) != 4 or not parts[2].isdigit() or int(parts[2]) == 0:
        return False
    fields = parts[3].split("^")
    n = int(parts[2])
    if len(fields) % n or len(fields) // n < 46:
        return False
    return all(fields[i * (len(fields) // n) + 2].isdigit() for i in range(n))


def test_malformed_frames_break_the_reference_parsing_rules() -> None:
    trades, _ = _events()
    record = trade_record(trades[0])
    assert _decodable(data_frame("H0STCNT0", [record]))
    rng = random.Random(3)
    variants = set()
    for _ in range(200):
        frame, variant = malformed(rng, "H0STCNT0", record)
        variants.add(variant)
        assert not _decodable(frame), (variant, frame[:80])
    assert len(variants) == 6
    cut = corrupt(rng, data_frame("H0STCNT0", [record]))
    assert len(cut) < len(data_frame("H0STCNT0", [record]))
