"""The prepared tape (tickguard.sim.tape): the same events and records as a live one."""

from __future__ import annotations

from datetime import date
from datetime import time as dtime
from itertools import islice

from tickguard.sim.events import seconds_of
from tickguard.sim.kis_feed import KisWire
from tickguard.sim.market import Market, MarketConfig
from tickguard.sim.tape import PreEncodedWire
from tickguard.sim.universe import default_universe

START = seconds_of(dtime(9, 0))


def _market() -> Market:
    return Market(MarketConfig(day=date(2026, 11, 26), symbols=default_universe(5), seed=3))


def test_prepared_tape_is_the_live_tape_with_the_same_records() -> None:
    live_wire, pre = KisWire(), PreEncodedWire(KisWire())
    live = [(e.t, e.symbol, live_wire.encode(e)) for e in islice(_market().events(START), 5000)]
    tape = pre.prepare(_market().events(START), START + 10)
    prepared = pre.prepared
    assert 0 < prepared < 5000  # the rest of the 5000 is generated and encoded live
    got = [(e.t, e.symbol, pre.encode(e)) for e in islice(tape, 5000)]
    assert got == live
    assert pre.prepared == 0  # every prepared record was taken once, nothing kept


def test_a_prepared_record_nobody_took_is_dropped_when_the_tape_moves_on() -> None:
    pre = PreEncodedWire(KisWire())
    tape = pre.prepare(_market().events(START), START + 30)
    total = pre.prepared
    list(islice(tape, 10))  # dispatched with nobody subscribed: never encoded
    assert pre.prepared == total - 9  # the tenth is the one being dispatched
