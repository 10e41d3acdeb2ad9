"""KIS's data encoding for the simulator feed: market events → H0STCNT0/H0STASP0 frames.

The pump, per-connection queues, slow-consumer drops and the data faults are the neutral
:mod:`tickguard.sim.feed`; this module is what is KIS's own (§1.7): a record per event, one
(tr_id, symbol) per ``0|tr_id|NNN|rec^rec…`` frame, a grown record with one more trailing
field, and the malformed frames of :func:`~tickguard.sim.kis_wire.malformed`.
"""

from __future__ import annotations

import random
from collections.abc import Hashable

from tickguard.sim.kis_wire import (
    TR_BOOK,
    TR_TRADE,
    book_record,
    corrupt,
    data_frame,
    grow,
    malformed,
    trade_record,
)
from tickguard.sim.market import GenEvent, GenTrade


class KisWire:
    """The :class:`~tickguard.sim.feed.Wire` of KIS."""

    trade_channel = TR_TRADE
    book_channel = TR_BOOK
    rng_salt = 0x5EED

    def encode(self, ev: GenEvent) -> str:
        return trade_record(ev) if isinstance(ev, GenTrade) else book_record(ev)

    def group(self, channel: str, symbol: str) -> Hashable:
        return (channel, symbol)

    def frame(self, group: Hashable, records: list[str]) -> str:
        return data_frame(self.label(group), records)

    def label(self, group: Hashable) -> str:
        assert isinstance(group, tuple)
        return str(group[0])

    def grow(self, record: str) -> str:
        return grow(record)

    def corrupt(self, rng: random.Random, frame: str) -> str:
        return corrupt(rng, frame)

    def malformed(self, rng: random.Random, channel: str, record: str) -> tuple[str, str]:
        return malformed(rng, channel, record)
