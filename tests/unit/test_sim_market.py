"""The seeded market: KRX grid, determinism, per-symbol independence, session shape."""

from __future__ import annotations

import itertools
import tracemalloc
from collections import Counter
from datetime import date, time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tickguard.models import Side
from tickguard.sim.market import GenBook, GenTrade, HaltWindow, Market, MarketConfig, hhmmss
from tickguard.sim.ticks import on_grid, tick_down, tick_size, tick_up
from tickguard.sim.universe import default_symbols, default_universe, profiles_for

DAY = date(2026, 11, 26)
OPEN, CLOSE_AUCTION, CLOSE = 9 * 3600.0, 15 * 3600 + 20 * 60.0, 15 * 3600 + 30 * 60.0


def market(n: int = 6, seed: int = 7, **kw: object) -> Market:
    return Market(MarketConfig(day=DAY, symbols=default_universe(n), seed=seed, **kw))  # type: ignore[arg-type]


def test_tick_sizes_follow_the_krx_bands() -> None:
    assert [tick_size(p) for p in (1_999, 2_000, 4_995, 5_000, 19_990, 20_000)] == [
        1,
        5,
        5,
        10,
        10,
        50,
    ]
    assert [tick_size(p) for p in (49_950, 50_000, 199_900, 200_000, 499_500, 500_000)] == [
        50, 100, 100, 500, 500, 1_000,
    ]  # fmt: skip
    assert tick_up(1_999) == 2_000 and tick_up(2_000) == 2_005
    assert tick_down(2_000) == 1_999 and tick_down(50_000) == 49_950


@given(st.integers(min_value=2, max_value=3_000_000))
def test_tick_up_and_down_stay_on_the_grid(price: int) -> None:
    base = price - price % tick_size(price)
    assert on_grid(tick_up(base))
    assert on_grid(tick_down(base)) or tick_down(base) == 1
    assert tick_down(tick_up(base)) == base


def test_same_seed_same_tape_and_another_seed_another() -> None:
    a = list(itertools.islice(market(seed=1).events(), 5_000))
    b = list(itertools.islice(market(seed=1).events(), 5_000))
    c = list(itertools.islice(market(seed=2).events(), 5_000))
    assert a == b
    assert a != c


def test_a_symbol_tape_regenerates_alone_and_matches_the_merged_market() -> None:
    m = market(n=8)
    merged = [e for e in itertools.islice(m.events(), 40_000) if e.symbol == "000660"]
    alone = list(itertools.islice(market(n=3).symbol_tape("000660"), len(merged)))
    assert merged == alone


def test_events_come_in_time_order_with_one_second_exchange_time() -> None:
    last = 0.0
    for e in itertools.islice(market().events(), 50_000):
        assert e.t >= last
        last = e.t
        assert e.ts.second == int(e.t) % 60 and e.ts.microsecond == 0
        assert hhmmss(e.t) == e.ts.strftime("%H%M%S")


def test_cum_volume_is_the_running_sum_of_qty_and_prices_are_on_grid() -> None:
    prev: dict[str, int] = {}
    shared_second = 0
    seen: Counter[tuple[str, int]] = Counter()
    for e in itertools.islice(market().events(), 80_000):
        if not isinstance(e, GenTrade):
            continue
        assert e.cum_volume - prev.get(e.symbol, 0) == e.qty > 0
        prev[e.symbol] = e.cum_volume
        assert on_grid(e.price) and e.low <= e.price <= e.high
        seen[(e.symbol, int(e.t))] += 1
        shared_second += seen[(e.symbol, int(e.t))] == 2
    assert shared_second > 0, "several trades of one symbol must share an exchange second"


