"""Kiwoom's data encoding for the simulator feed: market events → REAL ``0B``/``0D`` messages.

The pump, per-connection queues, slow-consumer drops and the data faults are the neutral
:mod:`tickguard.sim.feed`; this module is what is Kiwoom's own (§2.6): a JSON entry per
event, any mix of items and types in one ``{"trnm":"REAL","data":[…]}`` message, a grown
entry carrying an extra FID the codec must pass over (Kiwoom adding a field), and the
malformed variants a client must survive (cut short, not JSON, unreadable values).
"""

from __future__ import annotations

import json
import random
from collections.abc import Hashable

from tickguard.sim.kiwoom_frames import book_entry, dumps, trade_entry, vi_entry
from tickguard.sim.market import GenEvent, GenTrade

TYPE_TRADE, TYPE_BOOK = "0B", "0D"
GROWN_FID = "9999"
REAL = "REAL"


def real_frame(entries: list[str]) -> str:
    """A REAL message of already encoded entries."""
    return '{"trnm":"REAL","data":[' + ",".join(entries) + "]}"


class KiwoomWire:
    """The :class:`~tickguard.sim.feed.Wire` of Kiwoom."""

    trade_channel = TYPE_TRADE
    book_channel = TYPE_BOOK
    rng_salt = 0x4B57

    def encode(self, ev: GenEvent) -> str:
        if isinstance(ev, GenTrade):
            return dumps(trade_entry(ev))
        if ev.phase == "halt":  # a halted symbol: its book and the VI flag travel together
            return dumps(book_entry(ev)) + "," + dumps(vi_entry(ev))
        return dumps(book_entry(ev))

    def group(self, channel: str, symbol: str) -> Hashable:
        return REAL  # one REAL message carries several items and types

    def frame(self, group: Hashable, records: list[str]) -> str:
        return real_frame(records)

    def label(self, group: Hashable) -> str:
        return REAL

    def grow(self, record: str) -> str:
        """The entry with one more FID at the end of ``values`` (its last member)."""
        return f'{record[:-2]},"{GROWN_FID}":"1"}}}}'

    def corrupt(self, rng: random.Random, frame: str) -> str:
        cut = rng.randrange(10, max(11, len(frame) - 1))
        return frame[:cut] + "\x00" + frame[cut + 1 :]

    def malformed(self, rng: random.Random, channel: str, record: str) -> tuple[str, str]:
        """A broken message and its variant name; it carries no trade of its own."""
        variant = rng.choice(("truncated", "not_json", "bad_values"))
        if variant == "truncated":
            return real_frame([record])[: rng.randrange(5, 40)], variant
        if variant == "not_json":
            return f"REAL {channel} " + record[:30], variant
        broken = json.loads(real_frame([record]))["data"][0]  # a record may hold two entries
        broken["values"] = {"20": "9X9X9X", "10": "abc"}
        return real_frame([dumps(broken)]), variant
