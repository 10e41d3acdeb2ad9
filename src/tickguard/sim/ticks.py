"""The KRX price grid and a cheap 10-level book model (broker-neutral).

Tick sizes (호가단위) as coded by KIS's official backtester ("2023년 기준", §3.6 of the protocol
reference): < 2 000 → 1; < 5 000 → 5; < 20 000 → 10; < 50 000 → 50; < 200 000 → 100;
< 500 000 → 500; otherwise 1 000 KRW. Every generated price is on this grid.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from tickguard.models import Level

_BANDS = ((2_000, 1), (5_000, 5), (20_000, 10), (50_000, 50), (200_000, 100), (500_000, 500))
LEVELS = 10


def tick_size(price: int) -> int:
    """Tick size of the band ``price`` lies in."""
    for bound, tick in _BANDS:
        if price < bound:
            return tick
    return 1_000


def on_grid(price: int) -> bool:
    return price > 0 and price % tick_size(price) == 0


def clamp_to_grid(price: int) -> int:
    """The nearest grid price at or below ``price`` (at least one tick)."""
    snapped = price - price % tick_size(price)
    return max(snapped, 1)


def tick_up(price: int) -> int:
    """The next grid price above ``price``."""
    return price + tick_size(price)


def tick_down(price: int) -> int:
    """The next grid price below ``price`` (the tick of the band below applies at a bound)."""
    return price - tick_size(price - 1) if price > 1 else 1


@dataclass(slots=True)
class Book:
    """A 10-level book: prices best first (asks lowest, bids highest), quantities alongside.

    Kept as parallel tuples (cheap to build on the hot path); :attr:`asks` and :attr:`bids`
    give (price, qty) levels like :class:`tickguard.models.BookSnapshot`.
    """

    ask_prices: tuple[int, ...]
    ask_qtys: tuple[int, ...]
    bid_prices: tuple[int, ...]
    bid_qtys: tuple[int, ...]
    total_ask: int
    total_bid: int

    @property
    def asks(self) -> tuple[Level, ...]:
        return tuple(zip(self.ask_prices, self.ask_qtys, strict=True))

    @property
    def bids(self) -> tuple[Level, ...]:
        return tuple(zip(self.bid_prices, self.bid_qtys, strict=True))


class BookModel:
    """Resting quantities per level that drift a little between snapshots.

    Only a few levels change per snapshot: cheaper than redrawing twenty numbers and closer
    to how a real book evolves. Trades read the touch quantities without a new snapshot.
    Price ladders depend only on the touch, so they are cached per (bid, ask) (a day visits
    a few hundred prices at most).
    """

    def __init__(self, rng: random.Random, mean_qty: int) -> None:
        self._rng = rng
        self._mean = max(mean_qty, 1)
        self.ask_qty = [self._draw() for _ in range(LEVELS)]
        self.bid_qty = [self._draw() for _ in range(LEVELS)]
        self._total_ask = sum(self.ask_qty)
        self._total_bid = sum(self.bid_qty)
        self._ladders: dict[tuple[int, int], tuple[tuple[int, ...], tuple[int, ...]]] = {}

    def _draw(self) -> int:
        return int(self._mean * (1.0 + 29.0 * self._rng.random())) or 1

    def _ladder(self, bid: int, ask: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        ladder = self._ladders.get((bid, ask))
        if ladder is None:
            asks = [ask]
            for _ in range(LEVELS - 1):
                asks.append(tick_up(asks[-1]))
            bids = [bid]
            while len(bids) < LEVELS and bids[-1] > 1:
                bids.append(tick_down(bids[-1]))
            ladder = self._ladders[(bid, ask)] = (tuple(asks), tuple(bids))
        return ladder

    def snapshot(self, bid: int, ask: int) -> Book:
        rng, ask_qty, bid_qty = self._rng.random, self.ask_qty, self.bid_qty
        for _ in range(3):
            level = int(rng() * LEVELS)
            qty = self._draw()
            if rng() < 0.5:
                self._total_ask += qty - ask_qty[level]
                ask_qty[level] = qty
            else:
                self._total_bid += qty - bid_qty[level]
                bid_qty[level] = qty
        ask_prices, bid_prices = self._ladder(bid, ask)
        bids = tuple(bid_qty) if len(bid_prices) == LEVELS else tuple(bid_qty[: len(bid_prices)])
        return Book(ask_prices, tuple(ask_qty), bid_prices, bids, self._total_ask, self._total_bid)

    def touch(self) -> tuple[int, int, int, int]:
        """(best ask qty, best bid qty, total ask qty, total bid qty) right now."""
        return self.ask_qty[0], self.bid_qty[0], self._total_ask, self._total_bid