def test_books_are_ten_levels_consistent_and_uncrossed() -> None:
    books = [e for e in itertools.islice(market().events(), 30_000) if isinstance(e, GenBook)]
    assert books
    for b in books:
        asks, bids = b.book.asks, b.book.bids
        assert len(asks) == len(bids) == 10
        assert asks[0][0] > bids[0][0]
        assert [p for p, _ in asks] == sorted(p for p, _ in asks)
        assert [p for p, _ in bids] == sorted((p for p, _ in bids), reverse=True)
        assert all(on_grid(p) and q > 0 for p, q in asks + bids)
        assert b.book.total_ask == sum(q for _, q in asks)


def test_trades_hit_the_touch_on_the_aggressor_side() -> None:
    for e in itertools.islice(market().events(start_t=OPEN + 1), 20_000):
        if isinstance(e, GenTrade):
            assert e.price == (e.ask1 if e.side is Side.BUY else e.bid1)


def test_auction_prints_at_the_open_and_close_and_nothing_between_15_20_and_15_30() -> None:
    tape = list(market(n=11).symbol_tape("251340"))
    trades = [e for e in tape if isinstance(e, GenTrade)]
    assert trades[0].t == OPEN and trades[0].auction and trades[0].side is None
    assert trades[-1].t == CLOSE and trades[-1].auction
    assert not [e for e in trades if CLOSE_AUCTION <= e.t < CLOSE]
    phases = {e.phase for e in tape if isinstance(e, GenBook) and CLOSE_AUCTION <= e.t < CLOSE}
    assert phases == {"closing_auction"}
    assert {e.phase for e in tape if isinstance(e, GenBook) and e.t < OPEN} == {"pre_open"}


def test_activity_bursts_after_the_open_and_before_the_close() -> None:
    tape = [e for e in market(n=11).symbol_tape("233740") if isinstance(e, GenTrade)]

    def count(a: float, b: float) -> int:
        return sum(a <= e.t < b for e in tape)

    first, midday, last = (
        count(OPEN, OPEN + 600),
        count(12 * 3600, 12 * 3600 + 600),
        count(CLOSE_AUCTION - 600, CLOSE_AUCTION),
    )
    assert first > 3 * midday and last > 1.5 * midday


def test_a_halted_symbol_stops_trading_for_its_window_its_books_flagged() -> None:
    halt = HaltWindow("069500", time(10, 0), time(10, 30))
    m = market(n=3, halts=(halt,))
    tape = list(itertools.takewhile(lambda e: e.t < 11 * 3600, m.symbol_tape("069500")))
    inside = [e for e in tape if 10 * 3600 <= e.t < 10.5 * 3600]
    assert inside and all(isinstance(e, GenBook) and e.phase == "halt" for e in inside)
    assert [e for e in tape if 10.5 * 3600 <= e.t < 11 * 3600]
    other = list(itertools.takewhile(lambda e: e.t < 11 * 3600, m.symbol_tape("000660")))
    assert [e for e in other if 10 * 3600 <= e.t < 10.5 * 3600]


def test_universe_mixes_liquid_etf_and_illiquid_names() -> None:
    kinds = Counter(p.kind for p in default_universe(20))
    assert kinds["liquid"] >= 3 and kinds["etf"] >= 3 and kinds["illiquid"] >= 2
    assert len(set(default_symbols(30))) == 30
    assert profiles_for(["123456"]) == profiles_for(["123456"])
    with pytest.raises(ValueError, match="at least one"):
        default_symbols(0)


def test_the_merged_market_is_lazy_and_bounded() -> None:
    tracemalloc.start()
    try:
        for _ in itertools.islice(market(n=20).events(), 40_000):
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 1024 * 1024, f"peak {peak} bytes: the generator must not materialise the day"


def test_starting_at_the_open_skips_pre_open_without_changing_the_day() -> None:
    m = market(n=3)
    full = [e for e in itertools.islice(m.symbol_tape("069500"), 30_000) if e.t >= OPEN]
    from_open = list(itertools.islice(m.symbol_tape("069500", start_t=OPEN), len(full)))
    assert full == from_open
    assert from_open[0].t == OPEN and isinstance(from_open[0], GenTrade)
