"""The broker-neutral simulator core: one market, two wires, the same trades.

The dual feed rests on this: KIS and Kiwoom simulators built on one market (same day, seed,
symbols) and one clock generate the same tape, and each broker's wire carries it through that
broker's own codec unchanged. Checked without sockets (wire → codec) and live (simulators →
real collectors on loopback).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from datetime import time as dtime
from pathlib import Path

from pydantic import SecretStr

from tickguard.brokers.kis.codec import KisSession
from tickguard.brokers.kiwoom.codec import KiwoomSession
from tickguard.collector import run_collector
from tickguard.drill.dual_judge import tapes_identical
from tickguard.models import KST, Batch, Broker, Trade
from tickguard.settings import AppCredential, KisSettings, KiwoomSettings, Settings
from tickguard.sim.clock import SimClock
from tickguard.sim.feed import Wire
from tickguard.sim.kis import KisSimConfig, KisSimulator
from tickguard.sim.kis_feed import KisWire
from tickguard.sim.kiwoom import KiwoomSimConfig, KiwoomSimulator
from tickguard.sim.kiwoom_feed import KiwoomWire
from tickguard.sim.market import GenEvent, GenTrade, Market, MarketConfig, seconds_of
from tickguard.sim.truth import TruthReader
from tickguard.sim.universe import default_symbols, profiles_for

DAY = date(2026, 6, 12)
NOW = datetime(2026, 6, 12, 0, 5, tzinfo=UTC)
SYMBOLS = default_symbols(4)
TradeView = tuple[str, int, int, int, object, datetime]


def _events(count: int) -> list[GenEvent]:
    market = Market(MarketConfig(day=DAY, symbols=profiles_for(SYMBOLS), seed=11))
    return list(itertools.islice(market.events(start_t=9 * 3600 - 30), count))


def _frames(wire: Wire, events: list[GenEvent], per_frame: int) -> list[str]:
    """Frames as the feed builds them: records grouped as the wire says, capped per frame."""
    groups: dict[object, list[str]] = {}
    for ev in events:
        channel = wire.trade_channel if isinstance(ev, GenTrade) else wire.book_channel
        groups.setdefault(wire.group(channel, ev.symbol), []).append(wire.encode(ev))
    return [
        wire.frame(group, records[i : i + per_frame])
        for group, records in groups.items()
        for i in range(0, len(records), per_frame)
    ]


def _view(t: Trade) -> TradeView:
    return (t.symbol, t.cum_volume, t.price, t.qty, t.side, t.ts)


def _decode(receive: Callable[[str, datetime], object], frames: list[str]) -> list[TradeView]:
    out: list[TradeView] = []
    for frame in frames:
        result = receive(frame, NOW)
        assert not result.quarantined, result.quarantined  # type: ignore[attr-defined]
        out += [_view(e) for e in result.events if isinstance(e, Trade)]  # type: ignore[attr-defined]
    return sorted(out, key=lambda v: (v[0], v[1]))


def test_both_wires_carry_the_same_trades_through_their_own_codecs() -> None:
    events = _events(4_000)
    expected = sorted(
        ((e.symbol, e.cum_volume, e.price, e.qty, e.side, e.ts) for e in events
         if isinstance(e, GenTrade)),
        key=lambda v: (v[0], v[1]),
    )  # fmt: skip
    kis = _decode(KisSession(SecretStr("k"), DAY).receive, _frames(KisWire(), events, 30))
    kiwoom = _decode(KiwoomSession("", DAY).receive, _frames(KiwoomWire(), events, 30))
    assert len(expected) > 500
    assert kis == expected
    assert kiwoom == expected


def test_grown_records_still_decode_and_malformed_frames_carry_nothing() -> None:
    trades = [e for e in _events(4_000) if isinstance(e, GenTrade)]
    events = [e for e in trades if e.symbol == trades[0].symbol][:20]
    rng = random.Random(3)
    for wire, session in (
        (KisWire(), KisSession(SecretStr("k"), DAY)),
        (KiwoomWire(), KiwoomSession("", DAY)),
    ):
        records = [wire.grow(wire.encode(e)) for e in events]
        group = wire.group(wire.trade_channel, events[0].symbol)
        grown = session.receive(wire.frame(group, records[:1]), NOW)
        (first,) = [t for t in grown.events if isinstance(t, Trade)]
        assert first.cum_volume == events[0].cum_volume
        for _ in range(20):
            bad, variant = wire.malformed(rng, wire.trade_channel, records[0])
            out = session.receive(bad, NOW)
            assert not [e for e in out.events if isinstance(e, Trade)], variant
        cut = session.receive(wire.corrupt(rng, wire.frame(group, records[:5])), NOW)
        assert len([e for e in cut.events if isinstance(e, Trade)]) < 5


class ListSink:
    def __init__(self) -> None:
        self.trades: dict[tuple[str, int], TradeView] = {}

    async def put(self, batch: Batch) -> None:
        for t in batch.trades:
            self.trades[(t.symbol, t.cum_volume)] = _view(t)


async def _until(check: Callable[[], bool], limit: float, what: str) -> None:
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


async def test_two_simulators_on_one_clock_send_the_same_trades(tmp_path: Path) -> None:
    market = MarketConfig(day=datetime.now(KST).date(), symbols=profiles_for(SYMBOLS), seed=7)
    clock = SimClock(seconds_of(dtime(9, 0)), 10.0)

    def apps(name: str) -> list[AppCredential]:
        return [AppCredential(name=name, app_key=SecretStr(name), app_secret=SecretStr("s"))]

    kis_cfg = KisSimConfig(market=market, clock=clock, truth_dir=tmp_path / "kis", slot_hold_s=0)
    kw_cfg = KiwoomSimConfig(market=market, clock=clock, truth_dir=tmp_path / "kiwoom")
    async with KisSimulator(kis_cfg) as kis, KiwoomSimulator(kw_cfg) as kiwoom:
        settings = Settings(
            kis=KisSettings(rest_url=kis.rest_url, ws_url=kis.ws_url, apps=apps("k")),
            kiwoom=KiwoomSettings(rest_url=kiwoom.rest_url, ws_url=kiwoom.ws_url, apps=apps("w")),
        )
        sinks, stop = {Broker.KIS: ListSink(), Broker.KIWOOM: ListSink()}, asyncio.Event()
        tasks = [
            asyncio.create_task(run_collector(settings, b, SYMBOLS, sink=s, stop_event=stop))
            for b, s in sinks.items()
        ]
        await _until(lambda: all(len(s.trades) > 400 for s in sinks.values()), 30, "trades")
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 15)
        kis.flush_truth()
        kiwoom.flush_truth()
        same, compared = tapes_identical(TruthReader(kis.truth_dir), TruthReader(kiwoom.truth_dir))
    assert same and compared > 400, "one market, one clock: one tape"
    a, b = sinks[Broker.KIS].trades, sinks[Broker.KIWOOM].trades
    common = a.keys() & b.keys()
    assert len(common) > 300
    assert all(a[k] == b[k] for k in common), "the same trade reads the same through both"
    for symbol in SYMBOLS:  # inside the span both collected, neither feed has a key alone
        mine = sorted(v for s, v in a.keys() | b.keys() if s == symbol)
        both = [v for s, v in common if s == symbol]
        if both:
            lo, hi = min(both), max(both)
            assert {v for v in mine if lo <= v <= hi} == set(both)
