"""Issue 6, the feed side: the simulators put a halt on the wire the way each broker flags it
and the codecs surface it as HaltSignals (KIS TRHT_YN / HOUR_CLS_CODE, Kiwoom REAL 1h); a
``withhold`` fault keeps a symbol's trades for a span of session time off the wire and the
ground truth records it; halt signals survive the stream encoding."""

from __future__ import annotations

import functools
import json
from datetime import UTC, date, datetime, time
from pathlib import Path

import pytest
from pydantic import SecretStr

from tickguard.brokers.kis.codec import KisSession
from tickguard.brokers.kiwoom.codec import KiwoomSession
from tickguard.models import KST, Batch, Broker, HaltSignal
from tickguard.sim.clock import SimClock
from tickguard.sim.faults import FaultSchedule, FaultSpecError, Flap, Withhold, parse_fault
from tickguard.sim.feed import Feed
from tickguard.sim.kis_feed import KisWire
from tickguard.sim.kiwoom_feed import KiwoomWire, real_frame
from tickguard.sim.market import GenBook, GenEvent, GenTrade, HaltWindow, Market, MarketConfig
from tickguard.sim.sessions import SessionTable, SimCounters
from tickguard.sim.truth import TruthReader, TruthWriter
from tickguard.sim.universe import profiles_for
from tickguard.sinks.encoding import decode_batch, encode_batch

DAY = date(2026, 11, 26)
SYMBOL = "005930"
RECEIVED = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)


def _kst(hh: int, mm: int, ss: int = 0) -> datetime:
    return datetime(DAY.year, DAY.month, DAY.day, hh, mm, ss, tzinfo=KST)


@pytest.mark.parametrize(
    ("spec", "fault"),
    [
        ("flap:30x1", Flap(30.0, 30.0, 1)),
        ("flap:3-5x2", Flap(3.0, 5.0, 2)),
        ("withhold:005930@09:05-09:08", Withhold(("005930",), time(9, 5), time(9, 8))),
        (
            "withhold:005930+000660@09:05:00-09:05:40",
            Withhold(("005930", "000660"), time(9, 5), time(9, 5, 40)),
        ),
    ],
)
def test_drop_once_and_withhold_parse(spec: str, fault: object) -> None:
    assert parse_fault(spec) == fault


@pytest.mark.parametrize(
    "spec",
    ["withhold:005930@09:08-09:05", "withhold:005930@09:05", "withhold:@09:05-09:06",
     "withhold:005930@09:05:61-09:06", "flap:3x0"],
)  # fmt: skip
def test_bad_withhold_or_flap_is_refused_with_the_grammar(spec: str) -> None:
    with pytest.raises(FaultSpecError, match=r"flap|withhold|time of day"):
        parse_fault(spec)


def _market(halts: tuple[HaltWindow, ...] = ()) -> Market:
    return Market(MarketConfig(DAY, profiles_for([SYMBOL, "000660"]), seed=3, halts=halts))


def _market_events(start_t: float, halts: tuple[HaltWindow, ...] = ()) -> list[GenEvent]:
    events = []
    for ev in _market(halts).events(start_t):
        if ev.t > start_t + 900:
            break
        events.append(ev)
    return events


def test_withheld_trades_are_generated_never_queued_and_recorded(tmp_path: Path) -> None:
    spec = Withhold((SYMBOL,), time(10, 0), time(10, 0, 40))
    faults = FaultSchedule((spec,))
    truth = TruthWriter(tmp_path, {"day": DAY.isoformat(), "seed": 3})
    clock = SimClock(10 * 3600 - 60, speed=1.0)
    feed = Feed(wire=KisWire(), sessions=SessionTable(0.0), truth=truth, clock=clock,
                counters=SimCounters(), faults=faults, max_records=50, interval_s=0.01,
                max_pending=100)  # fmt: skip
    events = _market_events(10 * 3600 - 60)
    for ev in events:
        feed._dispatch(ev)
    feed.close()
    truth.close({})
    held = [
        e for e in events
        if isinstance(e, GenTrade) and e.symbol == SYMBOL and 36_000 <= e.t < 36_040
    ]  # fmt: skip
    assert held, "the market trades in the span"
    reader = TruthReader(tmp_path)
    generated = {(t.symbol, t.cum_volume) for t in reader.generated_trades()}
    assert {(e.symbol, e.cum_volume) for e in held} <= generated  # generated, in the truth
    (fault,) = [f for f in reader.faults() if f["kind"] == "withhold"]
    assert fault["detail"]["symbols"] == [SYMBOL]
    assert fault["detail"]["trades"] == len(held)
    assert (fault["detail"]["sim_start"], fault["detail"]["sim_end"]) == (36_000, 36_040)
    assert fault["end"] - fault["start"] == pytest.approx(40.0)


