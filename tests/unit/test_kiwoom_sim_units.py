"""Pure parts of the Kiwoom simulator: registrations, wire values, chart bars, limits, tokens."""

from __future__ import annotations

import json
from datetime import date

from pydantic import SecretStr

from tickguard.brokers.kiwoom.codec import KiwoomSession
from tickguard.models import KST, Side, Trade
from tickguard.sim.kiwoom_frames import (
    book_entry,
    minute_bars,
    real_message,
    sign_code,
    signed,
    tick_bars,
    trade_entry,
)
from tickguard.sim.kiwoom_registrations import OVER_CAP, Registrations
from tickguard.sim.kiwoom_rest import KiwoomAuthority, RateLimiter
from tickguard.sim.market import GenBook, GenTrade, Market, MarketConfig
from tickguard.sim.universe import profiles_for

DAY = date(2026, 3, 19)


def reg(trnm: str, grp: str, items: list[str], types: list[str], refresh: str = "1") -> dict:  # type: ignore[type-arg]
    return {"trnm": trnm, "grp_no": grp, "refresh": refresh,
            "data": [{"item": items, "type": types}]}  # fmt: skip


def test_registrations_groups_refresh_and_remove() -> None:
    regs = Registrations(cap=4)
    first = regs.apply(reg("REG", "1", ["005930", "122630"], ["0B"]))
    assert first.ok and first.added == [("0B", "005930"), ("0B", "122630")]
    kept = regs.apply(reg("REG", "1", ["005930"], ["0D"]))
    assert kept.added == [("0D", "005930")] and len(regs.all()) == 3
    replaced = regs.apply(reg("REG", "1", ["114800"], ["0B"], refresh="0"))
    assert replaced.added == [("0B", "114800")]
    assert replaced.removed == [("0B", "005930"), ("0B", "122630"), ("0D", "005930")]
    other = regs.apply(reg("REG", "2", ["114800"], ["0B"]))
    assert other.ok and other.added == []  # already delivered through group 1
    gone = regs.apply(reg("REMOVE", "1", ["114800"], ["0B"]))
    assert gone.ok and gone.removed == []  # group 2 still holds it
    assert regs.all() == {("0B", "114800")}


def test_registrations_refuse_over_cap_and_malformed_without_change() -> None:
    regs = Registrations(cap=2)
    assert regs.apply(reg("REG", "1", ["005930", "000660"], ["0B"])).ok
    over = regs.apply(reg("REG", "1", ["122630"], ["0D"]))
    assert (over.ok, over.message) == (False, OVER_CAP) and len(regs.all()) == 2
    for bad in (
        reg("REG", "12345", ["005930"], ["0B"]),
        reg("REG", "1", ["5930"], ["0B"]),
        reg("REG", "1", ["005930"], ["B"]),
        {"trnm": "REG", "grp_no": "1", "data": []},
        {"trnm": "REG", "grp_no": "1", "data": [{"item": "005930", "type": ["0B"]}]},
    ):
        assert not regs.apply(bad).ok
    assert regs.apply(reg("REG", "1", ["005930_NX", "Q500001"], ["0B"], refresh="0")).ok


def test_wire_conventions() -> None:
    assert (signed(20800, 20850), signed(21150, 20850), signed(20850, 20850)) == (
        "-20800",
        "+21150",
        "20850",
    )
    assert [sign_code(p, 10_000) for p in (13_000, 10_500, 10_000, 9_000, 7_000)] == list("12354")


def _day_events(symbol: str = "122630") -> tuple[list[GenTrade], list[GenBook]]:
    market = Market(MarketConfig(DAY, profiles_for([symbol]), seed=2))
    events = [e for e in market.symbol_tape(symbol) if e.t < 9 * 3600 + 600]
    return (
        [e for e in events if isinstance(e, GenTrade)],
        [e for e in events if isinstance(e, GenBook)],
    )


def test_entries_round_trip_through_the_codec() -> None:
    trades, books = _day_events()
    frame = real_message([trade_entry(t) for t in trades[:50]] + [book_entry(books[-1])])
    assert all(isinstance(v, str) for v in json.loads(frame)["data"][0]["values"].values())
    out = KiwoomSession("", DAY).receive(frame, trades[0].ts)
    assert not out.quarantined and len(out.events) == 51
    for gen, got in zip(trades[:50], out.events[:50], strict=True):
        assert isinstance(got, Trade)
        assert (got.price, got.qty, got.cum_volume) == (gen.price, gen.qty, gen.cum_volume)
        assert got.side == gen.side and got.ts == gen.ts.astimezone(KST)
    assert out.events[0].side is None  # the 09:00 auction print has no aggressor
    assert any(t.side is Side.SELL for t in trades[:50])
    book = out.events[-1]
    assert book.asks == books[-1].book.asks and book.bids == books[-1].book.bids  # type: ignore[union-attr]


def test_tick_and_minute_bars() -> None:
    trades, _ = _day_events()
    ticks = tick_bars(trades, 3)
    assert len(ticks) == -(-len(trades) // 3)
    assert sum(b.volume for b in ticks) == trades[-1].cum_volume
    assert ticks[0].open == trades[0].price and ticks[0].close == trades[2].price
    minutes = minute_bars(trades, 5)
    assert [b.stamp[8:] for b in minutes] == ["090000", "090500"]
    assert minutes[-1].cum_volume == trades[-1].cum_volume
    assert all(b.low <= b.open <= b.high and b.low <= b.close <= b.high for b in minutes)


def test_rate_limiter_window_with_injected_clock() -> None:
    now = [0.0]
    limiter = RateLimiter(2, window_s=1.0, now=lambda: now[0])
    assert limiter.allow("a") and limiter.allow("a") and not limiter.allow("a")
    assert limiter.allow("b")  # per app key
    now[0] = 1.01
    assert limiter.allow("a") and limiter.refused == 1


def test_tokens_expire_and_secrets_are_checked() -> None:
    now = [1_000.0]
    authority = KiwoomAuthority({"k": SecretStr("s")}, ttl_s=60, now=lambda: now[0])
    assert authority.accepts("k", "s") and not authority.accepts("k", "x")
    assert not authority.accepts("other", "s")
    token, expires = authority.issue("k")
    assert expires.utcoffset() is not None and authority.app_key_for(token) == "k"
    now[0] += 60
    assert authority.app_key_for(token) is None
