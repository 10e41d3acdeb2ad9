"""A seeded, deterministic market for one KRX trading day (broker-neutral).

Each symbol has its own RNG derived from ``(seed, symbol)``, so one symbol's whole day can be
regenerated on its own (the REST backfill simulator serves history that way) and adding a
symbol never changes another symbol's tape. Events are produced lazily, in time order; the
whole market is a k-way merge of the per-symbol generators, so memory does not grow with the
length of the day or the number of symbols.

Time inside the generator is a float ``t`` = seconds since midnight KST, which keeps events of
the same exchange second in their true order; the wire only sees ``HHMMSS`` (1 s resolution),
so several trades may share a second. A "sweep" (one aggressive order filling several resting
orders) yields several prints with the same ``t``: those always travel in one frame.

Session shape (KRX regular session, §3.1 of the protocol reference): books from the opening
auction at 08:30, the opening auction print at 09:00:00, continuous trading until 15:20, the
closing auction (books only) and its print at 15:30:00. Activity is U-shaped: bursts after the
open and before the close. A halt stops a symbol's trades for a window of session time; its
books keep coming, flagged with phase ``"halt"`` (the wire's halt / VI flag).
The vocabulary (config, profiles, events) lives in :mod:`tickguard.sim.events`, re-exported here.
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Iterator, Sequence

from tickguard.models import Side
from tickguard.sim.events import (
    MAIN_SEQ,
    GenBook,
    GenEvent,
    GenTrade,
    HaltWindow,
    MarketConfig,
    SessionTimes,
    SymbolProfile,
    exchange_ts,
    hhmmss,
    seconds_of,
    symbol_seed,
)
from tickguard.sim.ticks import Book, BookModel, clamp_to_grid, tick_down, tick_up

__all__ = [
    "GenBook",
    "GenEvent",
    "GenTrade",
    "HaltWindow",
    "Market",
    "MarketConfig",
    "SessionTimes",
    "SymbolProfile",
    "exchange_ts",
    "hhmmss",
    "seconds_of",
    "symbol_seed",
]


class _SymbolDay:
    """Generates one symbol's day; all state lives here, driven by one RNG."""

    def __init__(self, profile: SymbolProfile, config: MarketConfig) -> None:
        self.p = profile
        self.cfg = config
        self.rng = random.Random(symbol_seed(config.seed, profile.symbol))
        self.books = BookModel(self.rng, profile.mean_qty)
        s = config.sessions
        self.t_pre, self.t_open = seconds_of(s.pre_open), seconds_of(s.open)
        self.t_cauc, self.t_close = seconds_of(s.close_auction), seconds_of(s.close)
        self.halts = sorted(
            (seconds_of(h.start), seconds_of(h.end))
            for h in config.halts
            if h.symbol == profile.symbol
        )
        self.seq = MAIN_SEQ
        self.bid = clamp_to_grid(profile.prev_close)
        self.cum_volume = self.cum_value = 0
        self.open = self.high = self.low = 0
        self.open_t = self.high_t = self.low_t = 0.0
        self.buys = self.sells = self.buy_volume = self.sell_volume = 0

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def _halted_until(self, t: float) -> float | None:
        for start, end in self.halts:
            if start <= t < end:
                return end
        return None

    def _intensity(self, t: float) -> float:
        c = self.cfg
        since_open = max(t - self.t_open, 0.0)
        to_close = max(self.t_cauc - t, 0.0)
        return (
            1.0
            + c.open_burst * math.exp(-since_open / c.burst_tau_s)
            + c.close_burst * math.exp(-to_close / c.burst_tau_s)
        )

    def _ask(self) -> int:
        return tick_up(self.bid)

    def _book(self) -> Book:
        return self.books.snapshot(self.bid, self._ask())

    def _gen_book(self, t: float, phase: str) -> GenBook:
        book = self._book()
        exp_price = exp_qty = 0
        if phase != "continuous":
            exp_price = self._ask() if self.rng.random() < 0.5 else self.bid
            exp_qty = self.p.mean_qty * self.rng.randint(5, 40)
        return GenBook(
            t,
            self._next_seq(),
            self.p.symbol,
            self.cfg.day,
            book,
            self.cum_volume,
            self.p.prev_close,
            phase,
            exp_price,
            exp_qty,
        )

    def _print(self, t: float, price: int, qty: int, side: Side | None, auction: bool) -> GenTrade:
        if self.cum_volume == 0:
            self.open = self.high = self.low = price
            self.open_t = self.high_t = self.low_t = t
        if price > self.high:
            self.high, self.high_t = price, t
        if price < self.low:
            self.low, self.low_t = price, t
        self.cum_volume += qty
        self.cum_value += price * qty
        if side is Side.BUY:
            self.buys, self.buy_volume = self.buys + 1, self.buy_volume + qty
        elif side is Side.SELL:
            self.sells, self.sell_volume = self.sells + 1, self.sell_volume + qty
        return GenTrade(
            t,
            self._next_seq(),
            self.p.symbol,
            self.cfg.day,
            price,
            qty,
            side,
            self.cum_volume,
            self.cum_value,
            self.open,
            self.high,
            self.low,
            self.open_t,
            self.high_t,
            self.low_t,
            self.buys,
            self.sells,
            self.buy_volume,
            self.sell_volume,
            self.p.prev_close,
            self._ask(),
            self.bid,
            *self.books.touch(),
            auction,
        )

    def _auction_print(self, t: float) -> GenTrade:
        qty = max(1, int(self.p.mean_qty * self.rng.uniform(5, 40)))
        price = self._ask() if self.rng.random() < 0.5 else self.bid
        return self._print(t, price, qty, None, auction=True)

    def _order(self, t: float) -> Iterator[GenTrade]:
        """One aggressive order: 1..k prints at the touch, all at the same instant."""
        drift = (self.bid - self.p.prev_close) / (self.p.prev_close * 0.02)
        buy = self.rng.random() < 0.5 - 0.15 * math.tanh(drift)
        side = Side.BUY if buy else Side.SELL
        price = self._ask() if buy else self.bid
        prints = 1
        while prints < 8 and self.rng.random() < 0.25:
            prints += 1
        for _ in range(prints):
            qty = max(1, int(self.rng.expovariate(1.0 / self.p.mean_qty)))
            yield self._print(t, price, qty, side, auction=False)
        if self.rng.random() < 0.2:
            self.bid = self._ask() if buy else max(tick_down(self.bid), 1)
            self.bid = self._within_limits(self.bid)

    def _within_limits(self, bid: int) -> int:
        """KRX daily price limits are ±30 % of the previous close."""
        hi, lo = int(self.p.prev_close * 1.3), int(self.p.prev_close * 0.7)
        if bid > hi:
            return tick_down(bid)
        if bid < lo:
            return tick_up(bid)
        return bid

    def _wait(self, rate_per_min: float, t: float, bursty: bool = True) -> float:
        rate = rate_per_min / 60.0 * (self._intensity(t) if bursty else 1.0)
        return self.rng.expovariate(rate) if rate > 0 else math.inf

    def _phase_books(self, start: float, end: float, phase: str) -> Iterator[GenBook]:
        """Books during an auction phase (no trades), with halts respected."""
        t = start + self._wait(self.p.books_per_min, start, bursty=False)
        while t < end:
            resume = self._halted_until(t)
            if resume is None:
                yield self._gen_book(t, phase)
                t += self._wait(self.p.books_per_min, t, bursty=False)
            else:
                t = resume + self._wait(self.p.books_per_min, resume, bursty=False)

    def _continuous(self) -> Iterator[GenEvent]:
        next_order = self.t_open + self._wait(self.p.orders_per_min, self.t_open)
        next_book = self.t_open + self._wait(self.p.books_per_min, self.t_open)
        while True:
            t = min(next_order, next_book)
            if t >= self.t_cauc:
                return
            resume = self._halted_until(t)
            if resume is not None:
                if next_order <= next_book:  # no trading until the halt ends
                    next_order = resume + self._wait(self.p.orders_per_min, resume)
                else:  # the book stays visible, flagged (how a feed shows a halt / VI)
                    yield self._gen_book(t, "halt")
                    next_book = t + self._wait(self.p.books_per_min, t, bursty=False)
                continue
            if next_order <= next_book:
                yield from self._order(t)
                next_order = t + self._wait(self.p.orders_per_min, t)
            else:
                yield self._gen_book(t, "continuous")
                next_book = t + self._wait(self.p.books_per_min, t)

    def _pre_open(self) -> Iterator[GenBook]:
        """Pre-open books on their own RNG, book model and sequence numbers.

        So the rest of the day does not depend on them, and a tape that starts at or after
        the open skips them without changing a single later event.
        """
        main = (self.rng, self.books, self.seq)
        self.rng = random.Random(symbol_seed(self.cfg.seed, f"{self.p.symbol}:pre-open"))
        self.books = BookModel(self.rng, self.p.mean_qty)
        self.seq = 0
        try:
            yield from self._phase_books(self.t_pre, self.t_open, "pre_open")
        finally:
            self.rng, self.books, self.seq = main

    def events(self, start_t: float = 0.0) -> Iterator[GenEvent]:
        if start_t < self.t_open:
            yield from self._pre_open()
        if self._halted_until(self.t_open) is None:
            yield self._auction_print(self.t_open)
        yield from self._continuous()
        yield from self._phase_books(self.t_cauc, self.t_close, "closing_auction")
        if self._halted_until(self.t_close) is None:
            yield self._auction_print(self.t_close)


class Market:
    """The whole market: per-symbol tapes merged lazily in time order."""

    def __init__(self, config: MarketConfig) -> None:
        self.config = config
        self._profiles = {p.symbol: p for p in config.symbols}

    @property
    def symbols(self) -> list[str]:
        return list(self._profiles)

    def symbol_tape(self, symbol: str, start_t: float = 0.0) -> Iterator[GenEvent]:
        """One symbol's day from ``start_t`` on (the earlier part is generated and skipped)."""
        gen = _SymbolDay(self._profiles[symbol], self.config).events(start_t)
        return (e for e in gen if e.t >= start_t)

    def events(
        self, start_t: float = 0.0, symbols: Sequence[str] | None = None
    ) -> Iterator[GenEvent]:
        """Every event of the day from ``start_t``, ordered by (t, symbol, seq)."""
        names = list(symbols) if symbols is not None else self.symbols
        tapes = [self.symbol_tape(s, start_t) for s in names]
        return heapq.merge(*tapes, key=lambda e: (e.t, e.symbol, e.seq))
