"""Subscription planning: symbols × channels → one session per app key, each within budget.

KIS allows one websocket session per app key and 41 registrations per session, counted over
all TRs together (broker-protocols §1.4). The plan is made and checked *before* anything
connects: a plan that cannot fit is refused with a :class:`~tickguard.errors.PlanError` that
says how many keys it needs, instead of discovering OPSP0008 at 09:00.

Subscriptions are laid out symbol-major (a symbol's channels stay adjacent) and cut into as
few sessions as the budget allows, balanced so no session runs at the edge while another idles.
Keys beyond that stay spare.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tickguard.brokers.base import Channel, Subscription
from tickguard.errors import PlanError
from tickguard.settings import AppCredential


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """The subscriptions one websocket session (one app key) carries."""

    credential: AppCredential
    subscriptions: tuple[Subscription, ...]

    @property
    def key_name(self) -> str:
        return self.credential.name


def _unique(symbols: Iterable[str]) -> list[str]:
    seen: dict[str, None] = {}
    for symbol in symbols:
        clean = symbol.strip()
        if clean:
            seen.setdefault(clean, None)
    return list(seen)


def _balanced_chunks(items: Sequence[Subscription], parts: int) -> list[tuple[Subscription, ...]]:
    """Split ``items`` into ``parts`` contiguous chunks whose sizes differ by at most one."""
    size, extra = divmod(len(items), parts)
    chunks: list[tuple[Subscription, ...]] = []
    start = 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        chunks.append(tuple(items[start:end]))
        start = end
    return chunks


def plan_subscriptions(
    symbols: Iterable[str],
    channels: Sequence[Channel],
    credentials: Sequence[AppCredential],
    max_registrations: int,
) -> list[SessionPlan]:
    """Fit every (symbol, channel) into sessions of at most ``max_registrations`` each.

    Raises PlanError when there is nothing to subscribe, no key, or too few keys.
    """
    if max_registrations < 1:
        raise PlanError(f"max_registrations must be at least 1, got {max_registrations}")
    unique = _unique(symbols)
    if not unique or not channels:
        raise PlanError("nothing to subscribe: give at least one symbol and one channel")
    subs = [
        Subscription(symbol, channel) for symbol in unique for channel in dict.fromkeys(channels)
    ]
    needed = math.ceil(len(subs) / max_registrations)
    if needed > len(credentials):
        raise PlanError(
            f"{len(subs)} registrations ({len(unique)} symbols × {len(channels)} channels) need "
            f"{needed} app keys at {max_registrations} per session; {len(credentials)} configured"
        )
    names = [c.name for c in credentials]
    if len(set(names)) != len(names):
        raise PlanError(f"app key names must be unique, got {names}")
    chunks = _balanced_chunks(subs, needed)
    return [SessionPlan(cred, chunk) for cred, chunk in zip(credentials, chunks, strict=False)]
