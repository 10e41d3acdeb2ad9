"""Gap bookkeeping for one session: every drop opens a gap per subscription, data closes it.

Why here and not downstream: only the supervisor knows when a connection died and when data
flowed again. A gap opens at the last *data* frame received on the dead connection
(everything up to then reached us; a PINGPONG after it proves the socket, not the feed) and
closes at the first data frame after resubscribing — but only for subscriptions the broker
accepted again; a refused one stays open until a later connection takes it. The same gap is
emitted twice (open, then with ``end``); the store upserts on (broker, symbol, kind, start).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from datetime import datetime

from tickguard.brokers.base import Channel, Subscription
from tickguard.models import Broker, Gap, GapKind

log = logging.getLogger(__name__)

_KIND = {Channel.TRADES: GapKind.TRADES, Channel.BOOK: GapKind.BOOK}


class GapTracker:
    """Open gaps of one session, keyed by subscription."""

    def __init__(self, broker: Broker, subscriptions: Iterable[Subscription]) -> None:
        self.broker = broker
        self.subscriptions = tuple(subscriptions)
        self.open: dict[Subscription, Gap] = {}
        self.opened = 0
        self.closed = 0

    def on_disconnect(self, last_frame_at: datetime, cause: str, now: datetime) -> list[Gap]:
        """Open a gap for every subscription that has none yet; return the new ones."""
        new: list[Gap] = []
        for sub in self.subscriptions:
            if sub in self.open:
                continue
            gap = Gap(
                broker=self.broker,
                symbol=sub.symbol,
                kind=_KIND[sub.channel],
                start=last_frame_at,
                end=None,
                cause=cause,
                detected_at=now,
            )
            self.open[sub] = gap
            new.append(dataclasses.replace(gap))
        if new:
            self.opened += len(new)
            log.info("gap opened for %d subscriptions at %s: %s", len(new), last_frame_at, cause)
        return new

    def on_data(self, first_data_at: datetime, accepted: Iterable[Subscription]) -> list[Gap]:
        """Close the open gaps of ``accepted`` subscriptions at ``first_data_at``."""
        closed: list[Gap] = []
        for sub in accepted:
            gap = self.open.pop(sub, None)
            if gap is not None:
                closed.append(dataclasses.replace(gap, end=first_data_at))
        if closed:
            self.closed += len(closed)
            log.info("gap closed for %d subscriptions at %s", len(closed), first_data_at)
        return closed
