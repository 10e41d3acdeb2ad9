"""Kiwoom codec against Kiwoom's own example messages (tests/data/kiwoom) and edge cases."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tickguard.brokers.base import Channel, ControlKind, Subscription
from tickguard.brokers.kiwoom.codec import KiwoomSession
from tickguard.models import KST, Broker, Side, Trade

DATA = Path(__file__).parents[1] / "data" / "kiwoom"
DAY = date(2026, 3, 19)
NOW = datetime(2026, 3, 19, 7, 52, 9, tzinfo=UTC)


def fixture(name: str) -> str:
    return (DATA / name).read_text(encoding="utf-8")


def session() -> KiwoomSession:
    return KiwoomSession("tok-123", DAY)


def test_real_0b_official_example_decodes_to_one_trade() -> None:
    out = session().receive(fixture("real_0b_example.json"), NOW)
    assert not out.quarantined and not out.controls and not out.replies
    (trade,) = out.events
    assert trade.broker is Broker.KIWOOM
    assert trade.symbol == "005930"
    assert trade.trading_day == DAY
    assert trade.ts == datetime(2026, 3, 19, 16, 52, 8, tzinfo=KST)
    assert trade.price == 20800  # "-20800": sign is relative to the previous close
    assert trade.qty == 82 and trade.side is Side.BUY  # "+82": buyer-initiated
    assert trade.cum_volume == 30379732
    assert trade.received_at == NOW


def test_bytes_frame_decodes_like_text() -> None:
    out = session().receive(fixture("real_0b_example.json").encode(), NOW)
    assert len(out.events) == 1 and out.events[0].price == 20800


def test_sell_side_and_unsigned_volume() -> None:
    entry = {"type": "0B", "item": "114800", "values": {"20": "090000", "13": "10"}}
    frames = [
        {"trnm": "REAL", "data": [{**entry, "values": {**entry["values"], "10": "+4000", "15": v}}]}
        for v in ("-7", "7")
    ]
    sold, unsigned = (session().receive(json.dumps(f), NOW).events[0] for f in frames)
    assert (sold.qty, sold.side, sold.price) == (7, Side.SELL, 4000)
    assert (unsigned.qty, unsigned.side) == (7, None)


def test_multi_entry_real_with_10_level_books_and_unknown_type() -> None:
    s = session()
    out = s.receive(fixture("real_0d_multi.json"), NOW)
    assert not out.quarantined
    book_a, book_b, trade = out.events
    assert book_a.symbol == "005930" and book_b.symbol == "122630"
    assert book_a.ts == datetime(2026, 3, 19, 9, 0, 1, tzinfo=KST)
    assert len(book_a.asks) == 10 and len(book_a.bids) == 10
    assert book_a.asks[0] == (70100, 1001) and book_a.asks[9] == (71000, 1010)
    assert book_a.bids[0] == (70000, 2001) and book_a.bids[9] == (69100, 2010)
    assert book_a.total_ask_qty == sum(range(1001, 1011))
    assert book_a.total_bid_qty == sum(range(2001, 2011))
    assert (trade.symbol, trade.price, trade.qty, trade.side) == ("122630", 15010, 37, Side.SELL)
    assert s.ignored_types == {"0s": 1}


def test_one_bad_entry_is_quarantined_alone() -> None:
    good = json.loads(fixture("real_0b_example.json"))["data"][0]
    bad_time = {**good, "values": {**good["values"], "20": "256100"}}
    odd_digits = {**good, "values": {**good["values"], "20": "16²208"}}
    bad_price = {**good, "values": {**good["values"], "10": "abc"}}
    no_item = {k: v for k, v in good.items() if k != "item"}
    frame = json.dumps(
        {"trnm": "REAL", "data": [good, bad_time, bad_price, no_item, 7, odd_digits]}
    )
    out = session().receive(frame, NOW)
    assert len(out.events) == 1
    reasons = [q.reason for q in out.quarantined]
    assert reasons == ["bad_time", "bad_field", "bad_symbol", "bad_entry", "bad_time"]
    assert json.loads(out.quarantined[0].raw)["values"]["20"] == "256100"


def test_empty_book_levels_are_dropped_and_zero_price_quarantined() -> None:
    book = json.loads(fixture("real_0d_multi.json"))["data"][0]
    values = {**book["values"], "51": "", "71": "", "60": "0", "80": "0"}  # bid 1 and 10 empty
    zero = {
        "type": "0B",
        "item": "005930",
        "values": {"20": "090000", "10": "0", "15": "+1", "13": "5"},
    }
    frame = json.dumps({"trnm": "REAL", "data": [{**book, "values": values}, zero]})
    out = session().receive(frame, NOW)
    (snap,) = out.events
    assert [p for p, _ in snap.bids] == [69900 - 100 * n for n in range(8)]
    assert len(snap.asks) == 10
    assert [q.reason for q in out.quarantined] == ["bad_price"]


def test_login_acks() -> None:
    s = session()
    failed = s.receive(fixture("login_failed.json"), NOW).controls
    assert [(c.kind, c.code) for c in failed] == [(ControlKind.LOGIN_FAILED, "805004")]
    assert "8005" in failed[0].message and not s.logged_in
    ok = s.receive(fixture("login_ok.json"), NOW).controls
    assert [(c.kind, c.code) for c in ok] == [(ControlKind.LOGIN_OK, "0")] and s.logged_in


def test_system_messages_are_typed() -> None:
    expected = {
        "system_r10001.json": ControlKind.SESSION_CONFLICT,
        "system_r10002.json": ControlKind.SERVER_CLOSING,
        "system_r10004.json": ControlKind.SERVER_CLOSING,
    }
    for name, kind in expected.items():
        out = session().receive(fixture(name), NOW)
        (control,) = out.controls
        assert control.kind is kind and control.code == name[7:13].upper()
        assert control.message and not out.replies  # SYSTEM is never echoed
    other = session().receive('{"trnm":"SYSTEM","code":"R19999","message":"x"}', NOW)
    assert other.controls[0].kind is ControlKind.INFO


def test_reg_and_remove_acks_name_no_subscription() -> None:
    (ack,) = session().receive(fixture("reg_ack.json"), NOW).acks
    assert ack.subscription is None and ack.ok and ack.code == "0" and not ack.unsubscribe
    (err,) = session().receive('{"trnm":"REMOVE","return_code":1,"return_msg":"x"}', NOW).acks
    assert not err.ok and err.code == "1" and err.unsubscribe


def test_ping_is_echoed_unchanged() -> None:
    raw = fixture("ping.json")
    out = session().receive(raw, NOW)
    assert out.replies == [raw]
    assert [c.kind for c in out.controls] == [ControlKind.HEARTBEAT]
    assert session().receive("PING", NOW).replies == ["PING"]


def test_handshake_and_registration_frames() -> None:
    s = session()
    assert [json.loads(f) for f in s.handshake()] == [{"trnm": "LOGIN", "token": "tok-123"}]
    assert "tok-123" not in repr(s)
    subs = [Subscription("005930", Channel.TRADES)]
    assert [json.loads(f) for f in s.subscribe(subs)] == [json.loads(fixture("reg_request.json"))]
    many = [Subscription(f"{n:06d}", ch) for n in range(150) for ch in Channel]
    (reg,) = [json.loads(f) for f in s.subscribe(many)]
    assert [(d["type"], len(d["item"])) for d in reg["data"]] == [
        (["0B"], 100),
        (["0B"], 50),
        (["0D"], 100),
        (["0D"], 50),
    ]
    assert s.subscribe([]) == []
    (remove,) = [json.loads(f) for f in s.unsubscribe([Subscription("005930", Channel.BOOK)])]
    assert remove == {
        "trnm": "REMOVE",
        "grp_no": "1",
        "data": [{"item": ["005930"], "type": ["0D"]}],
    }


def test_malformed_messages_are_quarantined() -> None:
    cases = {
        "{not json": "bad_json",
        "[1,2]": "not_an_object",
        '{"trnm":"CNSRLST"}': "unknown_message",
        '{"trnm":"REAL","data":{}}': "bad_real",
        '{"trnm":"LOGIN"}': "bad_ack",
        b"\xff\xfe": "bad_encoding",
    }
    for raw, reason in cases.items():
        out = session().receive(raw, NOW)
        assert [q.reason for q in out.quarantined] == [reason], raw
        assert not out.events


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4)
    ),
    max_leaves=20,
)
fid_values = st.dictionaries(
    st.sampled_from(["10", "13", "15", "20", "21", "41", "51", "61", "71", "121", "125", "x"]),
    st.one_of(
        st.text(max_size=8),
        st.integers().map(str),
        st.none(),
        st.sampled_from(["16²208", "١٢٣٤٥٦", "+1_000", " 12 ", "-0", "", "999999"]),
    ),
)
entries = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["0B", "0D", "0s", 5]),
        "item": st.text(max_size=7),
        "values": fid_values,
    }
)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=50),
        st.binary(max_size=50),
        json_values.map(json.dumps),
        st.fixed_dictionaries({"trnm": st.just("REAL"), "data": st.lists(entries, max_size=4)}).map(
            json.dumps
        ),
        st.fixed_dictionaries(
            {"trnm": st.sampled_from(["LOGIN", "REG", "REMOVE", "SYSTEM", "PING"])},
            optional={"return_code": json_values, "code": json_values, "return_msg": json_values},
        ).map(json.dumps),
    )
)
def test_receive_never_raises(raw: str | bytes) -> None:
    out = session().receive(raw, NOW)
    assert all(q.reason and q.reason != "internal_error" for q in out.quarantined), out.quarantined
    assert all(e.price >= 0 for e in out.events if isinstance(e, Trade))


def test_bench_feed_is_multi_entry_and_decodes_without_gaps() -> None:
    from tickguard.sim.kiwoom_frames import realistic_trade_messages

    messages = realistic_trade_messages(3_000, seed=3)
    assert messages == realistic_trade_messages(3_000, seed=3)  # seeded
    s = KiwoomSession("", date(2026, 6, 12))
    decoded = [s.receive(m, NOW) for m in messages]
    assert not any(d.quarantined for d in decoded)
    assert max(len(d.events) for d in decoded) > 1  # sweeps share a message
    trades = [e for d in decoded for e in d.events]
    assert len(trades) == 3_000
    last: dict[str, int] = {}
    for trade in trades:
        assert isinstance(trade, Trade)
        assert trade.cum_volume == last.get(trade.symbol, 0) + trade.qty
        last[trade.symbol] = trade.cum_volume