@functools.cache
def _halted_tape() -> list[GenEvent]:
    """One symbol's events around a 10:00–10:03 halt."""
    halts = (HaltWindow(SYMBOL, time(10, 0), time(10, 3)),)
    return [e for e in _market_events(10 * 3600 - 120, halts) if e.symbol == SYMBOL][:4000]


def test_a_halted_symbol_keeps_its_books_flagged_and_stops_trading() -> None:
    tape = _halted_tape()
    inside = [e for e in tape if 36_000 <= e.t < 36_180]
    assert inside and all(isinstance(e, GenBook) and e.phase == "halt" for e in inside)
    assert any(isinstance(e, GenTrade) and e.t >= 36_180 for e in tape)


def _signals(frames: list[str], session: KisSession | KiwoomSession) -> list[HaltSignal]:
    out: list[HaltSignal] = []
    for frame in frames:
        decoded = session.receive(frame, RECEIVED)
        assert not decoded.quarantined, decoded.quarantined
        out.extend(decoded.halts)
    return out


def test_kis_codec_reports_the_halt_from_the_simulators_hour_cls_code() -> None:
    wire = KisWire()
    frames = [
        wire.frame(((wire.trade_channel if isinstance(e, GenTrade) else wire.book_channel),),
                   [wire.encode(e)])
        for e in _halted_tape()
    ]  # fmt: skip
    signals = _signals(frames, KisSession(SecretStr("approval"), DAY))
    assert [(s.halted, s.reason) for s in signals] == [
        (False, "trading"),  # first sight on this connection
        (True, "HOUR_CLS_CODE=C (VI)"),
        (False, "trading"),
    ]
    assert signals[1].at == _kst(10, 0, int(_first_halt_book().t) - 36_000)
    assert _kst(10, 3) <= signals[2].at < _kst(10, 5)
    assert {s.broker for s in signals} == {Broker.KIS} and {s.symbol for s in signals} == {SYMBOL}


def _first_halt_book() -> GenBook:
    return next(e for e in _halted_tape() if isinstance(e, GenBook) and e.phase == "halt")


def test_kis_codec_reads_trht_yn_on_trades() -> None:
    wire = KisWire()
    trade = next(e for e in _halted_tape() if isinstance(e, GenTrade))
    fields = wire.encode(trade).split("^")
    assert fields[35] == "N"
    fields[35] = "Y"
    session = KisSession(SecretStr("approval"), DAY)
    halted = _signals([wire.frame((wire.trade_channel,), ["^".join(fields)])], session)
    assert [(s.halted, s.reason) for s in halted] == [(True, "TRHT_YN=Y (거래정지)")]
    again = _signals([wire.frame((wire.trade_channel,), ["^".join(fields)])], session)
    assert again == []  # a flag that did not change says nothing


def test_kiwoom_codec_reports_the_vi_entries_and_a_trade_ends_it() -> None:
    wire = KiwoomWire()
    frames = [real_frame([wire.encode(e)]) for e in _halted_tape()]
    first_halt = _halted_tape().index(_first_halt_book())
    entries = json.loads(frames[first_halt])["data"]
    assert [e["type"] for e in entries] == ["0D", "1h"]
    signals = _signals(frames, KiwoomSession("tok", DAY))
    assert [(s.halted, s.reason) for s in signals] == [
        (False, "trading"),
        (True, "1h VI발동"),
        (False, "trading"),
    ]
    assert signals[1].at == _kst(10, 0, int(_first_halt_book().t) - 36_000)
    release = {"type": "1h", "item": SYMBOL, "values": {"1223": "100000", "1224": "100300"}}
    session = KiwoomSession("tok", DAY)
    _signals([real_frame([json.dumps(entries[1])])], session)
    (ended,) = _signals([real_frame([json.dumps(release)])], session)
    assert (ended.halted, ended.at, ended.reason) == (False, _kst(10, 3), "1h VI해제")


def test_halt_signals_travel_in_a_stream_entry_and_old_entries_still_decode() -> None:
    sig = HaltSignal(Broker.KIS, SYMBOL, _kst(10, 0, 5), True, "HOUR_CLS_CODE=C (VI)")
    back = decode_batch(encode_batch(Batch(halts=[sig])))
    assert back.halts == [HaltSignal(Broker.KIS, SYMBOL, sig.at, True, sig.reason)]
    assert back.halts[0].at == sig.at
    assert decode_batch(encode_batch(Batch())).halts == []  # the five-part layout
    assert len(Batch(halts=[sig])) == 1
