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


@dataclass(frozen=True, slots=True)
class Book:
    """A 10-level book: asks best (lowest) first, bids best (highest) first."""

    asks: tuple[Level, ...]
    bids: tuple[Level, ...]
    total_ask: int
    total_bid: int


class BookModel:
    """Resting quantities per level that drift a little between snapshots.

    Only a few levels change per snapshot: cheaper than redrawing twenty numbers and closer
    to how a real book evolves. Trades read the touch quantities without a new snapshot.
    """

    def __init__(self, rng: random.Random, mean_qty: int) -> None:
        self._rng = rng
        self._mean = max(mean_qty, 1)
        self.ask_qty = [self._draw() for _ in range(LEVELS)]
        self.bid_qty = [self._draw() for _ in range(LEVELS)]

    def _draw(self) -> int:
        return max(1, int(self._mean * self._rng.uniform(1.0, 30.0)))

    def snapshot(self, bid: int, ask: int) -> Book:
        for _ in range(3):
            level = self._rng.randrange(LEVELS)
            if self._rng.random() < 0.5:
                self.ask_qty[level] = self._draw()
            else:
                self.bid_qty[level] = self._draw()
        asks: list[Level] = []
        price = ask
        for qty in self.ask_qty:
            asks.append((price, qty))
            price = tick_up(price)
        bids: list[Level] = []
        price = bid
        for qty in self.bid_qty:
            if price < 1:
                break
            bids.append((price, qty))
            price = tick_down(price) if price > 1 else 0
        return Book(tuple(asks), tuple(bids), sum(self.ask_qty), sum(self.bid_qty))

    def touch(self) -> tuple[int, int, int, int]:
        """(best ask qty, best bid qty, total ask qty, total bid qty) right now."""
        return self.ask_qty[0], self.bid_qty[0], sum(self.ask_qty), sum(self.bid_qty)
