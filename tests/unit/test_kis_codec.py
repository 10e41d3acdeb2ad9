"""KIS data frames: KIS's own examples, multi-record frames, grown records, quarantine."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from tickguard.brokers.kis import wire
from tickguard.brokers.kis.codec import KisSession
from tickguard.models import KST, BookSnapshot, Broker, Side, Trade

DATA = Path(__file__).resolve().parents[1] / "data" / "kis"
RECEIVED = datetime(2023, 6, 12, 0, 34, 0, 123456, tzinfo=UTC)
DAY = date(2023, 6, 12)


def _line(name: str) -> str:
    return (DATA / name).read_text().strip()


def _fields(name: str) -> list[str]:
    return _line(name).split("|", 3)[3].split("^")


def _frame(tr_id: str, records: list[list[str]]) -> str:
    return f"0|{tr_id}|{len(records):03d}|" + "^".join(f for r in records for f in r)


def _trade(fields: list[str], **changes: str) -> list[str]:
    out = list(fields)
    for name, value in changes.items():
        out[wire.H0STCNT0_COLUMNS.index(name)] = value
    return out


@pytest.fixture
def session() -> KisSession:
    return KisSession(SecretStr("approval"), DAY)


def test_kis_example_trade_record(session: KisSession) -> None:
    out = session.receive(_line("h0stcnt0_example.txt"), RECEIVED)
    assert out.quarantined == [] and out.acks == [] and out.controls == []
    assert out.events == [
        Trade(
            broker=Broker.KIS,
            symbol="005930",
            trading_day=date(2023, 6, 12),
            ts=datetime(2023, 6, 12, 9, 33, 54, tzinfo=KST),
            price=71900,
            qty=1,
            side=Side.BUY,
            cum_volume=3052507,
            received_at=RECEIVED,
        )
    ]
    assert out.events[0].ts.utcoffset() is not None
    assert out.events[0].ts.isoformat() == "2023-06-12T09:33:54+09:00"


def test_trade_takes_its_day_from_bsop_date_not_the_session() -> None:
    other_day = KisSession(SecretStr("k"), date(2030, 1, 2))
    (trade,) = other_day.receive(_line("h0stcnt0_example.txt"), RECEIVED).events
    assert isinstance(trade, Trade)
    assert trade.trading_day == date(2023, 6, 12)


def test_kis_example_book_record(session: KisSession) -> None:
    (book,) = session.receive(_line("h0stasp0_example.txt"), RECEIVED).events
    assert isinstance(book, BookSnapshot)
    assert book.symbol == "005930"
    assert book.ts == datetime(2023, 6, 12, 9, 37, 30, tzinfo=KST)
    assert book.trading_day == DAY
    assert book.asks[0] == (71900, 91918) and book.asks[-1] == (72800, 104229)
    assert book.bids[0] == (71800, 95221) and book.bids[-1] == (70900, 158171)
    assert len(book.asks) == len(book.bids) == 10
    assert [p for p, _ in book.asks] == sorted(p for p, _ in book.asks)
    assert [p for p, _ in book.bids] == sorted((p for p, _ in book.bids), reverse=True)
    assert (book.total_ask_qty, book.total_bid_qty) == (1159362, 2095167)


def test_multi_record_frame_keeps_every_record_in_order(session: KisSession) -> None:
    base = _fields("h0stcnt0_example.txt")
    records = [
        _trade(base, STCK_CNTG_HOUR="093355", CNTG_VOL="10", ACML_VOL="3052517", CCLD_DVSN="5"),
        _trade(base, STCK_CNTG_HOUR="093355", CNTG_VOL="5", ACML_VOL="3052522", CCLD_DVSN="1"),
        _trade(base, STCK_CNTG_HOUR="093356", CNTG_VOL="3", ACML_VOL="3052525", CCLD_DVSN="3"),
        _trade(base, MKSC_SHRN_ISCD="000660", STCK_PRPR="120500", ACML_VOL="99"),
    ]
    out = session.receive(_frame("H0STCNT0", records), RECEIVED)
    trades = [e for e in out.events if isinstance(e, Trade)]
    assert [t.cum_volume for t in trades] == [3052517, 3052522, 3052525, 99]
    assert [t.side for t in trades] == [Side.SELL, Side.BUY, None, Side.BUY]
    assert [t.symbol for t in trades] == ["005930"] * 3 + ["000660"]
    assert trades[3].price == 120500
    assert trades[2].ts == datetime(2023, 6, 12, 9, 33, 56, tzinfo=KST)
    assert session.events == 4 and not session.counters


def test_grown_trade_record_with_a_new_trailing_code_decodes(session: KisSession) -> None:
    grown = [*_fields("h0stcnt0_example.txt"), "2"]  # MARKET_CLS_CODE appended: 47 fields
    out = session.receive(_frame("H0STCNT0", [grown, grown]), RECEIVED)
    assert len(out.events) == 2 and out.quarantined == []
    assert all(isinstance(e, Trade) and e.cum_volume == 3052507 for e in out.events)


def test_grown_book_record_62_fields_decodes(session: KisSession) -> None:
    grown = [*_fields("h0stasp0_example.txt"), "71850", "0", "1"]  # MID_PRC, MIDP_*: 62
    assert len(grown) == 62
    out = session.receive(_frame("H0STASP0", [grown, grown, grown]), RECEIVED)
    assert out.quarantined == []
    assert len(out.events) == 3
    assert all(isinstance(e, BookSnapshot) and e.asks[0] == (71900, 91918) for e in out.events)


def test_empty_book_levels_are_left_out(session: KisSession) -> None:
    fields = _fields("h0stasp0_example.txt")
    for n in (9, 10):
        fields[wire.H0STASP0_COLUMNS.index(f"ASKP{n}")] = "0"
        fields[wire.H0STASP0_COLUMNS.index(f"ASKP_RSQN{n}")] = "0"
    (book,) = session.receive(_frame("H0STASP0", [fields]), RECEIVED).events
    assert isinstance(book, BookSnapshot)
    assert len(book.asks) == 8 and len(book.bids) == 10


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("0|H0STCNT0|002|" + "^".join(["1"] * 45), "bad_width"),
        ("0|H0STCNT0|001|" + "^".join(["1"] * 45), "too_narrow"),
        ("0|H0STASP0|001|" + "^".join(["1"] * 58), "too_narrow"),
        ("0|H0XXXXX0|001|a^b", "unknown_tr"),
        ("0|H0STCNT0|000|", "bad_count"),
        ("0|H0STCNT0|abc|x", "bad_count"),
        ("0|H0STCNT0", "bad_frame"),
        ("2|H0STCNT0|001|x", "bad_json"),
        ("", "bad_json"),
    ],
)
def test_malformed_frames_are_quarantined_raw_and_counted(
    session: KisSession, frame: str, reason: str
) -> None:
    out = session.receive(frame, RECEIVED)
    assert out.events == []
    assert [(q.raw, q.reason) for q in out.quarantined] == [(frame, reason)]
    assert session.counters[f"quarantined.{reason}"] == 1


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("STCK_PRPR", "71,900", "bad_number"),
        ("STCK_PRPR", "", "bad_number"),
        ("STCK_PRPR", "0", "bad_price"),
        ("ACML_VOL", "x", "bad_number"),
        ("STCK_CNTG_HOUR", "0933", "bad_time"),
        ("STCK_CNTG_HOUR", "256100", "bad_time"),
        ("BSOP_DATE", "20231340", "bad_date"),
        ("MKSC_SHRN_ISCD", "", "bad_symbol"),
    ],
)
def test_one_bad_record_is_quarantined_and_its_neighbours_kept(
    session: KisSession, column: str, value: str, reason: str
) -> None:
    good = _fields("h0stcnt0_example.txt")
    bad = _trade(good, **{column: value})
    out = session.receive(_frame("H0STCNT0", [good, bad, good]), RECEIVED)
    assert len(out.events) == 2
    (q,) = out.quarantined
    assert q.reason == reason
    assert q.raw == _frame("H0STCNT0", [bad])  # replayable as a one-record frame
    assert session.counters[f"quarantined.{reason}"] == 1


def test_non_numeric_book_level_is_quarantined(session: KisSession) -> None:
    fields = _fields("h0stasp0_example.txt")
    fields[wire.H0STASP0_COLUMNS.index("BIDP3")] = "N/A"
    out = session.receive(_frame("H0STASP0", [fields]), RECEIVED)
    assert out.events == [] and [q.reason for q in out.quarantined] == ["bad_number"]


def test_bytes_frames_decode_and_invalid_utf8_is_quarantined(session: KisSession) -> None:
    assert len(session.receive(_line("h0stcnt0_example.txt").encode(), RECEIVED).events) == 1
    out = session.receive(b"0|H0STCNT0|001|\xff\xfe", RECEIVED)
    assert [q.reason for q in out.quarantined] == ["not_utf8"]
    assert out.quarantined[0].raw.startswith("0|H0STCNT0|001|")
    assert session.frames == 2
