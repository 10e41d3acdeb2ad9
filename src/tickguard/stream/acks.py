"""Checking every subscription ack of one connection.

A refused subscription is the quiet way to lose a symbol for a whole day: the socket is up,
other symbols flow, and nobody notices. Every ack is matched to its subscription; refusals
and missing acks are reported (log line + counter) and the subscription's gap stays open.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from tickguard.brokers.base import Ack, Subscription

log = logging.getLogger(__name__)


class AckTracker:
    """Acks expected after one round of subscribe frames."""

    def __init__(self, subscriptions: Sequence[Subscription]) -> None:
        self.pending: set[Subscription] = set(subscriptions)
        self.accepted: set[Subscription] = set()
        self.refused: dict[Subscription, Ack] = {}

    @property
    def complete(self) -> bool:
        return not self.pending

    def on_ack(self, ack: Ack) -> list[Subscription]:
        """Record ``ack``; return the subscriptions it newly accepted."""
        if ack.unsubscribe:
            return []
        if ack.subscription is None:
            # The broker does not say which registration it answers (Kiwoom REG acks one
            # request that carries all of them): it answers everything still pending.
            targets = sorted(self.pending, key=lambda s: (s.symbol, s.channel))
        elif ack.subscription in self.pending:
            targets = [ack.subscription]
        else:
            return []
        for sub in targets:
            self.pending.discard(sub)
            if ack.ok:
                self.accepted.add(sub)
            else:
                self.refused[sub] = ack
                log.warning(
                    "subscription refused: %s %s (%s %s)",
                    sub.symbol,
                    sub.channel.value,
                    ack.code,
                    ack.message,
                )
        return targets if ack.ok else []

    def expire(self) -> list[Subscription]:
        """The ack deadline passed: report and return what never got an answer."""
        missing = sorted(self.pending, key=lambda s: (s.symbol, s.channel))
        if missing:
            log.warning(
                "%d subscriptions got no ack (e.g. %s %s)",
                len(missing),
                missing[0].symbol,
                missing[0].channel.value,
            )
        self.pending.clear()
        return missing
