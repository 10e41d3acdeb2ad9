"""Symbol profiles for the simulated market: liquid names, ETFs, and names that barely trade.

The codes of the liquid names and ETFs are real (protocol reference §3.5) so recorded frames
look familiar; prices and activity are rough, not market data. Unknown codes get a profile
derived from the code itself, so ``--symbols 123456`` works and stays deterministic.
"""

from __future__ import annotations

from collections.abc import Iterable

from tickguard.sim.market import SymbolProfile, symbol_seed
from tickguard.sim.ticks import clamp_to_grid

# (symbol, previous close, orders/min, mean qty, books/min, kind)
_KNOWN: tuple[tuple[str, int, float, int, float, str], ...] = (
    ("005930", 71_900, 240.0, 60, 300.0, "liquid"),
    ("000660", 178_000, 150.0, 20, 200.0, "liquid"),
    ("069500", 35_250, 90.0, 80, 240.0, "etf"),
    ("122630", 18_450, 150.0, 300, 240.0, "etf"),
    ("035420", 192_300, 60.0, 10, 120.0, "liquid"),
    ("114800", 4_495, 60.0, 900, 180.0, "etf"),
    ("005380", 249_500, 45.0, 8, 90.0, "liquid"),
    ("252670", 2_205, 120.0, 2_000, 180.0, "etf"),
    ("373220", 383_000, 45.0, 5, 90.0, "liquid"),
    ("233740", 9_020, 45.0, 200, 120.0, "etf"),
    ("251340", 5_010, 20.0, 400, 60.0, "etf"),
)


def _derived(symbol: str, index: int) -> SymbolProfile:
    """A stable profile for a code we know nothing about: every third one is illiquid."""
    h = symbol_seed(0, symbol)
    price = clamp_to_grid(1_000 + h % 150_000)
    if index % 3 == 2:
        orders, books, kind = 0.05 + (h % 20) / 100.0, 0.5, "illiquid"
    else:
        orders, books, kind = 3.0 + h % 25, 10.0 + h % 40, "stock"
    mean_qty = max(1, 2_000_000 // price // 10)
    return SymbolProfile(symbol, price, orders, mean_qty, books, kind)


_BY_CODE = {row[0]: SymbolProfile(*row) for row in _KNOWN}


def profile_for(symbol: str, index: int = 0) -> SymbolProfile:
    """The profile of ``symbol``: a known one, or one derived from the code."""
    return _BY_CODE.get(symbol) or _derived(symbol, index)


def profiles_for(symbols: Iterable[str]) -> tuple[SymbolProfile, ...]:
    return tuple(profile_for(s, i) for i, s in enumerate(symbols))


def default_symbols(count: int) -> list[str]:
    """``count`` codes: the known liquid names and ETFs first, then synthetic mid/illiquid ones."""
    if count < 1:
        raise ValueError("the market needs at least one symbol")
    known = [row[0] for row in _KNOWN][:count]
    synthetic = [f"{900_000 + 17 * i:06d}" for i in range(count - len(known))]
    return known + synthetic


def default_universe(count: int = 20) -> tuple[SymbolProfile, ...]:
    return profiles_for(default_symbols(count))
