"""Paced REST calls: the shared limiter, the broker's "too many" answer, the token cache.

Every REST call of the backfill goes through :meth:`Pacer.call`: it waits for the app key's
slot in the shared :class:`~tickguard.ratelimit.RedisRateLimiter`, sends, and on the
broker's rate-limit answer (KIS EGW00201, Kiwoom 1700) pauses everyone sharing the key and
tries again — a backfill never fails for being throttled. A rejected token (expired early)
is dropped from the shared cache and fetched again once. :class:`FetchStats` keeps what the
drill and the report need: requests, rate-limit answers and when, and the busy span.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, TypeVar

from pydantic import SecretStr

from tickguard.backfill.tokens import SharedToken
from tickguard.errors import AuthError, ProtocolError, RateLimitedError
from tickguard.models import Broker, MinuteBar, Trade
from tickguard.ratelimit import RedisRateLimiter

log = logging.getLogger(__name__)
T = TypeVar("T")
Window = tuple[datetime, datetime]
"""[start, end) in exchange time (tz-aware)."""


@dataclass(slots=True)
class FetchStats:
    requests: int = 0
    rate_limit_errors: int = 0
    rate_limit_at: list[float] = field(default_factory=list)
    """Monotonic times of the broker's rate-limit answers."""
    first_at: float | None = None
    last_at: float | None = None
    rate_per_s: float = 0.0
    """The configured budget (sum over the app keys used)."""

    def sent(self) -> None:
        now = time.monotonic()
        self.requests += 1
        self.first_at = now if self.first_at is None else self.first_at
        self.last_at = now

    @property
    def busy_s(self) -> float:
        if self.first_at is None or self.last_at is None:
            return 0.0
        return self.last_at - self.first_at

    @property
    def budget_used(self) -> float:
        """Requests per second achieved over the busy span, as a share of the budget."""
        if self.requests < 2 or self.busy_s <= 0 or self.rate_per_s <= 0:
            return 0.0
        return (self.requests - 1) / self.busy_s / self.rate_per_s

    @property
    def rate_limit_errors_max_per_min(self) -> int:
        """Most rate-limit answers within any 60 s."""
        times = sorted(self.rate_limit_at)
        return max((sum(1 for u in times if t <= u < t + 60) for t in times), default=0)


class Pacer:
    """One app key's budget and token, applied to every call made with them."""

    def __init__(
        self,
        limiter: RedisRateLimiter,
        token: SharedToken,
        stats: FetchStats,
        *,
        pause_s: float = 1.0,
        max_refusals: int = 200,
    ) -> None:
        self.limiter = limiter
        self.token = token
        self.stats = stats
        self._pause_s = pause_s
        self._max_refusals = max_refusals

    async def call(self, request: Callable[[SecretStr], Awaitable[T]]) -> T:
        refusals = 0
        renewed = False
        while True:
            token = await self.token.get()
            await self.limiter.acquire()
            self.stats.sent()
            try:
                return await request(token)
            except RateLimitedError:
                refusals += 1
                self.stats.rate_limit_errors += 1
                self.stats.rate_limit_at.append(time.monotonic())
                if refusals > self._max_refusals:
                    raise ProtocolError(f"{self.limiter.key}: throttled {refusals} times") from None
                await self.limiter.penalize(self._pause_s)
            except AuthError:
                if renewed:
                    raise
                renewed = True
                await self.token.invalidate()


class HistorySource(Protocol):
    """What the backfill needs from a broker's REST API for one trading day."""

    broker: Broker
    derives_cum_volume: bool
    """True when the broker's ticks carry no cumulative volume (Kiwoom ka10079)."""

    async def minute_bars(self, symbol: str, start: datetime, end: datetime) -> list[MinuteBar]:
        """Minute bars with ``start <= minute < end``, oldest first."""
        ...

    async def trades(self, symbol: str, windows: list[Window]) -> list[Trade]:
        """Trades covering ``windows`` (a source may return more), oldest first."""
        ...
